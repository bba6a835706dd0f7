// train_digits: an MLP on the UCI digits data set (1,797 8x8 images), trained with accel.
//
//   accel-launch --num_processes 2 build/examples/train_digits/train_digits --epochs 10
//   mpirun -np 2 build/examples/train_digits/train_digits --epochs 10
//
// Logs the train loss and lr every step and the validation loss/accuracy every epoch (computed from
// gather_for_metrics, so every validation sample counts exactly once), draws a progress bar on the
// main process, checkpoints every --checkpoint_every steps and resumes bit-for-bit with
// --resume_from. Each run has its own directory, <project_dir>/digits/version_<N> (or
// <project_dir>/digits/<--run_name>; see docs/runs.md): its logs, checkpoints/checkpoint_<i>,
// model/model.pt and final_metrics.json. Resuming from a checkpoint of a run under the same
// project_dir continues that run in its directory.
#include <fmt/format.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <accel/accelerator.hpp>
#include <accel/tracking/progress_bar.hpp>
#include <fstream>
#include <iostream>

#include "digits.hpp"

namespace {

struct Flags {
  int64_t epochs = 10;
  int64_t batch_size = 64;
  double lr = 5e-3;
  std::string mixed_precision;              // empty: ACCELERATE_MIXED_PRECISION, else "no"
  int64_t gradient_accumulation_steps = 0;  // 0: ACCELERATE_GRADIENT_ACCUMULATION_STEPS, else 1
  std::string log_with = "csv";
  std::string project_dir = "runs/digits";
  int64_t checkpoint_every = 0;
  int64_t total_limit = 0;
  std::string resume_from;
  std::string run_name;  // empty: version_<N>
  uint64_t seed = 42;
  std::string data = ACCEL_DIGITS_DEFAULT_DATA;
  bool progress_bar = true;
};

// Where the loop is: saved with every checkpoint (register_for_checkpointing).
struct Progress final : accel::Checkpointable {
  int64_t epoch = 0;
  int64_t step = 0;  // micro-batches done
  void save_state(torch::serialize::OutputArchive& archive) const override {
    archive.write("epoch", torch::tensor(epoch, torch::kInt64));
    archive.write("step", torch::tensor(step, torch::kInt64));
  }
  void load_state(torch::serialize::InputArchive& archive) override {
    torch::Tensor e, s;
    archive.read("epoch", e);
    archive.read("step", s);
    epoch = e.item<int64_t>();
    step = s.item<int64_t>();
  }
};

std::vector<accel::TrackerSpec> split_names(const std::string& list) {
  std::vector<accel::TrackerSpec> names;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) names.emplace_back(item);
  }
  return names;
}

