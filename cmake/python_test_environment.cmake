# The environment of a ctest that runs python3 over libgpumem.so (python/gpumem).
# A sanitized libgpumem.so needs the ASan runtime loaded before anything else, and
# python3 itself is not built with it: preload it, and libstdc++ with it (python3
# does not link it, and ASan's __cxa_throw interceptor, resolved when ASan starts,
# would find no real __cxa_throw: the library's first exception aborted). CPython
# keeps its arenas until exit, which the leak checker would report as the library's,
# so leaks are not checked there (the C and C++ tests of the same code check them).
function(gpumem_python_test_environment out)
  set(env
    "PYTHONPATH=${PROJECT_SOURCE_DIR}/python"
    "GPUMEM_LIBRARY=$<TARGET_FILE:gpumem_c>"
    "PYTHONDONTWRITEBYTECODE=1")
  if(GPUMEM_SANITIZE)
    execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libasan.so
      OUTPUT_VARIABLE asan_runtime OUTPUT_STRIP_TRAILING_WHITESPACE)
    execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libstdc++.so
      OUTPUT_VARIABLE cxx_runtime OUTPUT_STRIP_TRAILING_WHITESPACE)
    list(APPEND env "LD_PRELOAD=${asan_runtime}:${cxx_runtime}" "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1")
  endif()
  set(${out} "${env}" PARENT_SCOPE)
endfunction()
