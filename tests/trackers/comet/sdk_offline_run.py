"""The comet_ml SDK (3.58.8) logging, offline (OfflineExperiment), what comet_tracker_test.cpp's
offline side-by-side test logs through accel's tracker: comet_test_support.hpp's log_sample_run
(the same config, metrics, others, html, image, histogram and text, with the same steps and
epochs), then keys and values longer than the SDK's limits (long_entries.json, written by the
test), with auto-logging off. The archive goes to OFFLINE_DIR as <experiment key>.zip.

Usage: sdk_offline_run.py OFFLINE_DIR LONG_ENTRIES_JSON   (environment as
shared/research/comet-formats.md §5 says)
"""
import json
import sys

import comet_ml
import numpy as np
from PIL import Image

offline_dir, long_entries = sys.argv[1], sys.argv[2]
with open(long_entries, encoding="utf-8") as f:
    long = json.load(f)

e = comet_ml.OfflineExperiment(
    project_name="accel-proj", workspace="ws", offline_directory=offline_dir, log_code=False,
    log_graph=False, auto_param_logging=False, auto_metric_logging=False,
    auto_output_logging=False, log_env_details=False, log_git_metadata=False,
    log_git_patch=False, log_env_gpu=False, log_env_host=False, log_env_cpu=False,
    log_env_network=False, log_env_disk=False, parse_args=False, display_summary_level=0)
e.set_name("same")
e.add_tag("t1")
# accel logs the config with credentials redacted.
e.log_parameters({"lr": 0.001, "api_key": "<redacted>",
                  "opt": {"name": "adam", "betas": [0.9, 0.999]}, "epochs": 3})
e.log_metric("loss", 0.5, step=1)
e.log_metric("correct", 17, step=1)
e.log_metric("loss", float("nan"), step=2)
e.log_other("note", "hello")
e.log_metrics({"loss/train": 0.25, "loss/val": float("inf")}, step=3, epoch=1)
pixels = (np.arange(4 * 5 * 3) * 7 % 256).astype(np.uint8).reshape(4, 5, 3)
e.log_image(Image.fromarray(pixels), name="picture", step=3)
e.log_histogram_3d([1, 2, 3, 3, 4], name="weights", step=3, epoch=1)
e.log_metric("later", 7, step=3, epoch=1)
e.log_html("<b>bold</b>")
e.log_text("some text", step=4)
# Too long for the SDK's limits: cut by it (MAXIMAL_KEY_LENGTH, MAXIMAL_VALUE_LENGTH).
e.log_parameters(long["parameters"])
for name in long["metrics"]:
    e.log_metric(name, 1.5, step=3, epoch=1)
for key, value in long["others"].items():
    e.log_other(key, value)
e.end()
