"""Starts a real `tensorboard` server on 127.0.0.1 (a free port) over a log directory, waits until it
has loaded the expected runs, answers HTTP queries and stops the server by its PID.

usage: query_server.py <logdir> <load_fast: true|false> <queries-json>
  queries-json: {"name": ["/data/path", {"param": "value" or a JSON object}], ...}
  A JSON-object parameter is sent as its JSON text (the hparams plugin's `request=` argument).
Prints {"name": <decoded JSON response>, ...}. Exits non-zero (with a message) when the server does
not come up or does not load the runs within 90 s.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

DEADLINE_S = 90


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, params=None):
    query = ""
    if params:
        query = "?" + urllib.parse.urlencode(
            {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in params.items()})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}{query}", timeout=20) as response:
        return json.loads(response.read().decode("utf-8"))


def main(logdir, load_fast, queries):
    port = free_port()
    tensorboard = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    server = subprocess.Popen(
        [tensorboard, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port),
         "--load_fast", load_fast, "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        expected_runs = sorted(d for d in os.listdir(logdir) if os.path.isdir(os.path.join(logdir, d)))
        deadline = time.monotonic() + DEADLINE_S
        last_error = None
        while time.monotonic() < deadline:
            if server.poll() is not None:
                sys.exit("tensorboard exited early: " + server.stderr.read().decode(errors="replace")[-2000:])
            try:
                tags = get(port, "/data/plugin/scalars/tags")
                if all(run in tags for run in expected_runs):
                    break
                last_error = f"runs so far: {sorted(tags)}"
            except Exception as e:  # not listening yet
                last_error = repr(e)
            time.sleep(0.5)
        else:
            sys.exit(f"tensorboard did not load {expected_runs} within {DEADLINE_S} s: {last_error}")
        time.sleep(1.5)  # one more reload cycle so every plugin has seen the final files
        out = {name: get(port, path, params) for name, (path, params) in queries.items()}
        json.dump(out, sys.stdout)
    finally:
        os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
