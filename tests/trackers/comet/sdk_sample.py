"""What comet_test_support.hpp's log_sample_run logs through accel's tracker, logged with the
comet_ml SDK (3.58.8): the same config, metrics, others, html, image, histogram and text, with the
same steps and epochs. sdk_offline_run.py and sdk_online_run.py call it on their experiment.
"""
import numpy as np
from PIL import Image

# The keyword arguments that turn the SDK's auto-logging off (its own bookkeeping would otherwise
# differ from what accel logs).
NO_AUTO_LOGGING = dict(
    log_code=False, log_graph=False, auto_param_logging=False, auto_metric_logging=False,
    auto_output_logging=False, log_env_details=False, log_git_metadata=False,
    log_git_patch=False, log_env_gpu=False, log_env_host=False, log_env_cpu=False,
    log_env_network=False, log_env_disk=False, display_summary_level=0)


def log_sample(e):
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
