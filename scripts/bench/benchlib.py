"""What the benchmark scripts of scripts/bench share: finding and building their C++ program, the
machine description every report carries, percentiles, and writing build/bench/<name>.json.
Imported by the scripts (not a benchmark itself: run_all runs only executable files)."""
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def find_build_dir(bench, arg):
    candidates = [Path(arg)] if arg else [ROOT / "build"]
    for c in candidates:
        if (c / "CMakeCache.txt").exists():
            return c.resolve()
    sys.exit(f"{bench}: no configured build directory ({', '.join(map(str, candidates))}); "
             "run scripts/setup.sh or pass --build-dir build-<area>")


def build(bench, build_dir, target):
    subprocess.run(["cmake", "--build", str(build_dir), "--target", target], check=True,
                   stdout=subprocess.DEVNULL)
    exe = build_dir / "scripts" / "bench" / target / target
    if not exe.exists():
        sys.exit(f"{bench}: {exe} was not built")
    return exe


def percentile(sorted_samples, p):
    index = max(0, math.ceil(p * len(sorted_samples)) - 1)
    return float(sorted_samples[min(index, len(sorted_samples) - 1)])


def machine():
    cpu = platform.processor()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(),
            "load_average_1m": round(os.getloadavg()[0], 2)}


def write_report(report):
    out_dir = ROOT / "build" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{report['bench']}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