int run(const Flags& flags) {
  accel::AcceleratorOptions options;
  if (!flags.mixed_precision.empty()) options.mixed_precision = flags.mixed_precision;
  if (flags.gradient_accumulation_steps > 0)
    options.gradient_accumulation_steps = flags.gradient_accumulation_steps;
  options.log_with = split_names(flags.log_with);
  options.project_dir = flags.project_dir;
  options.run_name = flags.run_name;
  accel::ProjectConfiguration project;
  project.project_dir = flags.project_dir;
  project.automatic_checkpoint_naming = true;
  if (flags.total_limit > 0) project.total_limit = flags.total_limit;
  options.project_config = project;
  options.seed = flags.seed;
  accel::Accelerator acc(options);

  auto [train_set, val_set] = digits::split(digits::load(flags.data), 0.2, /*seed=*/0);
  const int64_t train_rows = train_set.size();
  digits::Net net;
  torch::optim::AdamW adamw(net->parameters(),
                            torch::optim::AdamWOptions(flags.lr).weight_decay(1e-4));
  // The schedule is written for one process (like Accelerate): prepare() steps it once per process.
  const int64_t steps_per_epoch = (train_rows + flags.batch_size - 1) / flags.batch_size;
  const int64_t total_steps =
      std::max<int64_t>(1, flags.epochs * steps_per_epoch / acc.gradient_accumulation_steps());
  accel::LambdaLR schedule(adamw,
                           accel::linear_schedule_with_warmup(total_steps / 20, total_steps));
  auto train_loader = acc.data_loader(
      std::move(train_set), {.batch_size = flags.batch_size, .shuffle = true, .seed = flags.seed});
  auto val_loader = acc.data_loader(std::move(val_set), {.batch_size = 256});
  auto [model, opt, train, val, sched] =
      acc.prepare(net, adamw, train_loader, val_loader, schedule);

  Progress progress;
  acc.register_for_checkpointing(progress);
  if (!flags.resume_from.empty()) {
    acc.load_state(flags.resume_from);
    acc.print("resumed from", flags.resume_from, "at epoch", progress.epoch, "step", progress.step);
  }

  nlohmann::json config = {
      {"epochs", flags.epochs},
      {"batch_size", flags.batch_size},
      {"lr", flags.lr},
      {"num_processes", acc.num_processes()},
      {"mixed_precision", std::string(accel::to_string(acc.mixed_precision()))},
      {"gradient_accumulation_steps", acc.gradient_accumulation_steps()},
      {"seed", flags.seed},
      {"model", {{"hidden", 128}, {"dropout", 0.1}}}};
  acc.init_trackers("digits", config);
  const auto run_dir = acc.run_dir();
  acc.print("run", acc.run_name(), "in", run_dir.string());

  accel::ProgressBar bar({.enabled = flags.progress_bar ? std::nullopt : std::optional<bool>(false),
                          .is_main_process = acc.is_main_process()});
  double accuracy = 0.0;
  int64_t val_samples = 0;
  for (; progress.epoch < flags.epochs; ++progress.epoch) {
    bar.start_epoch(progress.epoch, train.size());
    model->train();
    for (const auto& batch : train) {
      auto sync = acc.accumulate();
      torch::Tensor loss;
      {
        auto amp = acc.autocast();
        loss = torch::cross_entropy_loss(model->forward(batch.data), batch.target);
      }
      acc.backward(loss);
      if (acc.sync_gradients()) acc.clip_grad_norm_(model->parameters(), 1.0);
      opt.step();
      sched.step();
      opt.zero_grad();

      auto detached = loss.detach();
      acc.log({{"train/loss", detached}, {"lr", opt.lr()}, {"epoch", progress.epoch}},
              progress.step);
      acc.log("loss", detached, {.on_step = true, .prog_bar = true, .logger = false});
      acc.log("train/loss_mean", detached,
              {.on_step = false,
               .on_epoch = true,
               .sync_dist = true,
               .batch_size = batch.target.size(0)});
      ++progress.step;
      bar.set_metrics(acc.prog_bar_values());
      bar.update();
      if (flags.checkpoint_every > 0 && progress.step % flags.checkpoint_every == 0)
        acc.save_state();
    }

    model->eval();
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> rows;
    for (const auto& batch : val) {
      auto logits = model->forward(batch.data);
      auto losses = torch::cross_entropy_loss(logits, batch.target, {}, at::Reduction::None);
      auto row = torch::stack({losses.to(torch::kFloat64), logits.argmax(1).to(torch::kFloat64),
                               batch.target.to(torch::kFloat64)},
                              1);
      rows.push_back(acc.gather_for_metrics(row));
    }
    auto all = torch::cat(rows).cpu();
    val_samples = all.size(0);
    accuracy = all.select(1, 1).eq(all.select(1, 2)).to(torch::kFloat64).mean().item<double>();
    const double val_loss = all.select(1, 0).mean().item<double>();
    acc.log({{"val/loss", val_loss}, {"val/accuracy", accuracy}, {"val/samples", val_samples}},
            progress.step);
    acc.epoch_end();
    bar.write(fmt::format("epoch {}: val_loss {:.4f} val_accuracy {:.4f} ({} samples)",
                          progress.epoch, val_loss, accuracy, val_samples));
  }
  bar.close();

  acc.save_model(model.ptr(), run_dir / "model");
  if (acc.is_main_process()) {
    std::ofstream out(run_dir / "final_metrics.json");
    out << nlohmann::json{{"val_accuracy", accuracy},
                          {"val_samples", val_samples},
                          {"epochs", flags.epochs},
                          {"steps", progress.step},
                          {"num_processes", acc.num_processes()}}
               .dump(2)
        << '\n';
  }
  acc.print(fmt::format("final validation accuracy {:.4f} on {} samples", accuracy, val_samples));
  acc.end_training();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{"Train an MLP on the UCI digits data set with accel"};
  app.add_option("--epochs", flags.epochs, "Passes over the training data")
      ->check(CLI::PositiveNumber);
  app.add_option("--batch_size", flags.batch_size, "Batch size per process")
      ->check(CLI::PositiveNumber);
  app.add_option("--lr", flags.lr, "Peak learning rate (AdamW, linear warm-up and decay)")
      ->check(CLI::PositiveNumber);
  app.add_option("--mixed_precision", flags.mixed_precision,
                 "no, fp16 or bf16 (default: env, else no)");
  app.add_option("--gradient_accumulation_steps", flags.gradient_accumulation_steps,
                 "Micro-batches per optimizer step (default: env, else 1)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log_with", flags.log_with,
                 "Comma-separated trackers (csv, jsonl, tensorboard, ...)");
  app.add_option("--project_dir", flags.project_dir,
                 "Where the runs go (logs, checkpoints, model: <project_dir>/digits/<run>)");
  app.add_option("--checkpoint_every", flags.checkpoint_every,
                 "Save a checkpoint every N steps (0: never)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--total_limit", flags.total_limit, "Keep at most N checkpoints (0: all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--resume_from", flags.resume_from, "Checkpoint directory to continue from");
  app.add_option("--run_name", flags.run_name,
                 "Name of the run's directory under <project_dir>/digits (default: version_<N>)");
  app.add_option("--seed", flags.seed, "Seed of initialisation, dropout and shuffling");
  app.add_option("--data", flags.data, "Digits data file (written by export_digits.py)");
  bool no_progress_bar = false;
  app.add_flag("--no_progress_bar", no_progress_bar, "Do not draw the progress bar");
  CLI11_PARSE(app, argc, argv);
  flags.progress_bar = !no_progress_bar;
  try {
    return run(flags);
  } catch (const accel::Error& e) {
    std::cerr << "train_digits: " << e.what() << std::endl;
    return 1;
  }
}
