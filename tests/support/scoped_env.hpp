#pragma once
// accel::test::ScopedEnv: an environment variable set (or unset) for one scope, restored after.
// Thread-safety: none (setenv/unsetenv); tests set variables before they start threads.
#include <cstdlib>
#include <optional>
#include <string>

namespace accel::test {

// Sets an environment variable for the scope (unset when value is nullptr).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace accel::test
