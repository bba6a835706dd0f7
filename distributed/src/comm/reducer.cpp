// Reducer (see accel/reducer.hpp): bucketed, overlapped gradient averaging for one model.
//
// Per synchronised backward:
//   hook(param i)      -> slot i of its bucket holds the local gradient; bucket.pending -= 1;
//                         buckets whose pending reached 0 are launched in bucket order (the same order on
//                         every rank, so the group's queues match).
//   final callback     -> parameters without a hook call are settled, the rest is launched, all works are
//                         waited for (each bucket is averaged, ReduceOp::kAvg), .grad = bucket views.
// The bucket order is fixed at construction; nothing about it depends on timing, so every rank issues
// identical collectives.
#include "accel/reducer.hpp"

#include <fmt/format.h>
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

#include "accel/tracking/errors.hpp"

namespace accel {
namespace {

std::string shape_text(at::IntArrayRef sizes) {
  std::string out = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (i != 0) out += ", ";
    out += std::to_string(sizes[i]);
  }
  return out + "]";
}

// One line per parameter/buffer; compared across ranks (device excluded: ranks use different GPUs).
std::vector<std::string> describe_model(const std::vector<Reducer::NamedTensor>& params,
                                        const std::vector<Reducer::NamedTensor>& buffers) {
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& t = params[i].tensor;
    lines.push_back(fmt::format("parameter #{} '{}': {} {}{}", i, params[i].name,
                                shape_text(t.sizes()), c10::toString(t.scalar_type()),
                                t.requires_grad() ? "" : " (requires_grad=false)"));
  }
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    const auto& t = buffers[i].tensor;
    lines.push_back(fmt::format("buffer #{} '{}': {} {}", i, buffers[i].name, shape_text(t.sizes()),
                                c10::toString(t.scalar_type())));
  }
  return lines;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += line + "\n";
  return out;
}

}  // namespace

struct Reducer::Impl {
  struct Bucket {
    at::Tensor flat;                   // contiguous storage of every member's gradient
    std::vector<std::size_t> members;  // parameter indices, in slot order
    std::size_t pending = 0;           // members not ready yet in this backward
    WorkPtr work;
  };

  std::shared_ptr<ProcessGroup> group;
  ReducerOptions options;
  std::vector<NamedTensor> params;
  std::vector<NamedTensor> buffers;
  std::vector<std::size_t> synced;      // indices of parameters that require grad
  std::vector<std::int64_t> bucket_of;  // per parameter; -1 when not synchronised
  std::vector<at::Tensor> views;        // per parameter: its slot, shaped like the parameter
  std::vector<char> ready;              // per parameter, this backward
  std::vector<Bucket> buckets;
  std::size_t next_to_launch = 0;
  bool callback_queued = false;
  std::atomic<bool> sync{true};
  std::atomic<std::size_t> steps{0};
  std::mutex mutex;  // hooks may run on several autograd threads (one per device)

  void check_same_model() {
    const std::vector<std::string> mine = describe_model(params, buffers);
    const std::vector<std::string> all = group->allgather_object(join_lines(mine));
    const std::vector<std::string> reference = split_lines(all[0]);
    for (std::size_t r = 1; r < all.size(); ++r) {
      const std::vector<std::string> theirs = split_lines(all[r]);
      const std::size_t common = std::min(reference.size(), theirs.size());
      for (std::size_t i = 0; i < common; ++i) {
        if (reference[i] != theirs[i]) {
          throw DistributedError(
              fmt::format("accel: Reducer: the model differs across ranks at entry {}: rank 0 has "
                          "{}; rank {} has {}. "
                          "Every rank must construct the same model (same layers, shapes and "
                          "dtypes, in the same "
                          "order) before creating the Reducer.",
                          i, reference[i], r, theirs[i]));
        }
      }
      if (reference.size() != theirs.size()) {
        const auto& longer = reference.size() > theirs.size() ? reference : theirs;
        throw DistributedError(
            fmt::format("accel: Reducer: the model differs across ranks: rank 0 has {} "
                        "parameters+buffers, rank {} "
                        "has {}; first extra entry: {}. Every rank must construct the same model.",
                        reference.size(), r, theirs.size(), longer[common]));
      }
    }
  }

