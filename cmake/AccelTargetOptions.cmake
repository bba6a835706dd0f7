# accel_target_options(<target>): warnings (as errors) and sanitizers for accel's own targets.
# Third-party headers are included as SYSTEM so their warnings never fail our build.
function(accel_target_options target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
  if(ACCEL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(ACCEL_SANITIZE)
    string(REPLACE ";" "," _san "${ACCEL_SANITIZE}")
    target_compile_options(${target} PRIVATE -fsanitize=${_san} -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${_san})
  endif()
endfunction()
