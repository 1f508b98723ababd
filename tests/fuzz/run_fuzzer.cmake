# Runs one fuzz target for SECONDS over CORPUS (read only: libFuzzer writes new
# inputs to its first folder, the scratch one, emptied here first). A crash or a
# property violation fails the test; its input is kept in SCRATCH/artifacts/.
# cmake -DFUZZER=... -DCORPUS=... -DSCRATCH=... -DSECONDS=... [-DDICT=...] -P run_fuzzer.cmake
file(REMOVE_RECURSE "${SCRATCH}")
file(MAKE_DIRECTORY "${SCRATCH}/corpus" "${SCRATCH}/artifacts")
set(options -max_total_time=${SECONDS} -timeout=10 -print_final_stats=1
  -artifact_prefix=${SCRATCH}/artifacts/)
if(DICT)
  list(APPEND options -dict=${DICT})
endif()
execute_process(COMMAND "${FUZZER}" ${options} "${SCRATCH}/corpus" "${CORPUS}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(GLOB found "${SCRATCH}/artifacts/*")
  message(FATAL_ERROR "${FUZZER} failed (${rc}); its input: ${found}")
endif()
