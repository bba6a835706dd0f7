// Main-process gating across real MPI ranks (mpiexec -n 2 / 3): only rank 0 runs the built-in
// trackers and writes files; a tracker that opts out of gating runs on every rank; get_tracker on
// the other ranks gives a no-op tracker and never throws.
#include <mpi.h>
#include <unistd.h>

#include <cstdlib>

#include "accel/tracking/hub.hpp"
#include "mpi_collectives.hpp"
#include "tracking_test_support.hpp"

using namespace accel;

using test::MpiCollectives;

TEST_CASE("only rank 0 runs gated trackers; opted-out trackers run everywhere") {
  MpiCollectives collectives;
  const int rank = collectives.rank();
  const int size = collectives.world_size();
  REQUIRE(size >= 2);

  // One directory for all ranks, named by rank 0.
  long id = rank == 0 ? static_cast<long>(::getpid()) : 0;
  MPI_Bcast(&id, 1, MPI_LONG, 0, MPI_COMM_WORLD);
  const auto dir = std::filesystem::path(ACCEL_BINARY_DIR) / "test-scratch" /
                   ("mpi-gating-" + std::to_string(id));

  auto everywhere = std::make_shared<test::RecordingTracker>("everywhere", /*main_only=*/false);
  auto main_only = std::make_shared<test::RecordingTracker>("main_only");
  TrackerHubOptions o;
  o.project_dir = dir;
  o.handle_signals = false;
  o.collectives = &collectives;
  TrackerHub hub(o);
  CHECK(hub.is_main_process() == (rank == 0));
  hub.init_trackers("proj", {{"rank_config", rank}}, {"csv", "jsonl", everywhere, main_only});
  for (int64_t step = 0; step < 10; ++step)
    hub.log({{"loss", 1.0 / double(step + 1)}, {"rank", rank}}, step);
  CHECK_NOTHROW(hub.get_tracker("csv"));
  if (rank != 0) CHECK_NOTHROW(hub.get_tracker("never-started").name());
  auto report = hub.end_training();
  CHECK(report.complete());

  // What each rank ran, summed over ranks.
  double counts[3] = {double(hub.trackers().size()), double(everywhere->logs().size()),
                      double(main_only->logs().size())};
  collectives.allreduce_sum(counts);
  CHECK(counts[0] ==
        4 + (size - 1) * 1);  // rank 0: csv, jsonl, everywhere, main_only; others: everywhere
  CHECK(counts[1] == 10 * size);
  CHECK(counts[2] == 10);
  if (rank != 0) CHECK(hub.get_tracker("csv").tracker().has_value() == false);

  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    // Exactly one run directory was written, by rank 0, with rank 0's values.
    std::size_t versions = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir / "proj"))
      versions += e.is_directory() ? 1 : 0;
    CHECK(versions == 1);
    auto csv = test::read_file(dir / "proj" / "version_0" / "metrics.csv");
    CHECK(csv.rfind("step,loss,rank\n0,1,0\n", 0) == 0);
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 11);
    test::remove_tree(dir);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}
