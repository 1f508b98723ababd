# FindCAF: the C++ Actor Framework 0.17 as Debian ships it (no CMake config of its own).
#
# Imported targets: CAF::core, CAF::io. (The openssl module is built from source:
# caf_openssl.cmake.)
# Result variables: CAF_FOUND, CAF_INCLUDE_DIR, CAF_VERSION.
# GPUMEM_CAF_PREFIX: take CAF from this prefix alone (include/, lib/), e.g. the one
# scripts/build-caf-tsan.sh builds; executables find its libraries by their rpath.

set(GPUMEM_CAF_PREFIX "" CACHE PATH "Use the CAF installed under this prefix only")
set(_caf_where)
if(GPUMEM_CAF_PREFIX)
  # Nothing else: mixing its headers or libraries with the system's CAF would break.
  set(_caf_where PATHS "${GPUMEM_CAF_PREFIX}" NO_DEFAULT_PATH)
endif()
find_path(CAF_INCLUDE_DIR caf/all.hpp ${_caf_where} PATH_SUFFIXES include)
find_library(CAF_CORE_LIBRARY NAMES caf_core ${_caf_where} PATH_SUFFIXES lib)
find_library(CAF_IO_LIBRARY NAMES caf_io ${_caf_where} PATH_SUFFIXES lib)

if(CAF_INCLUDE_DIR AND EXISTS "${CAF_INCLUDE_DIR}/caf/config.hpp")
  file(STRINGS "${CAF_INCLUDE_DIR}/caf/config.hpp" _caf_version_line
       REGEX "^#define CAF_VERSION [0-9]+")
  if(_caf_version_line MATCHES "CAF_VERSION ([0-9]+)")
    math(EXPR _major "${CMAKE_MATCH_1} / 10000")
    math(EXPR _minor "(${CMAKE_MATCH_1} / 100) % 100")
    math(EXPR _patch "${CMAKE_MATCH_1} % 100")
    set(CAF_VERSION "${_major}.${_minor}.${_patch}")
  endif()
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CAF
  REQUIRED_VARS CAF_INCLUDE_DIR CAF_CORE_LIBRARY CAF_IO_LIBRARY
  VERSION_VAR CAF_VERSION)

if(CAF_FOUND)
  find_package(Threads REQUIRED)
  if(NOT TARGET CAF::core)
    add_library(CAF::core UNKNOWN IMPORTED)
    set_target_properties(CAF::core PROPERTIES
      IMPORTED_LOCATION "${CAF_CORE_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES Threads::Threads)
  endif()
  if(NOT TARGET CAF::io)
    add_library(CAF::io UNKNOWN IMPORTED)
    set_target_properties(CAF::io PROPERTIES
      IMPORTED_LOCATION "${CAF_IO_LIBRARY}"
      INTERFACE_LINK_LIBRARIES CAF::core)
  endif()
endif()

mark_as_advanced(CAF_INCLUDE_DIR CAF_CORE_LIBRARY CAF_IO_LIBRARY)
