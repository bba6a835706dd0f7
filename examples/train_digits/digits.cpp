#include "digits.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <array>
#include <cstring>
#include <fstream>
#include <string>

#include "accel/tracking/errors.hpp"

namespace digits {

accel::TensorDataset load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw accel::InvalidValue(
        "digits data file " + path.string() +
        " cannot be opened: build the train_digits target (it exports the data) "
        "or pass --data");
  }
  std::array<char, 8> magic{};
  uint32_t rows = 0, features = 0;
  in.read(magic.data(), magic.size());
  in.read(reinterpret_cast<char*>(&rows), sizeof rows);
  in.read(reinterpret_cast<char*>(&features), sizeof features);
  if (!in || std::memcmp(magic.data(), "ACCDIG01", 8) != 0 || rows == 0 || features == 0) {
    throw accel::InvalidValue("digits data file " + path.string() +
                              " is not in the export_digits.py format");
  }
  auto pixels = torch::empty({rows, features}, torch::kFloat32);
  auto labels = torch::empty({rows}, torch::kUInt8);
  in.read(reinterpret_cast<char*>(pixels.data_ptr<float>()),
          static_cast<std::streamsize>(pixels.nbytes()));
  in.read(reinterpret_cast<char*>(labels.data_ptr<uint8_t>()),
          static_cast<std::streamsize>(labels.nbytes()));
  if (!in) throw accel::InvalidValue("digits data file " + path.string() + " is truncated");
  return accel::TensorDataset(pixels, labels.to(torch::kInt64));
}

std::pair<accel::TensorDataset, accel::TensorDataset> split(const accel::TensorDataset& all,
                                                            double validation_fraction,
                                                            uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto order = torch::randperm(all.size(), generator, torch::kInt64);
  const auto validation =
      static_cast<int64_t>(static_cast<double>(all.size()) * validation_fraction);
  return {all.subset(order.slice(0, validation)), all.subset(order.slice(0, 0, validation))};
}

NetImpl::NetImpl(int64_t hidden, double dropout_probability) {
  fc1 = register_module("fc1", torch::nn::Linear(64, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, hidden));
  fc3 = register_module("fc3", torch::nn::Linear(hidden, 10));
  dropout = register_module("dropout", torch::nn::Dropout(dropout_probability));
}

torch::Tensor NetImpl::forward(const torch::Tensor& x) {
  auto h = torch::relu(fc1->forward(x));
  h = dropout->forward(torch::relu(fc2->forward(h)));
  return fc3->forward(h);
}

}  // namespace digits
