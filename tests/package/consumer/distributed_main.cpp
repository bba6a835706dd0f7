// A program outside the accel tree that links the installed accel::distributed package (LibTorch + MPI).
#include <torch/torch.h>

#include <accel/state.hpp>
#include <iostream>

int main() {
  const auto& state = accel::State::instance();
  torch::Tensor t = torch::ones({2, 2});
  std::cout << "consumer: distributed ok, rank " << state.rank() << " of " << state.world_size()
            << ", sum " << t.sum().item<double>() << std::endl;
  return state.world_size() >= 1 ? 0 : 1;
}
