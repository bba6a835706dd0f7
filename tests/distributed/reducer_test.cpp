// accel::Reducer under mpiexec (2 and 3 ranks): gradients after a synchronised backward equal those of
// a single process that sees the union of all ranks' batches.
// clang-format off: torch_catch.hpp must stay the first include (include sorting would move it)
#include "torch_catch.hpp"  // first: see the header
// clang-format on
#include <torch/torch.h>

#include <string>
#include <vector>

#include "accel/mpi_group.hpp"
#include "accel/reducer.hpp"
#include "accel/state.hpp"
#include "accel/tracking/errors.hpp"

namespace {

std::shared_ptr<accel::ProcessGroup> group() {
  static auto instance = std::make_shared<accel::MpiGroup>();
  return instance;
}

// A small MLP in float64 (tight comparisons). `extra` is used only when asked (unused-parameter tests);
// `never` is never used.
struct NetImpl : torch::nn::Module {
  explicit NetImpl(int hidden = 16) {
    fc1 = register_module("fc1", torch::nn::Linear(8, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, hidden));
    extra = register_module("extra", torch::nn::Linear(hidden, hidden));
    never = register_module("never", torch::nn::Linear(hidden, 2));
    fc3 = register_module("fc3", torch::nn::Linear(hidden, 3));
    norm = register_module("norm", torch::nn::BatchNorm1d(3));
    to(torch::kFloat64);
  }
  at::Tensor forward(const at::Tensor& x, bool use_extra = false) {
    at::Tensor h = torch::tanh(fc1->forward(x));
    h = torch::tanh(fc2->forward(h));
    if (use_extra) h = h + torch::sigmoid(extra->forward(h));
    return fc3->forward(h);
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, extra{nullptr}, never{nullptr}, fc3{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};
};
TORCH_MODULE(Net);

// The global data of step `step`: 4 samples per rank, the same on every rank.
std::pair<at::Tensor, at::Tensor> global_batch(int step, int world) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 + step);
  at::Tensor x = torch::randn({4 * world, 8}, gen, torch::kFloat64);
  at::Tensor y = torch::randn({4 * world, 3}, gen, torch::kFloat64);
  return {x, y};
}

at::Tensor local_slice(const at::Tensor& t, int rank) {
  return t.narrow(0, 4 * rank, 4);
}

// A model on this rank initialised differently from the others (the Reducer must make them equal).
Net rank_specific_model(int hidden = 16) {
  torch::manual_seed(100 + accel::State::instance().rank());
  Net net(hidden);
  return net;
}

// A single-process copy with the same (already synchronised) parameters.
Net reference_copy(Net& net) {
  Net ref;
  torch::NoGradGuard no_grad;
  auto dst = ref->parameters();
  auto src = net->parameters();
  for (std::size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  return ref;
}

void check_grads_equal(Net& net, Net& ref) {
  auto a = net->named_parameters();
  auto b = ref->named_parameters();
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("parameter " << a[i].key());
    REQUIRE(a[i].value().grad().defined() == b[i].value().grad().defined());
    if (a[i].value().grad().defined()) {
      CHECK(torch::allclose(a[i].value().grad(), b[i].value().grad(), 1e-9, 1e-12));
    }
  }
}

// The same gradient on every rank: compare each rank's flattened gradients with rank 0's.
void check_grads_identical_across_ranks(Net& net) {
  std::vector<at::Tensor> grads;
  for (auto& p : net->parameters()) {
    if (p.grad().defined()) grads.push_back(p.grad().flatten());
  }
  at::Tensor mine = torch::cat(grads);
  at::Tensor reference = mine.clone();
  group()->broadcast(reference, 0)->wait();
  CHECK(torch::equal(mine, reference));
}

}  // namespace

TEST_CASE("Reducer broadcasts rank 0's parameters and buffers at construction", "[mpi]") {
  Net net = rank_specific_model();
  {
    torch::NoGradGuard no_grad;
    net->norm->running_mean.fill_(accel::State::instance().rank() + 1.0);
  }
  accel::Reducer reducer(*net, group());
  std::vector<at::Tensor> flat;
  for (auto& p : net->parameters()) flat.push_back(p.detach().flatten());
  for (auto& b : net->buffers()) flat.push_back(b.detach().flatten().to(torch::kFloat64));
  at::Tensor mine = torch::cat(flat);
  at::Tensor zero = mine.clone();
  group()->broadcast(zero, 0)->wait();
  CHECK(torch::equal(mine, zero));
  CHECK(net->norm->running_mean.eq(1.0).all().item<bool>());
}

