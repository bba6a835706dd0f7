#pragma once
// accel::DistributedSampler: which dataset indices this rank reads, epoch by epoch.
//
// Order: with shuffle, a permutation of 0..N-1 drawn from a torch CPU generator seeded with seed + epoch
// (torch::randperm), so every rank computes the same permutation without communicating, and it equals
// torch.utils.data.DistributedSampler's for the same seed and epoch. Without shuffle: 0..N-1.
// Sharding (split_batches = false, the default, like torch's DistributedSampler): the order is padded by
// repeating its beginning until its length is a multiple of num_replicas (or, with drop_last, cut down to
// one), then rank r takes elements r, r + num_replicas, ...; every rank gets num_samples() indices, and
// next(batch_size) hands them out batch_size at a time (the last batch may be smaller).
// split_batches = true (Accelerate's split_batches): next(batch_size) takes the next GLOBAL batch of
// batch_size indices from the order and returns this rank's contiguous share of batch_size/num_replicas
// (batch_size must be a multiple of num_replicas). A last partial global batch is completed by wrapping
// around to the beginning of the order (so every rank gets a full share), or dropped with drop_last.
// skip_first_batches(n): the next pass over the epoch starts at batch n (for resuming mid-epoch); it is
// consumed by that pass. Works in both modes.
// Usable directly (indices(), next()) or as the sampler of torch::data::make_data_loader, which calls
// reset() at the start of every pass. Thread-safety: none (one data loader owns it).
#include <torch/data/samplers/base.h>
#include <torch/serialize/archive.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace accel {

struct DistributedSamplerOptions {
  int num_replicas = -1;  // -1: State::instance().world_size()
  int rank = -1;          // -1: State::instance().rank()
  bool shuffle = true;
  std::uint64_t seed = 0;
  bool drop_last = false;
  bool split_batches = false;
};

class DistributedSampler final : public torch::data::samplers::Sampler<> {
 public:
  // Throws accel::InvalidValue for num_replicas < 1, rank outside [0, num_replicas), or a dataset too
  // small to give every rank one sample under drop_last.
  explicit DistributedSampler(std::size_t dataset_size, DistributedSamplerOptions options = {});

  // Selects the permutation of `epoch` (call before each epoch, as with torch) and rewinds.
  void set_epoch(std::int64_t epoch);
  std::int64_t epoch() const { return epoch_; }
  // The next pass starts at batch n (counted in batches of the size later passed to next()).
  void skip_first_batches(std::size_t n) { pending_skip_ = n; }

  // This rank's indices for the epoch (split_batches = false semantics; in split_batches mode, the
  // shares of all global batches of `batch_size`, concatenated).
  std::vector<std::size_t> indices(std::size_t batch_size = 1) const;
  // Indices per rank per epoch (split_batches = false): ceil or floor (drop_last) of N / num_replicas.
  std::size_t num_samples() const;
  // Number of batches this rank yields per epoch for batch_size (before any skip).
  std::size_t num_batches(std::size_t batch_size) const;
  std::size_t dataset_size() const { return dataset_size_; }
  const DistributedSamplerOptions& options() const { return options_; }

  // torch::data::samplers::Sampler: rewinds (new_size replaces the dataset size); next returns the next
  // batch of this rank, nullopt at the end of the epoch. batch_size 0 throws accel::InvalidValue.
  void reset(std::optional<std::size_t> new_size = std::nullopt) override;
  std::optional<std::vector<std::size_t>> next(std::size_t batch_size) override;
  // Stores/restores epoch, position and options-independent progress ("epoch", "position").
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  std::vector<std::size_t> order() const;  // the epoch's global order (permutation or identity)

  std::size_t dataset_size_;
  DistributedSamplerOptions options_;
  std::int64_t epoch_ = 0;
  std::size_t position_ = 0;  // batches handed out in this pass
  std::size_t pending_skip_ = 0;
  std::vector<std::size_t> order_cache_;  // order() of epoch_, filled on first use in a pass
};

}  // namespace accel
