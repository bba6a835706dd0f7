#!/usr/bin/env bash
# usage: run_consumer.sh <accel build dir> <consumer source dir> <work dir> <with distributed ON/OFF>
set -euo pipefail
build="$1" src="$2" work="$3" distributed="$4"
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$src" -B "$work/build" "${generator[@]}" -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCONSUMER_WITH_DISTRIBUTED="$distributed" >/dev/null
cmake --build "$work/build" >/dev/null
cd "$work"
"$work/build/consumer_tracking"
if [[ "$distributed" == ON || "$distributed" == 1 || "$distributed" == TRUE ]]; then
  "$work/build/consumer_distributed"
fi
