#pragma once
// Checkpoint directories: layout, atomic commit, completion marker, automatic naming and pruning.
// Accelerator::save_state / load_state drive these steps across ranks; this header owns the on-disk
// contract:
//
//   <dir>/model_<i>.pt          parameters and buffers of prepared model i          (rank 0)
//   <dir>/optimizer_<i>.pt      state of prepared optimizer i                        (rank 0)
//   <dir>/scheduler_<i>.pt      step count of prepared scheduler i                   (rank 0)
//   <dir>/dataloader_<i>.pt     epoch and position of prepared data loader i         (rank 0)
//   <dir>/scaler.pt             fp16 GradScaler state, when fp16 is on               (rank 0)
//   <dir>/custom_checkpoint_<i>.pt  object i registered with register_for_checkpointing (rank 0)
//   <dir>/random_states_<r>.pt  CPU and CUDA generator states of rank r and the step (every rank)
//   <dir>/accel_checkpoint.json completion marker, written last (rank 0)
//
// A checkpoint is written into a hidden sibling "<parent>/.<name>.tmp", every file fsynced, the marker
// written, then the directory renamed into place and the parent fsynced: a crash leaves either the old
// state or a complete checkpoint, and a directory without the marker is refused by load_state.
#include <torch/serialize/archive.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "accel/tracking/errors.hpp"

namespace accel {

// A checkpoint cannot be written or read (incomplete, missing file, wrong layout).
class CheckpointError : public Error {
 public:
  using Error::Error;
};

// An object whose state save_state/load_state carry (Accelerate: register_for_checkpointing of an
// object with state_dict/load_state_dict). Called on rank 0 for save and on every rank for load.
class Checkpointable {
 public:
  virtual ~Checkpointable() = default;
  virtual void save_state(torch::serialize::OutputArchive& archive) const = 0;
  virtual void load_state(torch::serialize::InputArchive& archive) = 0;
};

namespace checkpoint {

inline constexpr const char* kMarkerName = "accel_checkpoint.json";
inline constexpr const char* kAutomaticPrefix = "checkpoint_";

// "<parent>/.<name>.tmp": where a checkpoint is assembled before the rename.
std::filesystem::path temp_dir_for(const std::filesystem::path& final_dir);

// Writes an archive to `path` and fsyncs it. Throws CheckpointError naming the file on failure.
void write_archive(const std::filesystem::path& path,
                   const std::function<void(torch::serialize::OutputArchive&)>& fill);
// Reads `path` into an archive given to `read`, its tensors mapped to `device` when given.
// Throws CheckpointError naming the file if it is missing or corrupt.
void read_archive(const std::filesystem::path& path,
                  const std::function<void(torch::serialize::InputArchive&)>& read,
                  std::optional<torch::Device> device = std::nullopt);

// Generator states of this process: the CPU default generator and every CUDA device's, plus `step`.
void save_rng_states(const std::filesystem::path& path, int64_t step);
// Restores them; returns the saved step. CUDA states are restored for the devices present.
int64_t load_rng_states(const std::filesystem::path& path);

// Writes the marker (metadata + "complete": true) into temp_dir, fsyncs, renames temp_dir to
// final_dir and fsyncs the parent. Throws CheckpointError if final_dir exists.
void commit(const std::filesystem::path& temp_dir, const std::filesystem::path& final_dir,
            const nlohmann::json& metadata);

// Throws CheckpointError with a clear message unless dir is a complete accel checkpoint.
// Returns the marker's metadata.
nlohmann::json require_complete(const std::filesystem::path& dir);

// checkpoint_<i> directories directly under `root`, sorted by i (temp dirs ignored).
std::vector<std::pair<int64_t, std::filesystem::path>> automatic_checkpoints(
    const std::filesystem::path& root);
// Deletes the oldest automatic checkpoints so that at most keep remain. Returns what was deleted.
std::vector<std::filesystem::path> prune(const std::filesystem::path& root, int64_t keep);
// The index i of a directory named checkpoint_<i>, or nullopt.
std::optional<int64_t> automatic_index(const std::filesystem::path& dir);

}  // namespace checkpoint
}  // namespace accel
