#!/usr/bin/env bash
# Installs everything accel needs and builds it into build/. Idempotent: on a machine that is already
# set up it only re-runs the (incremental) build, which takes seconds.
#
#   scripts/setup.sh            install + configure + build
#   ACCEL_SETUP_SKIP_BUILD=1    install only
#   ACCEL_CMAKE_ARGS="..."      extra CMake arguments (e.g. -DACCEL_WITH_CUDA=OFF)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

apt_packages=(build-essential cmake ninja-build ccache pkg-config git
  openmpi-bin libopenmpi-dev catch2 nlohmann-json3-dev libcurl4-openssl-dev
  libprotobuf-dev protobuf-compiler libyaml-cpp-dev libpng-dev libcli11-dev libfmt-dev
  zlib1g-dev libssl-dev libzip-dev
  python3-venv clang-format)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python_bin="${ACCEL_PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv with $($python_bin --version)"
  "$python_bin" -m venv .venv
fi
stamp=.venv/.accel-requirements
if ! cmp -s scripts/requirements.txt "$stamp"; then
  say "installing Python packages (torch wheel for LibTorch, test and benchmark tools)"
  .venv/bin/pip install --disable-pip-version-check -q -r scripts/requirements.txt
  cp scripts/requirements.txt "$stamp"
fi

if [[ "${ACCEL_SETUP_SKIP_BUILD:-0}" == 1 ]]; then
  exit 0
fi
if [[ ! -f build/CMakeCache.txt ]]; then
  say "configuring build/"
  # shellcheck disable=SC2086
  # Line tables only (-g1): backtraces keep file:line and the build takes a third less time.
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DACCEL_DEBUG_INFO=lines \
    ${ACCEL_CMAKE_ARGS:-}
fi
say "building"
cmake --build build -j "$(nproc)"
say "done: build/ is ready"
