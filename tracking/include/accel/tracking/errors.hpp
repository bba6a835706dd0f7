#pragma once
// accel's typed exceptions. Every message says what was wrong, the offending value, and what to do.
// Messages never contain secrets (API keys, tokens, passwords).
#include <stdexcept>
#include <string>

namespace accel {

// Base of every exception accel throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A value passed by the user is invalid (bad key, malformed image, unknown option value, ...).
class InvalidValue : public Error {
 public:
  using Error::Error;
};

// A call came at the wrong time (log before init_trackers, after end_training, ...).
class UsageError : public Error {
 public:
  using Error::Error;
};

// A tracker's backend cannot be reached right now; the record is kept and retried (see GeneralTracker).
class TrackerUnavailable : public Error {
 public:
  using Error::Error;
};

// A tracker failed in a way retrying will not fix (bad credentials, rejected request, disk error).
class TrackerError : public Error {
 public:
  using Error::Error;
};

// A collective operation did not complete (timeout, peer died, mismatched call).
class DistributedError : public Error {
 public:
  using Error::Error;
};

}  // namespace accel
