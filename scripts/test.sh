#!/usr/bin/env bash
# The whole test suite: sets the machine up if needed, builds, then runs every test under ctest
# (unit, mpi, integration, package). CI runs exactly this.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
ctest --test-dir build --output-on-failure --timeout 900 -j "${ACCEL_TEST_JOBS:-2}" "$@"
