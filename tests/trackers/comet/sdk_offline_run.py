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

from sdk_sample import NO_AUTO_LOGGING, log_sample

offline_dir, long_entries = sys.argv[1], sys.argv[2]
with open(long_entries, encoding="utf-8") as f:
    long = json.load(f)

e = comet_ml.OfflineExperiment(project_name="accel-proj", workspace="ws",
                               offline_directory=offline_dir, parse_args=False, **NO_AUTO_LOGGING)
log_sample(e)
# Too long for the SDK's limits: cut by it (MAXIMAL_KEY_LENGTH, MAXIMAL_VALUE_LENGTH).
e.log_parameters(long["parameters"])
for name in long["metrics"]:
    e.log_metric(name, 1.5, step=3, epoch=1)
for key, value in long["others"].items():
    e.log_other(key, value)
e.end()
