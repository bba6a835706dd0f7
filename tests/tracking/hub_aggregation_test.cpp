// TrackerHub with Lightning's logging model: log(name, value, LogOptions) + step_end + epoch_end
// send step values every log_every_n_steps and epoch values at the epoch's last step; the progress
// bar shows prog_bar metrics on the main process only.
#include <sstream>

#include "accel/tracking/hub.hpp"
#include "tracking_test_support.hpp"

using namespace accel;
using test::RecordingTracker;
using test::TempDir;

TEST_CASE("step values every log_every_n_steps, epoch values at the last step") {
  TempDir dir;
  auto tracker = std::make_shared<RecordingTracker>();
  TrackerHubOptions o = test::hub_options_in(dir);
  o.log_every_n_steps = 2;
  TrackerHub hub(o);
  hub.init_trackers("proj", {}, {tracker});
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    for (int i = 0; i < 4; ++i, ++step) {
      hub.log("loss", double(step), {.on_step = true, .on_epoch = true, .batch_size = 1});
      hub.log("acc", 0.5, {.on_step = false, .on_epoch = true, .reduce_fx = "max"});
      hub.step_end(step);
    }
    hub.log("val/acc", 0.25 * double(epoch + 1), {}, Phase::validation);
    hub.epoch_end();
  }
  hub.end_training();
  auto logs = tracker->logs();
  // Per epoch: steps 1 and 3 (of 0..3) with loss_step, then the epoch values at step 3.
  REQUIRE(logs.size() == 6);
  CHECK(*logs[0].step == 1);
  CHECK(logs[0].values == Values{{"loss_step", 1.0}});
  CHECK(*logs[1].step == 3);
  CHECK(logs[1].values == Values{{"loss_step", 3.0}});
  CHECK(*logs[2].step == 3);
  CHECK(logs[2].values.find("loss_epoch")->as_double() == 1.5);  // mean of 0,1,2,3
  CHECK(logs[2].values.find("acc")->as_double() == 0.5);
  CHECK(logs[2].values.find("val/acc")->as_double() == 0.25);
  CHECK(*logs[5].step == 7);
  CHECK(logs[5].values.find("loss_epoch")->as_double() == 5.5);
  CHECK(logs[5].values.find("val/acc")->as_double() == 0.5);
}

TEST_CASE("both log forms read naturally side by side") {
  TempDir dir;
  auto tracker = std::make_shared<RecordingTracker>();
  TrackerHub hub(test::hub_options_in(dir));
  hub.init_trackers("proj", {}, {tracker});
  hub.log({{"a", 1.0}}, 3);
  hub.log({{"a", 1.0}, {"b", 2}});
  Values v{{"c", 3}};
  hub.log(v, 4);
  hub.log("d", 1.0);
  hub.log_dict({{"e", 1.0}}, {.on_step = true});
  hub.step_end(0);  // log_every_n_steps = 50: nothing due at step 0
  hub.end_training();
  CHECK(tracker->logs().size() == 3);
  CHECK(hub.aggregator().callback_metrics().contains("d"));
}

TEST_CASE("the progress bar shows prog_bar metrics on the main process only") {
  TempDir dir;
  std::ostringstream main_out, other_out;
  for (bool main : {true, false}) {
    TrackerHubOptions o = test::hub_options_in(dir);
    o.is_main_process = main;
    o.progress_bar.stream = main ? &main_out : &other_out;
    o.progress_bar.enabled = true;
    o.progress_bar.refresh_interval = std::chrono::milliseconds(0);
    TrackerHub hub(o);
    hub.init_trackers("proj", {}, {std::make_shared<RecordingTracker>()});
    hub.start_epoch(0, 3);
    for (int64_t step = 0; step < 3; ++step) {
      hub.log("loss", 0.125, {.prog_bar = true});
      hub.step_end(step);
    }
    hub.epoch_end();
    hub.end_training();
  }
  CHECK(main_out.str().find("Epoch 0") != std::string::npos);
  CHECK(main_out.str().find("3/3") != std::string::npos);
  CHECK(main_out.str().find("loss=0.125") != std::string::npos);
  CHECK(other_out.str().empty());
}
