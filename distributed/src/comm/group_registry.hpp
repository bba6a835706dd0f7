#pragma once
// Private to accel_distributed: process groups register how to shut themselves down, so that State can
// stop their communication threads and free their communicators before MPI_Finalize at process exit.
#include <cstdint>
#include <functional>

namespace accel::detail {

std::uint64_t register_group_shutdown(std::function<void()> shutdown);
void unregister_group_shutdown(std::uint64_t id);
// Runs every registered shutdown (latest first) and forgets them. Called by State at exit.
void shutdown_all_groups();
// True when MPI may be called: initialised and not yet finalised.
bool mpi_usable();

}  // namespace accel::detail
