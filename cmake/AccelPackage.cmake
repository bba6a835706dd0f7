# Install rules and the exported CMake package: find_package(accel) gives accel::tracking and,
# when built, accel::distributed.
include(CMakePackageConfigHelpers)
set(ACCEL_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/accel")
install(EXPORT accelTargets NAMESPACE accel:: DESTINATION "${ACCEL_INSTALL_CMAKEDIR}")
configure_package_config_file("${CMAKE_CURRENT_LIST_DIR}/accelConfig.cmake.in"
                              "${CMAKE_CURRENT_BINARY_DIR}/accelConfig.cmake"
                              INSTALL_DESTINATION "${ACCEL_INSTALL_CMAKEDIR}")
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/accelConfigVersion.cmake"
                                 COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/accelConfig.cmake"
              "${CMAKE_CURRENT_BINARY_DIR}/accelConfigVersion.cmake"
        DESTINATION "${ACCEL_INSTALL_CMAKEDIR}")