TEST_CASE("Reducer gradients over several buckets equal single-process gradients; SGD steps agree",
          "[mpi]") {
  const int rank = group()->rank();
  const int world = group()->size();
  Net net = rank_specific_model();
  accel::ReducerOptions options;
  options.first_bucket_bytes = 256;  // tiny buckets: several of them, several launch points
  options.bucket_bytes = 1024;
  options.find_unused_parameters = true;  // `extra` and `never` are not used here
  accel::Reducer reducer(*net, group(), options);
  const auto layout = reducer.bucket_layout();
  CHECK(layout.size() >= 4);
  // Reverse registration order: the first bucket holds the last registered parameter (norm.bias).
  const auto names = net->named_parameters().keys();
  CHECK(names[layout.front().front()] == "norm.bias");

  Net ref = reference_copy(net);
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.1));
  torch::optim::SGD ref_opt(ref->parameters(), torch::optim::SGDOptions(0.1));
  for (int step = 0; step < 3; ++step) {
    auto [x, y] = global_batch(step, world);
    opt.zero_grad();  // set_to_none: the reducer copies fresh gradients into its buckets
    ref_opt.zero_grad();
    torch::mse_loss(net->forward(local_slice(x, rank)), local_slice(y, rank)).backward();
    torch::mse_loss(ref->forward(x), y).backward();
    check_grads_equal(net, ref);
    check_grads_identical_across_ranks(net);
    opt.step();
    ref_opt.step();
  }
  CHECK(reducer.synchronized_steps() == 3);
  auto a = net->parameters();
  auto b = ref->parameters();
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(torch::allclose(a[i], b[i], 1e-9, 1e-12));

  // zero_grad(set_to_none=false) keeps gradients as bucket views: accumulation lands in the bucket.
  opt.zero_grad(false);
  ref_opt.zero_grad(false);
  auto [x, y] = global_batch(7, world);
  torch::mse_loss(net->forward(local_slice(x, rank)), local_slice(y, rank)).backward();
  torch::mse_loss(ref->forward(x), y).backward();
  check_grads_equal(net, ref);
}

TEST_CASE("Unused parameters: locally unused ones count as zero, globally unused stay undefined",
          "[mpi]") {
  const int rank = group()->rank();
  const int world = group()->size();
  Net net = rank_specific_model();
  accel::ReducerOptions options;
  options.first_bucket_bytes = 512;
  options.bucket_bytes = 2048;
  options.find_unused_parameters = true;
  accel::Reducer reducer(*net, group(), options);
  Net ref = reference_copy(net);

  // Only rank 0 runs through `extra`; nobody uses `never`.
  auto [x, y] = global_batch(3, world);
  torch::mse_loss(net->forward(local_slice(x, rank), rank == 0), local_slice(y, rank)).backward();
  at::Tensor total = torch::zeros({}, torch::kFloat64);
  for (int r = 0; r < world; ++r) {
    total = total + torch::mse_loss(ref->forward(local_slice(x, r), r == 0), local_slice(y, r));
  }
  (total / world).backward();
  check_grads_equal(net,
                    ref);  // includes: never.* undefined on every rank, extra.* defined everywhere
  CHECK_FALSE(net->never->weight.grad().defined());
  CHECK(net->extra->weight.grad().defined());
  check_grads_identical_across_ranks(net);
}

TEST_CASE("Without find_unused_parameters a parameter without gradient is an error naming it",
          "[mpi]") {
  const int rank = group()->rank();
  Net net = rank_specific_model();
  accel::Reducer reducer(*net, group());
  auto [x, y] = global_batch(4, group()->size());
  auto loss = torch::mse_loss(net->forward(local_slice(x, rank)), local_slice(y, rank));
  CHECK_THROWS_WITH(loss.backward(), Catch::Contains("'extra.weight'") &&
                                         Catch::Contains("'never.bias'") &&
                                         Catch::Contains("find_unused_parameters"));
}

TEST_CASE("no_sync accumulates locally; the next synchronised backward averages the sum", "[mpi]") {
  const int rank = group()->rank();
  const int world = group()->size();
  Net net = rank_specific_model();
  accel::ReducerOptions options;
  options.first_bucket_bytes = 300;
  options.bucket_bytes = 1500;
  options.find_unused_parameters = true;
  accel::Reducer reducer(*net, group(), options);
  Net ref = reference_copy(net);

  for (int micro = 0; micro < 3; ++micro) {
    auto [x, y] = global_batch(10 + micro, world);
    torch::mse_loss(ref->forward(x), y).backward();
    auto loss = torch::mse_loss(net->forward(local_slice(x, rank)), local_slice(y, rank));
    if (micro < 2) {
      auto guard = reducer.no_sync();
      CHECK_FALSE(reducer.sync_enabled());
      loss.backward();
    } else {
      CHECK(reducer.sync_enabled());
      loss.backward();
    }
    if (micro == 0 && world > 1) {
      // No communication yet: this rank's gradient is its own, not the global one.
      CHECK_FALSE(torch::allclose(net->fc1->weight.grad(), ref->fc1->weight.grad(), 1e-9, 1e-12));
      CHECK(reducer.synchronized_steps() == 0);
    }
  }
  CHECK(reducer.synchronized_steps() == 1);
  check_grads_equal(net, ref);
  check_grads_identical_across_ranks(net);
}

TEST_CASE("Models that differ across ranks are refused on every rank, naming the first difference",
          "[mpi]") {
  const int rank = group()->rank();
  Net net(rank == 1 ? 12 : 16);  // rank 1's hidden layer is narrower
  try {
    accel::Reducer reducer(*net, group());
    FAIL("the Reducer accepted different models");
  } catch (const accel::DistributedError& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.find("'fc1.weight'") != std::string::npos);
    CHECK(message.find("rank 0 has parameter #0 'fc1.weight': [16, 8]") != std::string::npos);
    CHECK(message.find("rank 1 has parameter #0 'fc1.weight': [12, 8]") != std::string::npos);
  }
}

TEST_CASE("Reducer refuses bad options", "[mpi]") {
  Net net = rank_specific_model();
  accel::ReducerOptions options;
  options.bucket_bytes = 0;
  CHECK_THROWS_AS(accel::Reducer(*net, group(), options), accel::InvalidValue);
  CHECK_THROWS_AS(accel::Reducer(*net, nullptr), accel::InvalidValue);
}
