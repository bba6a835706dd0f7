"""A recording Comet server for the tests: answers what comet_ml 3.58.8's `comet upload` and its
online Experiment ask (shared/research/comet-formats.md §2.2, §3) on 127.0.0.1 and records every
request.

Answers: POST /clientlib/logger/add/run (and logger/get/run) gives a runId and project id; GET
/clientlib/isAlive/ver a version; POST /clientlib/status-report/update the interval fields the
SDK requires (is_alive_beat_duration_millis = --beat-ms); GET /_summary what the log holds so far,
as upload_summary.py summarises it; everything else 200 with {}. With --api-key KEY, a request
whose Authorization header is not KEY is answered 401 (and recorded with "refused": true).
Records: one JSON line per request in LOG — {"method", "path", "query" (parsed), "gzip" (whether
the body was), "json" (the body, gunzipped when gzip), "parts" (multipart: name -> base64 of the
content)} — appended and flushed before the response, so a reader sees every answered request.
Neither headers nor the "apiKey" of a body are recorded (they carry the API key): the key is
recorded as "<redacted>". LOG is appended to, so a server restarted on the same port (--port)
keeps what the one before received.

Usage: recording_comet_server.py PORT_FILE LOG [--port N] [--api-key KEY] [--beat-ms N]
(writes the chosen port to PORT_FILE when ready; stops on SIGTERM).
"""

import argparse
import base64
import email.parser
import email.policy
import gzip
import json
import signal
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import upload_summary

STATUS = {
    "is_alive_beat_duration_millis": 10000,
    "gpu_monitor_interval_millis": 60000,
    "cpu_monitor_interval_millis": 60000,
    "parameter_update_interval_millis": 60000,
    "pending_rpcs": False,
}
LOCK = threading.Lock()


def parse_body(headers, body):
    record = {"gzip": headers.get("Content-Encoding") == "gzip"}
    if record["gzip"]:
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
    log_path = None
    api_key = None

    def log_message(self, *args):  # quiet
        pass

    def answer(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = {"method": self.command, "path": url.path,
                  "query": dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))}
        if url.path == "/_summary":
            with LOCK:
                with open(self.log_path, encoding="utf-8") as f:
                    records = [json.loads(line) for line in f]
            return self.reply(200, upload_summary.summarize(records))
        record.update(parse_body(self.headers, body))
        refused = self.api_key is not None and self.headers.get("Authorization") != self.api_key
        if refused:
            record["refused"] = True
        with LOCK:
            self.log_file.write(json.dumps(record) + "\n")
            self.log_file.flush()
        if refused:
            return self.reply(401, {"msg": "api key not valid", "code": 401})
        if url.path.endswith("/logger/add/run") or url.path.endswith("/logger/get/run"):
            reply = {"runId": "run-0001", "project_id": "project-0001", "is_github": False,
                     "focusUrl": "http://127.0.0.1/experiment/", "featureToggles": []}
        elif url.path.endswith("/isAlive/ver"):
            reply = {"version": "3.52.99"}
        elif url.path.endswith("/status-report/update"):
            reply = STATUS
        else:
            reply = {}
        self.reply(200, reply)

    def reply(self, status, reply):
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = answer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port_file")
    parser.add_argument("log")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key")
    parser.add_argument("--beat-ms", type=int, default=10000)
    args = parser.parse_args()
    port_file = args.port_file
    STATUS["is_alive_beat_duration_millis"] = args.beat_ms
    Handler.api_key = args.api_key
    Handler.log_path = args.log
    Handler.log_file = open(args.log, "a", encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()
    Handler.log_file.close()


if __name__ == "__main__":
    main()
