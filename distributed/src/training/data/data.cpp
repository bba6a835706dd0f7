#include "accel/data.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "accel/tracking/errors.hpp"

namespace accel {

TensorDataset::TensorDataset(torch::Tensor data, torch::Tensor target)
    : data_(std::move(data)), target_(std::move(target)) {
  if (!data_.defined() || !target_.defined() || data_.dim() == 0 || target_.dim() == 0) {
    throw InvalidValue("TensorDataset needs data and target tensors with at least one dimension");
  }
  if (data_.size(0) != target_.size(0)) {
    throw InvalidValue(
        fmt::format("TensorDataset: data has {} rows but target has {}: they must match",
                    data_.size(0), target_.size(0)));
  }
  if (data_.size(0) == 0) throw InvalidValue("TensorDataset: the dataset is empty");
}

TensorDataset TensorDataset::subset(const torch::Tensor& indices) const {
  auto idx = indices.to(torch::kInt64).to(data_.device());
  return TensorDataset(data_.index_select(0, idx),
                       target_.index_select(0, idx.to(target_.device())));
}

DataLoader::DataLoader(TensorDataset dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  if (options_.batch_size < 1) {
    throw InvalidValue(
        fmt::format("DataLoader batch_size must be >= 1, got {}", options_.batch_size));
  }
}

void DataLoader::shard(DataLoaderSharding sharding) {
  if (sharding.num_processes < 1 || sharding.rank < 0 || sharding.rank >= sharding.num_processes) {
    throw InvalidValue(fmt::format("DataLoader: rank {} of {} processes is not valid",
                                   sharding.rank, sharding.num_processes));
  }
  if (sharding.split_batches && options_.batch_size % sharding.num_processes != 0) {
    throw InvalidValue(fmt::format(
        "split_batches: batch_size {} does not divide by the {} processes; use a multiple of {}",
        options_.batch_size, sharding.num_processes, sharding.num_processes));
  }
  sharding_ = std::move(sharding);
  in_pass_ = false;
}

int64_t DataLoader::batch_size() const {
  return sharding_.split_batches ? options_.batch_size / sharding_.num_processes
                                 : options_.batch_size;
}

DistributedSampler DataLoader::make_sampler() const {
  DistributedSamplerOptions sampler_options;
  sampler_options.num_replicas = sharding_.num_processes;
  sampler_options.rank = sharding_.rank;
  sampler_options.shuffle = options_.shuffle;
  sampler_options.seed = options_.seed;
  sampler_options.drop_last = options_.drop_last;
  sampler_options.split_batches = sharding_.split_batches;
  return DistributedSampler(static_cast<std::size_t>(dataset_.size()), sampler_options);
}

bool DataLoader::trims_padding() const {
  return !sharding_.even_batches && !sharding_.split_batches && !options_.drop_last;
}

int64_t DataLoader::samples_per_process() const {
  const int64_t n = dataset_.size(), w = sharding_.num_processes, r = sharding_.rank;
  if (sharding_.split_batches) {
    const int64_t global = options_.batch_size;
    const int64_t batches = options_.drop_last ? n / global : (n + global - 1) / global;
    return batches * batch_size();
  }
  if (options_.drop_last) return n / w;
  if (trims_padding()) return n / w + (r < n % w ? 1 : 0);
  return (n + w - 1) / w;
}

int64_t DataLoader::size() const {
  const int64_t samples = samples_per_process(), b = batch_size();
  if (sharding_.split_batches) return samples / b;
  return options_.drop_last ? samples / b : (samples + b - 1) / b;
}

int64_t DataLoader::real_rows(int64_t batch) const {
  const int64_t n = dataset_.size(), w = sharding_.num_processes, r = sharding_.rank,
                b = batch_size();
  const int64_t start = batch * b;
  const int64_t stop = std::min(start + b, samples_per_process());
  if (options_.drop_last || stop <= start) return std::max<int64_t>(0, stop - start);
  if (sharding_.split_batches) {
    const int64_t first_position = batch * options_.batch_size + r * b;
    return std::clamp<int64_t>(n - first_position, 0, stop - start);
  }
  // Row j of this rank is position r + j * w of the padded order; positions >= n are padding.
  const int64_t real_limit = n > r ? (n - r + w - 1) / w : 0;
  return std::clamp<int64_t>(std::min(stop, real_limit) - start, 0, stop - start);
}

int64_t DataLoader::real_samples_per_process() const {
  int64_t total = 0;
  for (int64_t batch = 0, batches = size(); batch < batches; ++batch) total += real_rows(batch);
  return total;
}

void DataLoader::set_epoch(int64_t epoch) {
  if (epoch < 0)
    throw InvalidValue(fmt::format("DataLoader::set_epoch: epoch {} is negative", epoch));
  epoch_ = epoch;
  in_pass_ = false;
  position_ = 0;
}

void DataLoader::skip_first_batches(int64_t n) {
  if (n < 0) throw InvalidValue(fmt::format("skip_first_batches: {} is negative", n));
  pending_skip_ = n;
}

torch::Tensor DataLoader::epoch_indices() const {
  auto sampler = make_sampler();
  sampler.set_epoch(epoch_);
  const auto indices = sampler.indices(static_cast<std::size_t>(options_.batch_size));
  auto count = static_cast<int64_t>(indices.size());
  if (trims_padding()) count = std::min(count, samples_per_process());
  auto tensor = torch::empty({count}, torch::kInt64);
  auto* out = tensor.data_ptr<int64_t>();
  for (int64_t i = 0; i < count; ++i)
    out[i] = static_cast<int64_t>(indices[static_cast<std::size_t>(i)]);
  return tensor;
}

DataLoader::Iterator DataLoader::begin() {
  start_pass();
  if (position_ >= size()) {
    finish_pass();
    return end();
  }
  load_batch();
  return Iterator(this);
}

void DataLoader::start_pass() {
  indices_ = epoch_indices();
  position_ = std::min(pending_skip_, size());
  pending_skip_ = 0;
  in_pass_ = true;
  if (sharding_.gradient_state) {
    sharding_.gradient_state->active_loader = this;
    sharding_.gradient_state->end_of_dataloader = false;
  }
}

void DataLoader::load_batch() {
  const int64_t b = batch_size();
  const int64_t start = position_ * b;
  const int64_t stop = std::min(start + b, indices_.size(0));
  auto idx = indices_.slice(0, start, stop);
  current_real_rows_ = real_rows(position_);
  auto data = dataset_.data().index_select(0, idx.to(dataset_.data().device()));
  auto target = dataset_.target().index_select(0, idx.to(dataset_.target().device()));
  if (sharding_.device) {
    data = data.to(*sharding_.device, /*non_blocking=*/true);
    target = target.to(*sharding_.device, /*non_blocking=*/true);
  }
  current_ = Batch{std::move(data), std::move(target)};
  ++position_;
  if (sharding_.gradient_state) {
    sharding_.gradient_state->active_loader = this;
    sharding_.gradient_state->end_of_dataloader = position_ == size();
  }
}

void DataLoader::finish_pass() {
  in_pass_ = false;
  position_ = 0;
  ++epoch_;
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  if (loader_->position_ >= loader_->size()) {
    loader_->finish_pass();
    loader_ = nullptr;
  } else {
    loader_->load_batch();
  }
  return *this;
}

bool DataLoader::Iterator::at_end() const {
  return loader_ == nullptr || !loader_->in_pass_;
}

void DataLoader::save(torch::serialize::OutputArchive& archive) const {
  // A pass whose last batch was yielded is saved as position size(): resuming then runs an empty
  // pass that completes the epoch, exactly as the interrupted loop would have.
  const int64_t position = in_pass_ ? position_ : pending_skip_;
  archive.write("epoch", torch::tensor(epoch_, torch::kInt64));
  archive.write("position", torch::tensor(position, torch::kInt64));
}

void DataLoader::load(torch::serialize::InputArchive& archive) {
  torch::Tensor epoch, position;
  archive.read("epoch", epoch);
  archive.read("position", position);
  epoch_ = epoch.item<int64_t>();
  pending_skip_ = position.item<int64_t>();
  position_ = 0;
  in_pass_ = false;
}

}  // namespace accel
