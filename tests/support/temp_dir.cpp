#include "temp_dir.hpp"

#include <ftw.h>
#include <stdlib.h>

#include <cstdio>
#include <stdexcept>

namespace accel::test {

namespace {

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  std::remove(path);  // a file, a link or (visited after its content) an emptied directory
  return 0;
}

}  // namespace

TempDir::TempDir(std::string_view prefix) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed for " + pattern);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  remove_tree(path_);
}

void remove_tree(const std::filesystem::path& path) {
  ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

}  // namespace accel::test
