# CAF's openssl module (TLS for caf::io), built here from CAF 0.17.6's source tarball
# (third_party/caf) with one fix, instead of linking Debian's libcaf_openssl.
#
# The fix: OpenSSL keeps its errors in a queue per thread, and SSL_get_error reports
# SSL_ERROR_SSL while that queue is not empty, whatever the session. CAF drains the
# queue only inside a log statement, which Debian's build (CAF_LOG_LEVEL_QUIET)
# compiles out; so one peer refused in its handshake (a wrong certificate, a client in
# the clear) left an error behind that made the multiplexer drop the next healthy TLS
# connection it read from. The patch empties the queue before every OpenSSL call on a
# session, as OpenSSL's documentation of SSL_get_error asks.
#
# Defines gpumem::caf_openssl where OpenSSL is found.

find_package(OpenSSL)
if(NOT OPENSSL_FOUND)
  message(STATUS "gpumem: OpenSSL not found: no TLS between processes")
  return()
endif()

set(_tarball "${PROJECT_SOURCE_DIR}/third_party/caf/actor-framework_0.17.6.orig.tar.gz")
set(_root "${CMAKE_BINARY_DIR}/caf-openssl")
set(_module "${_root}/actor-framework-0.17.6/libcaf_openssl")
if(NOT EXISTS "${_module}/src/openssl/session.cpp")
  file(ARCHIVE_EXTRACT INPUT "${_tarball}" DESTINATION "${_root}"
       PATTERNS "actor-framework-0.17.6/libcaf_openssl/caf"
                "actor-framework-0.17.6/libcaf_openssl/src")
endif()

# The patched session, written only when it changes (a rebuild otherwise).
file(READ "${_module}/src/openssl/session.cpp" _session)
string(REPLACE "  CAF_BLOCK_SIGPIPE();\n"
               "  CAF_BLOCK_SIGPIPE();\n  ERR_clear_error(); // gpumem: see cmake/caf_openssl.cmake\n"
               _patched "${_session}")
if(_patched STREQUAL _session)
  message(FATAL_ERROR "caf_openssl.cmake: CAF's session.cpp no longer has the lines to patch")
endif()
file(CONFIGURE OUTPUT "${_root}/session.cpp" CONTENT "${_patched}" @ONLY)

add_library(gpumem_caf_openssl STATIC
  "${_module}/src/openssl/manager.cpp"
  "${_module}/src/openssl/middleman_actor.cpp"
  "${_module}/src/openssl/publish.cpp"
  "${_module}/src/openssl/remote_actor.cpp"
  "${_root}/session.cpp")
# Its own headers first: the CAF of the tsan preset is built without them.
target_include_directories(gpumem_caf_openssl BEFORE PUBLIC "${_module}")
target_link_libraries(gpumem_caf_openssl PUBLIC CAF::io OpenSSL::SSL OpenSSL::Crypto)
set_target_properties(gpumem_caf_openssl PROPERTIES POSITION_INDEPENDENT_CODE ON)
# The presets' sanitizers (gpumem_options), but CAF's code is not held to the project's
# warnings (-w).
target_link_libraries(gpumem_caf_openssl PRIVATE gpumem_options)
target_compile_options(gpumem_caf_openssl PRIVATE -w)
add_library(gpumem::caf_openssl ALIAS gpumem_caf_openssl)
