# Finds LibTorch and decides CUDA support. Result: interface target accel_torch, and
# ACCEL_CUDA_ENABLED (with target accel_nccl) when CUDA + NCCL are usable.
#
# Where LibTorch comes from, first match wins:
#   1. Torch_DIR or CMAKE_PREFIX_PATH given by the user (their own LibTorch, or Debian's libtorch-dev);
#   2. the torch wheel in <source>/.venv installed by scripts/setup.sh.
# Without CUDA we link libtorch_cpu + libc10 only, so our binaries load on any machine, with or without
# a GPU or the CUDA toolkit, even though the wheel itself ships CUDA libraries.

set(_accel_torch_root "")
if(NOT Torch_DIR)
  file(GLOB _venv_torch_cmake
       "${PROJECT_SOURCE_DIR}/.venv/lib/python3*/site-packages/torch/share/cmake/Torch")
  if(_venv_torch_cmake)
    list(GET _venv_torch_cmake 0 _venv_torch_cmake)
    set(Torch_DIR "${_venv_torch_cmake}" CACHE PATH "Directory containing TorchConfig.cmake" FORCE)
  endif()
endif()
if(Torch_DIR)
  get_filename_component(_accel_torch_root "${Torch_DIR}/../../.." ABSOLUTE)
else()
  find_path(_accel_torch_cfg TorchConfig.cmake
            PATH_SUFFIXES share/cmake/Torch lib/cmake/Torch lib/x86_64-linux-gnu/cmake/Torch)
  if(_accel_torch_cfg)
    set(Torch_DIR "${_accel_torch_cfg}" CACHE PATH "Directory containing TorchConfig.cmake" FORCE)
    get_filename_component(_accel_torch_root "${_accel_torch_cfg}/../../.." ABSOLUTE)
  endif()
endif()
if(NOT _accel_torch_root OR NOT EXISTS "${Torch_DIR}/TorchConfig.cmake")
  message(FATAL_ERROR
    "accel: LibTorch was not found.\n"
    "  Run scripts/setup.sh (installs the torch wheel into .venv), or point CMake at a LibTorch with\n"
    "  -DTorch_DIR=<libtorch>/share/cmake/Torch (or CMAKE_PREFIX_PATH), or apt-get install libtorch-dev.\n"
    "  To build only tracking and the launcher, configure with -DACCEL_BUILD_DISTRIBUTED=OFF.")
endif()

# Does this LibTorch have CUDA, and are nvcc and NCCL here to build against it?
set(_torch_lib_dir "${_accel_torch_root}/lib")
if(NOT EXISTS "${_torch_lib_dir}/libtorch_cpu.so" AND EXISTS "${_accel_torch_root}/lib/x86_64-linux-gnu")
  set(_torch_lib_dir "${_accel_torch_root}/lib/x86_64-linux-gnu")
endif()
set(_torch_has_cuda OFF)
if(EXISTS "${_torch_lib_dir}/libtorch_cuda.so")
  set(_torch_has_cuda ON)
endif()
find_program(ACCEL_NVCC nvcc PATHS /usr/local/cuda/bin)
get_filename_component(_site_packages "${_accel_torch_root}/.." ABSOLUTE)
find_path(ACCEL_NCCL_INCLUDE_DIR nccl.h
          HINTS "${_site_packages}/nvidia/nccl/include" /usr/local/cuda/include NO_DEFAULT_PATH)
find_library(ACCEL_NCCL_LIBRARY NAMES nccl libnccl.so.2
             HINTS "${_site_packages}/nvidia/nccl/lib" /usr/local/cuda/lib64 NO_DEFAULT_PATH)

set(ACCEL_CUDA_ENABLED OFF)
if(ACCEL_WITH_CUDA STREQUAL "ON" OR ACCEL_WITH_CUDA STREQUAL "AUTO")
  set(_missing "")
  if(NOT _torch_has_cuda)
    list(APPEND _missing "a LibTorch built with CUDA")
  endif()
  if(NOT ACCEL_NVCC)
    list(APPEND _missing "nvcc (the CUDA toolkit)")
  endif()
  if(NOT ACCEL_NCCL_INCLUDE_DIR OR NOT ACCEL_NCCL_LIBRARY)
    list(APPEND _missing "NCCL (pip install nvidia-nccl-cu13, or the toolkit's NCCL)")
  endif()
  if(_missing)
    if(ACCEL_WITH_CUDA STREQUAL "ON")
      string(JOIN ", " _m ${_missing})
      message(FATAL_ERROR "accel: ACCEL_WITH_CUDA=ON but these are missing: ${_m}. "
                          "Install them or configure with -DACCEL_WITH_CUDA=OFF.")
    endif()
  else()
    set(ACCEL_CUDA_ENABLED ON)
  endif()
endif()

add_library(accel_torch INTERFACE)
if(ACCEL_CUDA_ENABLED)
  if(NOT CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_COMPILER "${ACCEL_NVCC}")
  endif()
  if(NOT TORCH_CUDA_ARCH_LIST)
    set(TORCH_CUDA_ARCH_LIST "8.0;9.0")
  endif()
  find_package(Torch REQUIRED)
  target_link_libraries(accel_torch INTERFACE ${TORCH_LIBRARIES})
  target_include_directories(accel_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  add_library(accel_nccl INTERFACE)
  target_include_directories(accel_nccl SYSTEM INTERFACE "${ACCEL_NCCL_INCLUDE_DIR}")
  target_link_libraries(accel_nccl INTERFACE "${ACCEL_NCCL_LIBRARY}")
  target_compile_definitions(accel_torch INTERFACE ACCEL_WITH_CUDA=1)
else()
  set(ACCEL_TORCH_INCLUDE_DIRS
      "${_accel_torch_root}/include" "${_accel_torch_root}/include/torch/csrc/api/include")
  set(ACCEL_TORCH_LINK_LIBS "${_torch_lib_dir}/libtorch_cpu.so" "${_torch_lib_dir}/libc10.so")
  target_include_directories(accel_torch SYSTEM INTERFACE ${ACCEL_TORCH_INCLUDE_DIRS})
  target_link_libraries(accel_torch INTERFACE ${ACCEL_TORCH_LINK_LIBS} Threads::Threads)
  target_compile_definitions(accel_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=1)
endif()
# The installed package recreates this target as accel::torch_deps (see accelConfig.cmake.in):
# LibTorch lives outside accel's install prefix, so its paths are recorded, not exported.
set(ACCEL_TORCH_LIB_DIR "${_torch_lib_dir}")
message(STATUS "accel: LibTorch at ${_accel_torch_root}; CUDA/NCCL: ${ACCEL_CUDA_ENABLED}")
# CMake leaves directories inside the source tree (.venv) out of install RPATHs: add LibTorch's.
list(APPEND CMAKE_INSTALL_RPATH "${_torch_lib_dir}")
