"""A recording Comet server for the tests: answers what comet_ml 3.58.8's `comet upload` asks
(shared/research/comet-formats.md §2.2) on 127.0.0.1 and records every request.

Answers: POST /clientlib/logger/add/run gives a runId and project id; GET
/clientlib/isAlive/ver a version; POST /clientlib/status-report/update the two interval fields the
uploader requires; everything else 200 with {}. Records: one JSON line per request in LOG —
{"method", "path", "query" (parsed), "json" (the body, gunzipped when gzip), "parts" (multipart:
name -> base64 of the content)} — appended and flushed before the response, so a reader sees
every answered request. Neither headers nor the "apiKey" of a body are recorded (they carry the
API key): the key is recorded as "<redacted>".

Usage: recording_comet_server.py PORT_FILE LOG  (writes the chosen port to PORT_FILE when ready;
stops on SIGTERM).
"""

import base64
import email.parser
import email.policy
import gzip
import json
import signal
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATUS = {
    "is_alive_beat_duration_millis": 10000,
    "gpu_monitor_interval_millis": 60000,
    "cpu_monitor_interval_millis": 60000,
    "parameter_update_interval_millis": 60000,
    "pending_rpcs": False,
}
LOCK = threading.Lock()


def parse_body(headers, body):
    record = {}
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    content_type = headers.get("Content-Type", "")
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        record["parts"] = {
            part.get_param("name", header="content-disposition"):
                base64.b64encode(part.get_payload(decode=True)).decode()
            for part in message.iter_parts()}
    elif body:
        try:
            record["json"] = json.loads(body)
            if isinstance(record["json"], dict) and "apiKey" in record["json"]:
                record["json"]["apiKey"] = "<redacted>"
        except ValueError:
            record["text"] = body.decode("utf-8", "replace")
    return record


class Handler(BaseHTTPRequestHandler):
    log_file = None

    def log_message(self, *args):  # quiet
        pass

    def answer(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = {"method": self.command, "path": url.path,
                  "query": dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))}
        record.update(parse_body(self.headers, body))
        with LOCK:
            self.log_file.write(json.dumps(record) + "\n")
            self.log_file.flush()
        if url.path.endswith("/logger/add/run"):
            reply = {"runId": "run-0001", "project_id": "project-0001", "is_github": False,
                     "focusUrl": "http://127.0.0.1/experiment/", "featureToggles": []}
        elif url.path.endswith("/isAlive/ver"):
            reply = {"version": "3.52.99"}
        elif url.path.endswith("/status-report/update"):
            reply = STATUS
        else:
            reply = {}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = answer


def main(port_file, log):
    Handler.log_file = open(log, "a", encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()
    Handler.log_file.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
