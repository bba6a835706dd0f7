# Libraries accel uses (CURL, Protobuf, zlib, OpenSSL and libzip only for the trackers that need them). Each failure says what to install.
# scripts/setup.sh installs all of them on Debian 12.
macro(accel_require_package pkg debian_pkg)
  find_package(${pkg} ${ARGN} QUIET)
  if(NOT ${pkg}_FOUND)
    message(FATAL_ERROR "accel: ${pkg} was not found. Install it with: apt-get install ${debian_pkg} "
                        "(or run scripts/setup.sh, which installs everything accel needs).")
  endif()
endmacro()

find_package(Threads REQUIRED)
accel_require_package(nlohmann_json libnlohmann-json3-dev 3.10)
if(ACCEL_TRACKER_MLFLOW OR ACCEL_TRACKER_WANDB)
  accel_require_package(CURL libcurl4-openssl-dev)
endif()
accel_require_package(PNG libpng-dev)
accel_require_package(yaml-cpp libyaml-cpp-dev)
accel_require_package(CLI11 libcli11-dev)
accel_require_package(fmt libfmt-dev)
if(ACCEL_TRACKER_TENSORBOARD OR ACCEL_TRACKER_WANDB)
  accel_require_package(Protobuf "libprotobuf-dev protobuf-compiler")
  if(NOT Protobuf_PROTOC_EXECUTABLE)
    message(FATAL_ERROR "accel: protoc was not found. Install it with: apt-get install protobuf-compiler")
  endif()
endif()
if(ACCEL_TRACKER_WANDB OR ACCEL_TRACKER_COMET)
  accel_require_package(ZLIB zlib1g-dev)  # W&B: the log's CRC-32; Comet: gzip batch bodies
endif()
if(ACCEL_TRACKER_WANDB)
  accel_require_package(OpenSSL libssl-dev)
endif()
if(ACCEL_TRACKER_COMET)
  # Through pkg-config: Debian 12's libzip CMake config fails when the zipcmp/zipmerge/ziptool
  # programs (other packages) are not installed.
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(LIBZIP QUIET IMPORTED_TARGET libzip)
  endif()
  if(NOT LIBZIP_FOUND)
    message(FATAL_ERROR "accel: libzip was not found. Install it with: apt-get install libzip-dev "
                        "pkg-config (or run scripts/setup.sh, which installs everything accel needs).")
  endif()
endif()
find_package(MPI COMPONENTS C)
if(NOT MPI_C_FOUND)
  message(FATAL_ERROR "accel: no MPI was found (mpicc/mpirun). Install OpenMPI with: "
                      "apt-get install openmpi-bin libopenmpi-dev")
endif()
if(NOT MPIEXEC_EXECUTABLE)
  message(FATAL_ERROR "accel: mpirun was not found. Install it with: apt-get install openmpi-bin")
endif()
if(ACCEL_BUILD_TESTS)
  accel_require_package(Catch2 catch2 2)
endif()
# OpenMPI's deprecated C++ bindings would otherwise be dragged in by <mpi.h> in C++ files.
set_property(TARGET MPI::MPI_C APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS
             OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
