"""A scripted HTTP server for retry tests, on 127.0.0.1 (free port, printed as the first stdout line).

Each request pops the next status from the plan given as argv[1] (comma-separated, e.g.
"503,429,200"); when the plan is empty it answers 200. 429/503 carry `Retry-After: <argv[2]>`.
Every request is recorded; GET /__log returns [[method, path, seconds since start], ...] (not in plan).
Exits after argv[3] seconds at the latest.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

plan = [int(s) for s in sys.argv[1].split(",") if s]
retry_after = sys.argv[2]
lifetime = float(sys.argv[3])
log = []
start = time.monotonic()
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path == "/__log":
            body = json.dumps(log).encode()
            status = 200
            headers = {}
        else:
            with lock:
                log.append([self.command, self.path, time.monotonic() - start])
                status = plan.pop(0) if plan else 200
            headers = {"Retry-After": retry_after} if status in (429, 503) else {}
            if status == 200:
                body = b'{"experiment": {"experiment_id": "7", "lifecycle_stage": "active"}}'
            elif status == 400:
                body = b'{"error_code": "INVALID_PARAMETER_VALUE", "message": "bad value for x"}'
            else:
                body = b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}'
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = answer


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
threading.Timer(lifetime, server.shutdown).start()
server.serve_forever()
