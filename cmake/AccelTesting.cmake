# Helpers to register tests with ctest.
#
#   accel_add_test(<name> SOURCES <files...> [LIBS <targets...>] [LABELS <labels...>] [TIMEOUT <s>])
#       One Catch2 executable run once by ctest (label "unit" unless LABELS is given).
#   accel_add_mpi_test(<name> SOURCES <files...> [LIBS ...] [NP <counts...>] [TIMEOUT <s>])
#       One Catch2 executable run under mpiexec once per process count (default 2 and 3),
#       as tests <name>_np<N> labelled "mpi".
#   Tests reach the .venv interpreter through tests/support/python.hpp.
set(ACCEL_MPIEXEC_FLAGS --oversubscribe --bind-to none)
execute_process(COMMAND id -u OUTPUT_VARIABLE _uid OUTPUT_STRIP_TRAILING_WHITESPACE)
if(_uid STREQUAL "0")
  list(PREPEND ACCEL_MPIEXEC_FLAGS --allow-run-as-root)
endif()
set(ACCEL_TEST_ENV "OMPI_MCA_rmaps_base_oversubscribe=1;OMP_NUM_THREADS=1")

if(NOT TARGET accel_catch_main)
  file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/catch_main.cpp"
       "#define CATCH_CONFIG_MAIN\n#include <catch2/catch.hpp>\n")
  add_library(accel_catch_main STATIC "${CMAKE_CURRENT_BINARY_DIR}/catch_main.cpp")
  target_link_libraries(accel_catch_main PUBLIC Catch2::Catch2)
endif()

function(_accel_test_executable name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE accel_catch_main ${T_LIBS})
  target_compile_definitions(${name} PRIVATE
    ACCEL_SOURCE_DIR="${PROJECT_SOURCE_DIR}" ACCEL_BINARY_DIR="${PROJECT_BINARY_DIR}")
  accel_target_options(${name})
endfunction()

function(accel_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  _accel_test_executable(${name} SOURCES ${T_SOURCES} LIBS ${T_LIBS})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
                       ENVIRONMENT "${ACCEL_TEST_ENV}")
endfunction()

function(accel_add_mpi_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;NP;ARGS" ${ARGN})
  _accel_test_executable(${name} SOURCES ${T_SOURCES} LIBS ${T_LIBS})
  if(NOT T_NP)
    set(T_NP 2 3)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  foreach(np ${T_NP})
    add_test(NAME ${name}_np${np}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${ACCEL_MPIEXEC_FLAGS}
                     $<TARGET_FILE:${name}> ${T_ARGS})
    set_tests_properties(${name}_np${np} PROPERTIES LABELS mpi TIMEOUT ${T_TIMEOUT}
                         ENVIRONMENT "${ACCEL_TEST_ENV}" PROCESSORS ${np})
  endforeach()
endfunction()

# accel_add_disk_full_test(<test executable> [LABELS <labels...>])
#   <name>_disk_full_test runs the executable's hidden "[disk_full]" test cases, which re-run it in a
#   private mount namespace with a 64 KiB tmpfs over a scratch directory. That needs root or
#   CAP_SYS_ADMIN; elsewhere the test prints "SKIPPED: ..." and ctest shows it skipped.
function(accel_add_disk_full_test executable)
  cmake_parse_arguments(T "" "" "LABELS" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  string(REGEX REPLACE "_test$" "" _stem "${executable}")
  add_test(NAME ${_stem}_disk_full_test COMMAND ${executable} "[disk_full]")
  set_tests_properties(${_stem}_disk_full_test PROPERTIES LABELS "${T_LABELS}" TIMEOUT 300
                       ENVIRONMENT "${ACCEL_TEST_ENV}" SKIP_REGULAR_EXPRESSION "SKIPPED:")
endfunction()
