#pragma once
// accel::GradientState: what the Accelerator, its prepared optimizers, schedulers and data loaders
// share about the current step (Accelerate's GradientState): how many micro-batches are accumulated,
// whether this micro-batch synchronises gradients, and whether the active data loader is yielding its
// last batch. Owned by the Accelerator (shared_ptr); read and written on the training thread only.
#include <cstdint>

namespace accel {

class DataLoader;

struct GradientState {
  int64_t num_steps = 1;           // gradient_accumulation_steps
  int64_t step = 0;                // micro-batches since the last synchronising step
  bool sync_gradients = true;      // true on the micro-batch whose backward all-reduces and steps
  bool end_of_dataloader = false;  // the active loader is yielding its last batch of the pass
  bool sync_with_dataloader =
      true;  // force a sync on the last batch of a pass (Accelerate default)
  const DataLoader* active_loader = nullptr;  // the loader iterated most recently
  int64_t optimizer_steps = 0;  // synchronising optimizer steps taken (Lightning's global_step)
};

}  // namespace accel
