#pragma once
// accel::checkpoint::remove_tree: deletes a file or directory tree (nothing if absent); throws
// accel::CheckpointError when it cannot. Used instead of std::filesystem::remove_all, whose copy
// exported by libtorch.so crashes when the dynamic linker binds our calls to it.
#include <filesystem>

namespace accel::checkpoint {
void remove_tree(const std::filesystem::path& path);
}  // namespace accel::checkpoint
