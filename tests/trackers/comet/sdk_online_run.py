"""The comet_ml SDK (3.58.8) logging, online, what comet_test_support.hpp's log_sample_run logs
through accel's tracker (the same config, metrics, others, html, image, histogram and text, with
the same steps and epochs), with auto-logging off, to the server COMET_URL_OVERRIDE names. The
side-by-side test in comet_online_test.cpp compares what the server received from each.

Usage: sdk_online_run.py   (environment as shared/research/comet-formats.md §5 says)
"""
import comet_ml

from sdk_sample import NO_AUTO_LOGGING, log_sample

e = comet_ml.Experiment(project_name="accel-proj", workspace="ws", **NO_AUTO_LOGGING)
log_sample(e)
e.end()