  void broadcast_state() {
    std::vector<WorkPtr> works;
    for (const auto& p : params) works.push_back(group->broadcast(p.tensor.detach(), 0));
    for (const auto& b : buffers) works.push_back(group->broadcast(b.tensor.detach(), 0));
    for (auto& w : works) w->wait();
  }

  void build_buckets() {
    // Reverse registration order, one open bucket per (dtype, device); DDP's size rule: add the
    // parameter, close the bucket once it holds at least the limit.
    struct Open {
      Bucket bucket;
      std::size_t bytes = 0;
      bool first = true;
      std::size_t order = 0;  // position of its first member in reverse order
    };
    std::map<std::tuple<int, int, int>, Open> open;
    std::vector<std::pair<std::size_t, Bucket>> closed;
    for (std::size_t k = synced.size(); k-- > 0;) {
      const std::size_t i = synced[k];
      const at::Tensor& p = params[i].tensor;
      const auto key =
          std::make_tuple(static_cast<int>(p.scalar_type()), static_cast<int>(p.device().type()),
                          static_cast<int>(p.device().index()));
      Open& o = open[key];
      if (o.bucket.members.empty()) o.order = synced.size() - 1 - k;
      o.bucket.members.push_back(i);
      o.bytes += static_cast<std::size_t>(p.numel()) * p.element_size();
      const std::size_t limit = o.first ? options.first_bucket_bytes : options.bucket_bytes;
      if (o.bytes >= limit) {
        closed.emplace_back(o.order, std::move(o.bucket));
        o.bucket = Bucket{};
        o.bytes = 0;
        o.first = false;
      }
    }
    for (auto& [key, o] : open) {
      if (!o.bucket.members.empty()) closed.emplace_back(o.order, std::move(o.bucket));
    }
    std::stable_sort(closed.begin(), closed.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });

