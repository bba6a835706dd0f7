# Use ccache for every compiler when it is installed (scripts/setup.sh installs it). The sloppiness
# settings let ccache cache translation units that use precompiled headers.
find_program(ACCEL_CCACHE ccache)
if(ACCEL_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(_launcher "${CMAKE_COMMAND}" -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      "${ACCEL_CCACHE}")
  set(CMAKE_C_COMPILER_LAUNCHER ${_launcher})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${_launcher})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${_launcher})
endif()
