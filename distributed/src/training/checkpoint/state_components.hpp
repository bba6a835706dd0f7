#pragma once
// checkpoint::StateComponent: one kind of object that Accelerator::save_state writes and load_state
// reads, one file per object (the layout is in accel/checkpoint.hpp). The Accelerator lists its
// components once (state_components() in accelerator.cpp); save_state and load_state both walk that
// one table, in its order, so a new kind of state is one more row rather than two more loops.
//
// Who calls it: Accelerator::save_state (on rank 0) and load_state (on every rank), on the training
// thread. Errors: accel::CheckpointError naming the file that could not be written or read, or the
// count that differs between the checkpoint and this program.
#include <torch/serialize/archive.h>

#include <cstddef>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>

namespace accel::checkpoint {

struct StateComponent {
  const char* stem = "";  // "model": model_<i>.pt; when not indexed, "scaler": scaler.pt
  bool indexed = true;    // one file per object, numbered from 0
  std::size_t count = 0;  // objects of this kind: files written, and read
  // The marker records `count` under this key and load_state requires the same count; nullptr: not
  // recorded (a component that is there or not by configuration).
  const char* metadata_key = nullptr;
  bool load_to_device = false;    // tensors are mapped to the accelerator's device when read
  bool optional_on_load = false;  // a checkpoint without the file is loaded without it
  std::function<void(std::size_t, torch::serialize::OutputArchive&)> save;
  std::function<void(std::size_t, torch::serialize::InputArchive&)> load;

  // "model_3.pt", "scaler.pt".
  std::string file_name(std::size_t index) const;
};

// Writes every object of every component into `dir` (one fsynced archive each), in table order.
void write_components(std::span<const StateComponent> components, const std::filesystem::path& dir);
// Reads them back from `dir`, in table order; tensors of load_to_device components onto `device`.
void read_components(std::span<const StateComponent> components, const std::filesystem::path& dir,
                     torch::Device device);
// Records the count of every component that has a metadata key into the marker's metadata.
void record_counts(std::span<const StateComponent> components, nlohmann::json& metadata);
// Throws CheckpointError unless `metadata` (the marker of `source`) holds this program's counts.
void check_counts(std::span<const StateComponent> components, const nlohmann::json& metadata,
                  const std::filesystem::path& source);

}  // namespace accel::checkpoint