    views.assign(params.size(), at::Tensor());
    bucket_of.assign(params.size(), -1);
    ready.assign(params.size(), 0);
    for (auto& [order, bucket] : closed) {
      const at::Tensor& first = params[bucket.members.front()].tensor;
      std::int64_t total = 0;
      for (std::size_t i : bucket.members) total += params[i].tensor.numel();
      // Memory the group reduces fastest (shared between the ranks of one machine for MpiGroup).
      bucket.flat = group->allocate_reduction_buffer(total, first.scalar_type());
      std::int64_t offset = 0;
      for (std::size_t i : bucket.members) {
        const at::Tensor& p = params[i].tensor;
        // An alias of the bucket memory made with set_(), not an autograd view: LibTorch's
        // Optimizer::zero_grad() calls detach_() on every gradient, which autograd refuses on views.
        views[i] = torch::empty({0}, bucket.flat.options())
                       .set_(bucket.flat.storage(), bucket.flat.storage_offset() + offset,
                             p.sizes(), c10::contiguous_strides(p.sizes()));
        offset += p.numel();
        bucket_of[i] = static_cast<std::int64_t>(buckets.size());
        // Existing gradients move into the bucket, so autograd accumulates there from now on.
        if (p.grad().defined()) {
          views[i].copy_(p.grad());
          at::Tensor param = p;
          param.mutable_grad() = views[i];
        }
      }
      bucket.pending = bucket.members.size();
      buckets.push_back(std::move(bucket));
    }
  }

  // Puts parameter i's local gradient into its slot (and makes .grad the slot). Returns whether it had
  // a gradient. Caller holds mutex.
  bool settle(std::size_t i) {
    at::Tensor param = params[i].tensor;
    const at::Tensor grad = param.grad();
    if (!grad.defined()) {
      views[i].zero_();
      return false;
    }
    if (!grad.is_same(views[i])) {
      views[i].copy_(grad);
      param.mutable_grad() = views[i];
    }
    return true;
  }

  void launch_ready_buckets() {
    while (next_to_launch < buckets.size() && buckets[next_to_launch].pending == 0) {
      Bucket& b = buckets[next_to_launch++];
      b.work = group->allreduce(b.flat, ReduceOp::kAvg);  // averaged by the group, off this thread
    }
  }

  void on_gradient_ready(std::size_t i) {
    if (!sync.load()) return;
    std::lock_guard lock(mutex);
    if (!callback_queued) {
      callback_queued = true;
      torch::autograd::Engine::get_default_engine().queue_callback([this] { finish_backward(); });
    }
    if (ready[i] != 0) return;
    ready[i] = 1;
    settle(i);
    Bucket& b = buckets[static_cast<std::size_t>(bucket_of[i])];
    if (--b.pending == 0) launch_ready_buckets();
  }

  void finish_backward() {
    std::lock_guard lock(mutex);
    callback_queued = false;
    torch::NoGradGuard no_grad;
    std::vector<std::string> missing;
    std::vector<char> has_grad(params.size(), 1);
    for (std::size_t i : synced) {
      if (ready[i] != 0) continue;
      ready[i] = 1;
      if (!settle(i)) {
        has_grad[i] = 0;
        if (!options.find_unused_parameters) missing.push_back(params[i].name);
      }
      --buckets[static_cast<std::size_t>(bucket_of[i])].pending;
    }
    launch_ready_buckets();

    at::Tensor used;
    WorkPtr used_work;
    if (options.find_unused_parameters) {
      used = torch::zeros({static_cast<std::int64_t>(synced.size())}, torch::kUInt8);
      auto* flags = used.data_ptr<std::uint8_t>();
      for (std::size_t k = 0; k < synced.size(); ++k) flags[k] = has_grad[synced[k]] != 0 ? 1 : 0;
      if (!group->device().is_cpu()) used = used.to(group->device());
      used_work = group->allreduce(used, ReduceOp::kMax);
    }
    for (auto& b : buckets) b.work->wait();
    if (used_work) {
      used_work->wait();
      used = used.cpu();
    }

    for (auto& b : buckets) {
      b.work.reset();
      b.pending = b.members.size();
    }
    for (std::size_t k = 0; k < synced.size(); ++k) {
      const std::size_t i = synced[k];
      ready[i] = 0;
      if (has_grad[i] != 0) continue;
      const bool used_somewhere = used.defined() && used.data_ptr<std::uint8_t>()[k] != 0;
      if (used_somewhere) {
        at::Tensor param = params[i].tensor;
        param.mutable_grad() = views[i];
      }
    }
    next_to_launch = 0;
    ++steps;
    if (!missing.empty()) {
      std::string names;
      for (const auto& n : missing) names += (names.empty() ? "'" : ", '") + n + "'";
      throw DistributedError(
          fmt::format("accel: Reducer: {} parameter(s) received no gradient in this backward: {}. "
                      "If parts of the "
                      "model are unused in some steps, create the Reducer with "
                      "ReducerOptions{{.find_unused_parameters = true}}; otherwise make the loss "
                      "depend on them.",
                      missing.size(), names));
    }
  }
};

namespace {

class GradientReadyHook final : public torch::autograd::PostAccumulateGradHook {
 public:
  GradientReadyHook(Reducer::Impl* impl, std::size_t index) : impl_(impl), index_(index) {}
  void operator()(const torch::autograd::Variable& /*tensor*/) override {
    impl_->on_gradient_ready(index_);
  }

 private:
  Reducer::Impl* impl_;
  std::size_t index_;
};

std::vector<Reducer::NamedTensor> named(const torch::OrderedDict<std::string, at::Tensor>& items) {
  std::vector<Reducer::NamedTensor> out;
  for (const auto& item : items) out.push_back({item.key(), item.value()});
  return out;
}

}  // namespace

