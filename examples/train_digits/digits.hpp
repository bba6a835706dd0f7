#pragma once
// The digits example's data and model, shared by train_digits and its benchmark.
#include <torch/torch.h>

#include <filesystem>
#include <utility>

#include "accel/data.hpp"

namespace digits {

// Reads the file written by export_digits.py: 1,797 rows of 64 pixels in [0, 1] and labels 0..9.
// Throws accel::InvalidValue naming the file when it is missing or malformed.
accel::TensorDataset load(const std::filesystem::path& path);

// A fixed, seeded split into (train, validation); validation gets `validation_fraction` of the rows.
std::pair<accel::TensorDataset, accel::TensorDataset> split(const accel::TensorDataset& all,
                                                            double validation_fraction,
                                                            uint64_t seed);

// 64 -> hidden -> hidden -> 10 MLP with ReLU and dropout; returns logits.
struct NetImpl : torch::nn::Module {
  explicit NetImpl(int64_t hidden = 128, double dropout = 0.1);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(Net);

}  // namespace digits
