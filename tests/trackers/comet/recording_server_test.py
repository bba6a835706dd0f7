#!/usr/bin/env python3
"""ctest comet_recording_server_test: the recording Comet server (recording_comet_server.py) answers
the pinned comet_ml SDK (3.58.8) the way `comet upload` needs. An archive written by the SDK's own
OfflineExperiment (parameters, metrics, an other, html, an image, a histogram, a text sample) is
uploaded with the real `comet upload`: no COMET WARNING/ERROR, no update-status error, and the
server receives what was logged (upload_summary.py). check_archive.py, which the accel tests use
on accel's archives, must find the SDK's own archive valid and read the same content from it. The
API key is recorded nowhere. The accel comet tests rely on this server and these scripts, so they
are checked against the real client first.

    recording_server_test.py <python of .venv>
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
API_KEY = "ck" + "7" * 30

SDK_RUN = r"""
import sys, comet_ml
from PIL import Image
e = comet_ml.OfflineExperiment(project_name="p1", workspace="ws", offline_directory=sys.argv[1],
    log_code=False, log_graph=False, auto_param_logging=False, auto_metric_logging=False,
    auto_output_logging=False, log_env_details=False, log_git_metadata=False,
    log_git_patch=False, log_env_gpu=False, log_env_host=False, log_env_cpu=False,
    log_env_network=False, log_env_disk=False, display_summary_level=0)
e.add_tag("t1")
e.log_parameters({"lr": 0.001, "opt": {"name": "adam", "betas": [0.9, 0.999]}})
e.log_metric("loss", 0.5, step=1, epoch=0)
e.log_metric("loss", float("nan"), step=2, epoch=0)
e.log_other("note", "hello")
e.log_html("<b>bold</b>")
e.log_image(Image.new("RGB", (5, 4), (10, 20, 30)), name="picture", step=2)
e.log_histogram_3d([1, 2, 3, 3, 4], name="weights", step=2)
e.log_text("some text", step=2)
e.end()
"""

failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


def sandbox_env(home, port):
    env = {k: v for k, v in os.environ.items()
           if k not in ("COMET_WORKSPACE", "COMET_PROJECT_NAME", "COMET_CONFIG", "COMET_API_KEY")}
    env.update(HOME=home, COMET_API_KEY=API_KEY, COMET_ERROR_TRACKING_ENABLE="false",
               COMET_DISABLE_ANNOUNCEMENT="true", COMET_DISABLE_AUTO_LOGGING="1",
               COMET_URL_OVERRIDE=f"http://127.0.0.1:{port}/clientlib/")
    return env


def main(python):
    work = tempfile.mkdtemp(prefix="comet-recording-")
    port_file, log = os.path.join(work, "port"), os.path.join(work, "requests.jsonl")
    server = subprocess.Popen([python, os.path.join(HERE, "recording_comet_server.py"),
                               port_file, log])
    try:
        for _ in range(500):
            if os.path.exists(port_file):
                break
            time.sleep(0.02)
        port = int(open(port_file).read())
        env = sandbox_env(work, port)
        runs = os.path.join(work, "runs")
        subprocess.run([python, "-c", SDK_RUN, runs], env=env, cwd=work, check=True,
                       capture_output=True, timeout=120)
        archives = [os.path.join(runs, f) for f in os.listdir(runs) if f.endswith(".zip")]
        check(len(archives) == 1, "the SDK wrote one archive")
        checked = json.loads(subprocess.run(
            [python, "-W", "ignore", os.path.join(HERE, "check_archive.py"), archives[0]],
            env=env, check=True, capture_output=True, text=True, timeout=120).stdout)
        check(checked["errors"] == [], f"check_archive finds the SDK's archive valid: "
                                       f"{checked['errors']}")
        upload = subprocess.run([os.path.join(os.path.dirname(python), "comet"), "upload",
                                 archives[0]], env=env, cwd=work, capture_output=True,
                                text=True, timeout=120)
        output = upload.stdout + upload.stderr
        check(upload.returncode == 0, "comet upload exits 0")
        clean = "COMET WARNING" not in output and "COMET ERROR" not in output
        check(clean, "comet upload prints no COMET WARNING/ERROR" + ("" if clean else ":\n" + output))
        check("Number of uploaded experiments: 1" in output, "comet upload uploaded one experiment")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
    sent = json.loads(subprocess.run(
        [python, "-W", "ignore", os.path.join(HERE, "upload_summary.py"), log],
        check=True, capture_output=True, text=True, timeout=60).stdout)
    check(sent["errors"] == [], f"no update-status error: {sent['errors']}")
    check(sent["experiment"]["projectName"] == "p1" and sent["experiment"]["teamName"] == "ws",
          "add/run names the project and workspace")
    check(sent["experiment"].get("tags") == ["t1"], "the tags arrive")
    check(sorted(map(json.dumps, sent["metrics"])) == sorted(map(json.dumps, checked["metrics"])),
          f"the metrics arrive as the archive holds them: {sent['metrics']}")
    check(["loss", "NaN", 2, 0] in sent["metrics"], "NaN arrives as \"NaN\"")
    last = {p[0]: p for p in checked["parameters"]}  # the uploader keeps the last value per name
    check(sorted(map(json.dumps, sent["parameters"])) == sorted(map(json.dumps, last.values())),
          f"the parameters arrive, the last value of each: {sent['parameters']}")
    check(["opt|betas", [0.9, 0.999], None, "manual"] in sent["parameters"],
          "nested parameters are flattened with |")
    check(sent["others"] == checked["others"] and ["note", "hello"] in sent["others"],
          "the others arrive")
    check(sent["html"] == [["html", "<b>bold</b>"]], "the html arrives")
    by_type = {u["upload_type"]: u for u in sent["uploads"]}
    check(sorted(by_type) == ["histogram3d", "text-sample", "visualization"],
          f"three uploads arrive: {sorted(by_type)}")
    for u in checked["uploads"]:
        got = by_type.get(u["upload_type"], {})
        check(got.get("content") == u["content"], f"the {u['upload_type']} file arrives whole")
    with open(log, encoding="utf-8") as f:
        check(API_KEY not in f.read(), "the API key is recorded nowhere")
    print("FAILED" if failures else "PASSED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
