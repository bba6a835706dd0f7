#pragma once
// In-memory data for training loops: TensorDataset (row i of data and target is sample i) and
// DataLoader, which cuts an epoch into batches for THIS process.
//
// Sharding is accel::DistributedSampler's (torch's DistributedSampler): the epoch's order (a permutation
// seeded by seed + epoch when shuffling, identical on every rank) is padded by repeating its first
// indices until it divides by the number of processes, and rank r takes positions r, r + W, r + 2W, ...
// so every rank sees the same number of batches. Padded samples are duplicates, always at the end of a
// rank's share; Accelerator::gather_for_metrics drops them.
// even_batches = false: no padding (ranks may then have one sample — and possibly one batch — fewer;
// ignored with split_batches, which always gives every rank a full share).
// drop_last = true: each rank keeps floor(N / W) samples and drops its incomplete last batch.
// split_batches = true: batch_size is the global batch; each rank takes a contiguous batch_size / W of
// it, and the last global batch is completed by wrapping around to the start of the epoch's order.
//
// The epoch advances by itself when a pass runs to the end (as Accelerate's DataLoaderShard); set_epoch
// overrides it. Position within the pass is checkpointed, so a loader restored from a checkpoint resumes
// at the batch after the last one it yielded. Used from the training thread only.
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>

#include "accel/gradient_state.hpp"
#include "accel/sampler.hpp"

namespace accel {

struct Batch {
  torch::Tensor data;
  torch::Tensor target;
};

class TensorDataset {
 public:
  // data and target must have the same (non-zero) number of rows. Throws accel::InvalidValue otherwise.
  TensorDataset(torch::Tensor data, torch::Tensor target);
  int64_t size() const { return data_.size(0); }
  const torch::Tensor& data() const { return data_; }
  const torch::Tensor& target() const { return target_; }
  // The samples at `indices` (1-D int64), in that order.
  TensorDataset subset(const torch::Tensor& indices) const;

 private:
  torch::Tensor data_;
  torch::Tensor target_;
};

struct DataLoaderOptions {
  int64_t batch_size = 1;  // per process (global when split_batches)
  bool shuffle = false;
  bool drop_last = false;
  uint64_t seed = 0;  // shuffle order of epoch e is a permutation seeded with seed + e
};

// How prepare() shards a loader. Defaults: one process, no device placement.
struct DataLoaderSharding {
  int rank = 0;
  int num_processes = 1;
  bool split_batches = false;
  bool even_batches = true;
  std::optional<torch::Device> device{};  // batches are moved here (non-blocking) when set
  std::shared_ptr<GradientState> gradient_state{};
};

class DataLoader {
 public:
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = const Batch&;

    Iterator() = default;
    reference operator*() const { return loader_->current_; }
    pointer operator->() const { return &loader_->current_; }
    Iterator& operator++();
    bool operator==(const Iterator& other) const { return at_end() == other.at_end(); }

   private:
    friend class DataLoader;
    explicit Iterator(DataLoader* loader) : loader_(loader) {}
    bool at_end() const;
    DataLoader* loader_ = nullptr;
  };

  // Throws accel::InvalidValue for batch_size < 1.
  DataLoader(TensorDataset dataset, DataLoaderOptions options);

  // Starts a pass over this process's share of the current epoch. Starting a new pass while one is in
  // progress abandons the old one (like re-iterating a Python DataLoader).
  Iterator begin();
  Iterator end() { return Iterator(); }

  int64_t size() const;                 // batches per pass on this process
  int64_t batch_size() const;           // per-process batch size
  int64_t samples_per_process() const;  // rows this process sees per pass, padding included
  int64_t epoch() const { return epoch_; }
  void set_epoch(int64_t epoch);
  // The next pass starts at batch n of its epoch (resume mid-epoch). Throws accel::InvalidValue if n<0.
  void skip_first_batches(int64_t n);
  int64_t position() const { return position_; }  // batches yielded in the pass in progress

  // Rows of the current batch / of this process's pass that are real samples, not padding.
  int64_t real_rows_in_current_batch() const { return current_real_rows_; }
  int64_t current_batch_rows() const { return current_.data.defined() ? current_.data.size(0) : 0; }
  int64_t real_samples_per_process() const;
  const TensorDataset& dataset() const { return dataset_; }
  const DataLoaderOptions& options() const { return options_; }
  const DataLoaderSharding& sharding() const { return sharding_; }

  // Called by Accelerator::prepare. Throws accel::InvalidValue when split_batches and batch_size is not
  // a multiple of num_processes.
  void shard(DataLoaderSharding sharding);

  // Epoch and position within the pass: a restored loader's next pass resumes after the last batch
  // yielded before the save (an empty pass when that was the epoch's last batch).
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  void start_pass();
  void load_batch();
  void finish_pass();
  DistributedSampler make_sampler() const;
  bool trims_padding() const;           // even_batches = false without split_batches/drop_last
  torch::Tensor epoch_indices() const;  // this process's sample indices of epoch_, padding included
  int64_t real_rows(int64_t batch) const;  // rows of batch `batch` that are not padding

  TensorDataset dataset_;
  DataLoaderOptions options_;
  DataLoaderSharding sharding_;
  int64_t epoch_ = 0;
  int64_t position_ = 0;
  int64_t pending_skip_ = 0;
  bool in_pass_ = false;
  torch::Tensor indices_;  // this pass's indices (int64, CPU)
  Batch current_;
  int64_t current_real_rows_ = 0;
};

}  // namespace accel
