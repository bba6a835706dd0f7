#!/usr/bin/env python3
"""ctest wandb_recording_server_test: the recording W&B server (recording_wandb_server.py) answers the
pinned wandb SDK the way a W&B server does. The SDK's own offline run uploaded with `wandb sync`, an
online run, and a resumed run arrive whole (rows, summary, config, media, a table artifact with
its file, manifest and digests, complete/exitcode), what was received survives a restart of the
server, and the API key is kept nowhere. The accel wandb tests rely on this server, so it is
checked against the real client first.

    recording_server_test.py <python of .venv>
"""
import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "recording_wandb_server.py")
API_KEY = "k" * 40

SDK_RUN = r"""
import sys, wandb, numpy as np
mode, directory = sys.argv[1], sys.argv[2]
run = wandb.init(project="p1", mode=mode, dir=directory,
                 config={"lr": 0.001, "model": {"hidden": 128}})
for s in range(3):
    run.log({"loss": 1.0 / (s + 1), "acc": s * 0.1}, step=s)
run.log({"img": wandb.Image(np.zeros((8, 8, 3), dtype=np.uint8))}, step=3)
run.log({"tbl": wandb.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])}, step=3)
run.summary["best"] = 0.9
print("RUN_ID", run.id)
run.finish()
"""

SDK_RESUME = r"""
import sys, wandb
run = wandb.init(project="p1", id=sys.argv[1], resume="must", dir=sys.argv[2])
run.log({"loss": 0.1})
run.log({"loss": 0.05})
run.finish()
"""

failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


class Server:
    def __init__(self, python, workdir, port=0):
        self.port_file = os.path.join(workdir, "port")
        self.state_file = os.path.join(workdir, "state.json")
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        self.process = subprocess.Popen(
            [python, SERVER, "--port", str(port), "--port-file", self.port_file,
             "--state-file", self.state_file])
        deadline = time.monotonic() + 20
        while not os.path.exists(self.port_file):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit("the recording server did not start")
            time.sleep(0.05)
        self.port = int(open(self.port_file).read())

    def state(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_state", timeout=10) as r:
            return json.load(r)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=20)


def history(run):
    lines = run["files"]["wandb-history.jsonl"]["lines"]
    return [json.loads(lines[k]) for k in sorted(lines, key=int)]


def check_run(run, label):
    check(run["complete"] and run["exitcode"] == 0, f"{label}: complete with exitcode 0")
    rows = history(run)
    check([r["_step"] for r in rows] == [0, 1, 2, 3], f"{label}: history rows _step 0..3")
    check([r.get("loss") for r in rows[:3]] == [1.0, 0.5, 1.0 / 3], f"{label}: loss values")
    check(rows[3].get("img", {}).get("_type") == "image-file", f"{label}: image row")
    check(rows[3].get("tbl", {}).get("_type") == "table-file", f"{label}: table row")
    summary = run["summary"] or {}
    check(summary.get("best") == 0.9 and summary.get("loss") == 1.0 / 3, f"{label}: summary")
    config = run["config"] or {}
    check(config.get("lr") == {"value": 0.001} and config.get("model") == {"value": {"hidden": 128}},
          f"{label}: config wrapped as {{'value': v}}")
    check(any(f.startswith("media/images/") for f in run["uploaded"]), f"{label}: image uploaded")
    check("config.yaml" in run["uploaded"] and "wandb-summary.json" in run["uploaded"],
          f"{label}: config.yaml and wandb-summary.json uploaded")


