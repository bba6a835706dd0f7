#pragma once
// Errors accel-launch reports to its user. Each message names the offending value and the fix;
// each error carries the exit status accel-launch ends with when it is not caught further in.
#include <accel/tracking/errors.hpp>
#include <string>

namespace accel::launch {

// Exit statuses of accel-launch's own failures (a failing rank's status is passed through instead).
inline constexpr int kExitUsage = 2;            // bad flag, bad config file, bad value
inline constexpr int kExitNotExecutable = 126;  // the program exists but cannot be executed
inline constexpr int kExitNotFound = 127;       // the program or mpirun/srun cannot be found

// Base of every error accel-launch raises on purpose.
class LaunchError : public accel::Error {
 public:
  LaunchError(const std::string& message, int exit_code = 1)
      : accel::Error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// A command-line flag or flag combination is invalid.
class UsageError : public LaunchError {
 public:
  explicit UsageError(const std::string& message) : LaunchError(message, kExitUsage) {}
};

// A config file cannot be read, is not valid YAML/JSON, or holds an invalid value
// (the message names the file, the line and the key).
class ConfigError : public LaunchError {
 public:
  explicit ConfigError(const std::string& message) : LaunchError(message, kExitUsage) {}
};

// Something needed to start the job is missing: the program, mpirun, srun, the sanity program.
class MissingExecutable : public LaunchError {
 public:
  MissingExecutable(const std::string& message, int exit_code = kExitNotFound)
      : LaunchError(message, exit_code) {}
};

}  // namespace accel::launch
