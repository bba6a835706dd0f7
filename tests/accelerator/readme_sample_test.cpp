// The README's code sample compiles and trains: CMake copies the first ```cpp block of README.md
// into readme_sample.inc, which is included here as the body of a function with the names the
// README uses (net, adamw, loader). The test then reads what it logged back from the csv tracker.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "accel/accelerator.hpp"

namespace {

struct NetImpl : torch::nn::Module {
  NetImpl() : fc(register_module("fc", torch::nn::Linear(8, 3))) {}
  torch::Tensor forward(const torch::Tensor& x) { return torch::log_softmax(fc(x), 1); }
  torch::nn::Linear fc;
};
TORCH_MODULE(Net);

void readme_sample(Net& net, torch::optim::AdamW& adamw, accel::DataLoader& loader) {
#include "readme_sample.inc"
}

}  // namespace

TEST_CASE(
    "the README's sample compiles with a TORCH_MODULE model and trains with the prepared "
    "optimizer") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("accel-readme-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::current_path(dir);  // the sample writes runs/digits relative to here

  torch::manual_seed(0);
  Net net;
  torch::optim::AdamW adamw(net->parameters(), torch::optim::AdamWOptions(1e-2));
  auto data = torch::randn({64, 8});
  auto target = torch::randint(0, 3, {64}, torch::kLong);
  accel::DataLoader loader(accel::TensorDataset(data, target), {.batch_size = 8});
  const auto before = net->fc->weight.clone();
  readme_sample(net, adamw, loader);
  // 8 micro-batches with gradient_accumulation_steps = 2: the weights moved.
  CHECK_FALSE(torch::equal(before, net->fc->weight));

  std::vector<std::filesystem::path> csvs;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir / "runs")) {
    if (entry.path().filename() == "metrics.csv") csvs.push_back(entry.path());
  }
  REQUIRE(csvs.size() == 1);
  std::ifstream in(csvs[0]);
  std::string header, line;
  std::getline(in, header);
  CHECK(header == "step,train/loss");
  int rows = 0;
  while (std::getline(in, line)) ++rows;
  CHECK(rows == 8);
  std::filesystem::current_path(std::filesystem::temp_directory_path());
  // Not std::filesystem::remove_all: with LibTorch loaded, the recursive one crashes (it resolves
  // to libtorch's own copy).
  CHECK(std::system(("rm -rf '" + dir.string() + "'").c_str()) == 0);
}
