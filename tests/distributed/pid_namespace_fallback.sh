#!/bin/sh
# Runs shm_allreduce_test on 2 ranks with rank 1 in its own PID namespace (as ranks in separate
# containers on one machine would be): rank 1 cannot open rank 0's shared memory, so every rank must fall
# back to MPI together and still get every result right.
# usage: pid_namespace_fallback.sh <mpiexec> <test executable> [mpiexec flags...]
mpiexec="$1"
test_exe="$2"
shift 2
if ! unshare --pid --fork --mount-proc true 2>/dev/null; then
  echo "SKIPPED: cannot create a PID namespace here (unshare needs root or CAP_SYS_ADMIN)"
  exit 0
fi
export ACCEL_TEST_EXPECT_SHARED_MEMORY=0
# Without a shared PID namespace OpenMPI's single-copy (CMA) transfers fail too; use copy-in/out.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
exec "$mpiexec" "$@" -x ACCEL_TEST_EXPECT_SHARED_MEMORY -x OMPI_MCA_btl_vader_single_copy_mechanism \
  -n 1 "$test_exe" : -n 1 unshare --pid --fork --mount-proc "$test_exe"
