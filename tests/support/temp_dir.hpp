#pragma once
// accel::test::TempDir: a fresh directory for one test (mkdtemp under $TMPDIR or /tmp), removed
// with everything in it when the object goes. The tree is removed with nftw(3), not with
// std::filesystem::remove_all: in test binaries linked with LibTorch the recursive remove_all binds
// to LibTorch's own copy (built for another ABI) and crashes.
#include <filesystem>
#include <string>
#include <string_view>

namespace accel::test {

class TempDir {
 public:
  // Creates <temp_directory_path>/<prefix>-XXXXXX; throws std::runtime_error when it cannot.
  explicit TempDir(std::string_view prefix = "accel-test");
  ~TempDir();  // removes the tree; errors are ignored
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Removes path and everything below it (without following symbolic links); no error when it does
// not exist. Safe in LibTorch-linked binaries (see TempDir).
void remove_tree(const std::filesystem::path& path);

}  // namespace accel::test
