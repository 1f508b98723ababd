# libgpumem.so exports exactly the functions gpumem.h declares: one declared but not
# exported (gpumem.map lacks it) fails, and so does anything else exported (an
# internal symbol that would clash with a host process's own CAF, spdlog or fmt).
# cmake -DNM=<nm> -DLIBRARY=<libgpumem.so> -DHEADER=<gpumem.h> -P c_abi_exports.cmake

foreach(var NM LIBRARY HEADER)
  if(NOT ${var})
    message(FATAL_ERROR "c_abi_exports.cmake needs -D${var}=...")
  endif()
endforeach()

# The declared functions: a name followed by "(" once the comments are gone (they
# name functions too, e.g. "see gpumem_last_error()").
file(READ "${HEADER}" header)
string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" "" header "${header}")
string(REGEX MATCHALL "gpumem_[a-z0-9_]+[ \t]*\\(" calls "${header}")
set(declared "")
foreach(call IN LISTS calls)
  string(REGEX REPLACE "[ \t]*\\($" "" name "${call}")
  list(APPEND declared "${name}")
endforeach()
list(REMOVE_DUPLICATES declared)
list(SORT declared)
list(LENGTH declared count)
if(count EQUAL 0)
  message(FATAL_ERROR "no gpumem_ function found in ${HEADER}")
endif()

# The exported ones: every defined symbol of the dynamic table, whatever its kind.
execute_process(COMMAND "${NM}" -D --defined-only --format=posix "${LIBRARY}"
  OUTPUT_VARIABLE table RESULT_VARIABLE failed ERROR_VARIABLE nm_error)
if(failed)
  message(FATAL_ERROR "${NM} failed on ${LIBRARY}: ${nm_error}")
endif()
string(REPLACE "\n" ";" lines "${table}")
set(exported "")
foreach(line IN LISTS lines)
  if(line MATCHES "^([^ ]+) ")
    list(APPEND exported "${CMAKE_MATCH_1}")
  endif()
endforeach()
list(SORT exported)

set(missing ${declared})
list(REMOVE_ITEM missing ${exported})
set(extra ${exported})
list(REMOVE_ITEM extra ${declared})
if(missing OR extra)
  string(REPLACE ";" " " missing "${missing}")
  list(LENGTH extra extra_count)
  list(SUBLIST extra 0 20 extra_shown)
  string(REPLACE ";" " " extra_shown "${extra_shown}")
  message(FATAL_ERROR "libgpumem.so's exports differ from gpumem.h's functions:\n"
    "  declared, not exported: ${missing}\n"
    "  exported, not declared (${extra_count}): ${extra_shown}")
endif()
message(STATUS "libgpumem.so exports exactly gpumem.h's ${count} functions")