Reducer::Reducer(torch::nn::Module& module, std::shared_ptr<ProcessGroup> group,
                 ReducerOptions options)
    : Reducer(named(module.named_parameters(true)), named(module.named_buffers(true)),
              std::move(group), options) {}

Reducer::Reducer(std::vector<NamedTensor> parameters, std::vector<NamedTensor> buffers,
                 std::shared_ptr<ProcessGroup> group, ReducerOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (!group)
    throw InvalidValue("Reducer: the process group is null; pass default_process_group().");
  if (options.first_bucket_bytes == 0 || options.bucket_bytes == 0) {
    throw InvalidValue(
        fmt::format("Reducer: bucket sizes must be positive (first_bucket_bytes={}, "
                    "bucket_bytes={}); the defaults "
                    "are 1 MiB and 25 MiB.",
                    options.first_bucket_bytes, options.bucket_bytes));
  }
  Impl& impl = *impl_;
  impl.group = std::move(group);
  impl.options = options;
  impl.params = std::move(parameters);
  impl.buffers = std::move(buffers);
  const auto check_device = [&](const NamedTensor& t, const char* kind) {
    if (!t.tensor.defined()) {
      throw InvalidValue(fmt::format("Reducer: {} '{}' is undefined.", kind, t.name));
    }
    if (t.tensor.device() != impl.group->device()) {
      throw InvalidValue(fmt::format(
          "Reducer: {} '{}' is on {} but the process group ({}) works on {}; move the model to the "
          "group's device first (model->to(device)).",
          kind, t.name, t.tensor.device().str(), impl.group->backend(),
          impl.group->device().str()));
    }
  };
  for (std::size_t i = 0; i < impl.params.size(); ++i) {
    check_device(impl.params[i], "parameter");
    if (impl.params[i].tensor.requires_grad()) {
      if (!impl.params[i].tensor.is_leaf()) {
        throw InvalidValue(
            fmt::format("Reducer: parameter '{}' is not a leaf tensor (it was computed from other "
                        "tensors); register "
                        "the tensors the optimizer updates.",
                        impl.params[i].name));
      }
      impl.synced.push_back(i);
    }
  }
  for (const auto& b : impl.buffers) check_device(b, "buffer");

  impl.check_same_model();
  if (options.broadcast_initial_state) impl.broadcast_state();
  {
    torch::NoGradGuard no_grad;
    impl.build_buckets();
  }
  for (std::size_t i : impl.synced) {
    torch::autograd::impl::set_post_acc_grad_hooks(impl.params[i].tensor,
                                                   std::make_unique<GradientReadyHook>(&impl, i));
  }
}

Reducer::~Reducer() {
  for (std::size_t i : impl_->synced) {
    torch::autograd::impl::set_post_acc_grad_hooks(impl_->params[i].tensor, nullptr);
  }
}

Reducer::NoSyncGuard::NoSyncGuard(Reducer& reducer)
    : reducer_(reducer), previous_(reducer.sync_enabled()) {
  reducer_.set_sync_enabled(false);
}

Reducer::NoSyncGuard::~NoSyncGuard() {
  reducer_.set_sync_enabled(previous_);
}

void Reducer::set_sync_enabled(bool enabled) {
  impl_->sync.store(enabled);
}
bool Reducer::sync_enabled() const {
  return impl_->sync.load();
}

void Reducer::broadcast_state() {
  impl_->broadcast_state();
}

std::vector<std::vector<std::size_t>> Reducer::bucket_layout() const {
  std::vector<std::vector<std::size_t>> out;
  for (const auto& b : impl_->buckets) out.push_back(b.members);
  return out;
}

std::size_t Reducer::synchronized_steps() const {
  return impl_->steps.load();
}

}  // namespace accel