def check_table_artifact(state, run_id, label):
    """The run's run_table artifact arrived whole: once, committed, with the bytes, manifest and
    digests wandb-core declared."""
    tables = [a for a in state["artifacts"].values() if a["name"] == f"run-{run_id}-tbl"]
    check(len(tables) == 1 and tables[0]["committed"], f"{label}: table artifact committed once")
    if len(tables) != 1:
        return
    artifact = tables[0]
    check(artifact["type"] == "run_table" and artifact["aliases"] == ["latest"]
          and artifact["digest_algorithm"] == "MANIFEST_MD5", f"{label}: artifact type, aliases")
    entries = (artifact["manifest"] or {}).get("contents") or {}
    check(set(entries) == {"tbl.table.json"} == set(artifact["files"]), f"{label}: artifact entry")
    received = artifact["files"].get("tbl.table.json") or {}
    check(received.get("md5") == artifact["declared_files"].get("tbl.table.json")
          == entries.get("tbl.table.json", {}).get("digest"),
          f"{label}: artifact file bytes have the MD5 declared and written in the manifest")
    lines = "".join(f"{path}:{entry['digest']}\n" for path, entry in sorted(entries.items()))
    digest = hashlib.md5(("wandb-artifact-manifest-v1\n" + lines).encode()).hexdigest()
    check(digest == artifact["digest"], f"{label}: artifact digest is the MD5 of its manifest lines")
    check(artifact["manifest_digest"] == artifact["manifest_md5"],
          f"{label}: manifest uploaded under the digest CreateArtifactManifest declared")
    check(received.get("content_md5_header") == received.get("md5")
          and received.get("content_type") == "application/octet-stream"
          and artifact.get("manifest_content_md5_header") == artifact["manifest_md5"],
          f"{label}: uploads carry the upload headers the server gave")
    table = json.loads(base64.b64decode(received.get("base64") or "e30="))
    check(table.get("columns") == ["a", "b"] and table.get("data") == [[1, "x"], [2, "y"]],
          f"{label}: artifact file holds the table")


def main():
    python = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="accel-wandb-recorder-") as work:
        home = os.path.join(work, "home")
        os.makedirs(home)
        server = Server(python, work)
        env = dict(os.environ, HOME=home, WANDB_CONFIG_DIR=os.path.join(home, ".config"),
                   WANDB_BASE_URL=f"http://127.0.0.1:{server.port}", WANDB_API_KEY=API_KEY,
                   WANDB_SILENT="true", WANDB_DISABLE_GIT="true")
        wandb_cli = os.path.join(os.path.dirname(python), "wandb")

        def sdk(script, *args):
            done = subprocess.run([python, "-c", script, *args], env=env, cwd=work, timeout=180,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                print(done.stdout, done.stderr)
            return done

        try:
            offline = sdk(SDK_RUN, "offline", os.path.join(work, "offline"))
            check(offline.returncode == 0, "SDK offline run")
            offline_id = offline.stdout.split("RUN_ID ")[1].split()[0]
            synced = subprocess.run([wandb_cli, "sync", os.path.join(work, "offline", "wandb",
                                                                     "latest-run")],
                                    env=env, cwd=work, timeout=180, capture_output=True, text=True)
            check(synced.returncode == 0, "wandb sync of the offline run")
            state = server.state()
            check(state["unknown_operations"] == [], "every operation wandb sync sent is answered")
            check_run(state["runs"][f"recorder/p1/{offline_id}"], "wandb sync")
            check_table_artifact(state, offline_id, "wandb sync")

            online = sdk(SDK_RUN, "online", os.path.join(work, "online"))
            check(online.returncode == 0, "SDK online run")
            online_id = online.stdout.split("RUN_ID ")[1].split()[0]
            state = server.state()
            check(state["unknown_operations"] == [], "every operation the online SDK sent is answered")
            check_run(state["runs"][f"recorder/p1/{online_id}"], "online")
            check_table_artifact(state, online_id, "online")

            server.stop()
            server = Server(python, work, port=server.port)
            check(f"recorder/p1/{online_id}" in server.state()["runs"], "received runs survive a restart")

            resumed = sdk(SDK_RESUME, online_id, os.path.join(work, "online"))
            check(resumed.returncode == 0, "SDK resume='must' of the online run")
            rows = history(server.state()["runs"][f"recorder/p1/{online_id}"])
            check([r["_step"] for r in rows] == [0, 1, 2, 3, 4, 5], "resume continues at _step 4")

            received = json.dumps(server.state()) + open(server.state_file).read()
            check(API_KEY not in received and base64.b64encode(f"api:{API_KEY}".encode()).decode()
                  not in received, "the API key is not kept")
        finally:
            server.stop()
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
