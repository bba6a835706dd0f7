// DistributedSampler (see accel/sampler.hpp). The epoch's order is computed once per epoch (or dataset
// size change) and kept in order_cache_; everything else is index arithmetic on it.
#include "accel/sampler.hpp"

#include <torch/torch.h>

#include <string>

#include "accel/state.hpp"
#include "accel/tracking/errors.hpp"

namespace accel {
namespace {

std::size_t ceil_div(std::size_t a, std::size_t b) {
  return (a + b - 1) / b;
}

}  // namespace

DistributedSampler::DistributedSampler(std::size_t dataset_size, DistributedSamplerOptions options)
    : dataset_size_(dataset_size), options_(options) {
  if (options_.num_replicas < 0) options_.num_replicas = State::instance().world_size();
  if (options_.rank < 0) options_.rank = State::instance().rank();
  if (options_.num_replicas < 1) {
    throw InvalidValue("DistributedSampler: num_replicas=" + std::to_string(options_.num_replicas) +
                       " must be at least 1 (or -1 for the world size).");
  }
  if (options_.rank >= options_.num_replicas) {
    throw InvalidValue("DistributedSampler: rank=" + std::to_string(options_.rank) +
                       " is outside [0, " + std::to_string(options_.num_replicas) +
                       "); pass -1 to use this process's rank.");
  }
  reset(std::nullopt);
}

std::vector<std::size_t> DistributedSampler::order() const {
  std::vector<std::size_t> out(dataset_size_);
  if (!options_.shuffle) {
    for (std::size_t i = 0; i < dataset_size_; ++i) out[i] = i;
    return out;
  }
  // Same generator and kernel as torch.utils.data.DistributedSampler: randperm(N, seed + epoch).
  auto generator =
      at::make_generator<at::CPUGeneratorImpl>(options_.seed + static_cast<std::uint64_t>(epoch_));
  const at::Tensor permutation =
      torch::randperm(static_cast<std::int64_t>(dataset_size_), generator, torch::kLong);
  const auto* p = permutation.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < dataset_size_; ++i) out[i] = static_cast<std::size_t>(p[i]);
  return out;
}

void DistributedSampler::set_epoch(std::int64_t epoch) {
  epoch_ = epoch;
  order_cache_ = order();
  position_ = 0;
}

std::size_t DistributedSampler::num_samples() const {
  const auto replicas = static_cast<std::size_t>(options_.num_replicas);
  return options_.drop_last ? dataset_size_ / replicas : ceil_div(dataset_size_, replicas);
}

std::size_t DistributedSampler::num_batches(std::size_t batch_size) const {
  if (batch_size == 0)
    throw InvalidValue("DistributedSampler: batch_size must be at least 1, got 0.");
  if (options_.split_batches) {
    return options_.drop_last ? dataset_size_ / batch_size : ceil_div(dataset_size_, batch_size);
  }
  return ceil_div(num_samples(), batch_size);
}

std::vector<std::size_t> DistributedSampler::indices(std::size_t batch_size) const {
  const auto replicas = static_cast<std::size_t>(options_.num_replicas);
  const auto rank = static_cast<std::size_t>(options_.rank);
  std::vector<std::size_t> out;
  if (options_.split_batches) {
    if (batch_size == 0 || batch_size % replicas != 0) {
      throw InvalidValue(
          "DistributedSampler: with split_batches, batch_size=" + std::to_string(batch_size) +
          " must be a positive multiple of num_replicas=" + std::to_string(replicas) +
          " (it is the global batch, split across ranks).");
    }
    const std::size_t share = batch_size / replicas;
    const std::size_t batches = num_batches(batch_size);
    for (std::size_t b = 0; b < batches; ++b) {
      for (std::size_t j = 0; j < share; ++j) {
        const std::size_t k = b * batch_size + rank * share + j;  // wraps around in the last batch
        out.push_back(order_cache_[k % dataset_size_]);
      }
    }
    return out;
  }
  const std::size_t total = num_samples() * replicas;
  for (std::size_t k = rank; k < total; k += replicas) {
    out.push_back(order_cache_[k % dataset_size_]);  // padding repeats the order from its start
  }
  return out;
}

void DistributedSampler::reset(std::optional<std::size_t> new_size) {
  if (new_size.has_value()) dataset_size_ = *new_size;
  if (options_.drop_last && dataset_size_ < static_cast<std::size_t>(options_.num_replicas)) {
    throw InvalidValue(
        "DistributedSampler: drop_last with " + std::to_string(dataset_size_) +
        " samples leaves nothing for " + std::to_string(options_.num_replicas) +
        " ranks; use a larger dataset or drop_last=false (pads by repeating samples).");
  }
  if (new_size.has_value() || order_cache_.size() != dataset_size_) order_cache_ = order();
  position_ = 0;
}

std::optional<std::vector<std::size_t>> DistributedSampler::next(std::size_t batch_size) {
  if (batch_size == 0)
    throw InvalidValue("DistributedSampler::next: batch_size must be at least 1.");
  position_ += pending_skip_;
  pending_skip_ = 0;
  if (position_ >= num_batches(batch_size)) return std::nullopt;
  const auto replicas = static_cast<std::size_t>(options_.num_replicas);
  const auto rank = static_cast<std::size_t>(options_.rank);
  std::vector<std::size_t> batch;
  if (options_.split_batches) {
    if (batch_size % replicas != 0) {
      throw InvalidValue(
          "DistributedSampler: with split_batches, batch_size=" + std::to_string(batch_size) +
          " must be a multiple of num_replicas=" + std::to_string(replicas) +
          " (it is the global batch, split across ranks).");
    }
    const std::size_t share = batch_size / replicas;
    for (std::size_t j = 0; j < share; ++j) {
      batch.push_back(order_cache_[(position_ * batch_size + rank * share + j) % dataset_size_]);
    }
  } else {
    const std::size_t begin = position_ * batch_size;
    const std::size_t end = std::min(begin + batch_size, num_samples());
    for (std::size_t j = begin; j < end; ++j) {
      batch.push_back(order_cache_[(rank + j * replicas) % dataset_size_]);
    }
  }
  ++position_;
  return batch;
}

void DistributedSampler::save(torch::serialize::OutputArchive& archive) const {
  archive.write("epoch", torch::tensor(static_cast<std::int64_t>(epoch_)), /*is_buffer=*/true);
  archive.write("position", torch::tensor(static_cast<std::int64_t>(position_)),
                /*is_buffer=*/true);
}

void DistributedSampler::load(torch::serialize::InputArchive& archive) {
  at::Tensor epoch;
  at::Tensor position;
  archive.read("epoch", epoch, /*is_buffer=*/true);
  archive.read("position", position, /*is_buffer=*/true);
  set_epoch(epoch.item<std::int64_t>());
  position_ = static_cast<std::size_t>(position.item<std::int64_t>());
}

}  // namespace accel
