#!/usr/bin/env python3
"""A recording W&B server for accel's tests: answers what wandb-core (the pinned wandb wheel's
`wandb sync` and online runs) and accel's wandb tracker send, on 127.0.0.1 only, and keeps what it
received so a test can compare it.

    recording_wandb_server.py --port-file PATH [--state-file PATH] [--port N]

It writes its port to --port-file once it listens. With --state-file it saves what it received after
every request and loads it again at start, so a test can stop it (SIGTERM) mid-run and start it again
on the same port: rows that arrive twice are then visible as duplicates.

Endpoints
  POST /graphql                     Viewer, UpsertBucket, RunResumeStatus, ServerFeaturesQuery,
                                    CreateRunFiles, ArtifactType, CreateArtifact, CreateArtifactManifest,
                                    CreateArtifactFiles, CommitArtifact, OrganizationCoreWeaveOrganizationID;
                                    any other operation is answered {} and listed under "unknown_operations"
  POST /files/<entity>/<project>/<run>/file_stream
  PUT  /upload/<anything>           the pre-signed upload URLs this server hands out; artifact files
                                    and manifests are handed out with upload headers (Content-MD5,
                                    Content-Type) as a storage bucket's signed URLs are, and a PUT
                                    whose Content-MD5 is not its body's is answered 400
  POST /sdk/otel/...                client telemetry: 404, as a server without it
  GET  /_state                      everything received, as JSON: runs, requests, uploads, and
                                    "artifacts" by id (type, name, aliases, digest, client ids,
                                    entity/project/run, metadata, state, create/commit request
                                    counts, the files' declared MD5s and received bytes, the
                                    uploaded wandb_manifest.json and the digest it was declared with)
  POST /_fail                       {"status": 503, "count": 3, "path_prefix": "/files"}: answer the next
                                    `count` matching requests with `status` (fault injection);
                                    with "operation": "CommitArtifact" only that GraphQL operation
                                    matches, and with "after": true it is carried out first and only
                                    its answer is lost (what a client sees when a reply times out)

Artifacts are answered as a W&B server does: CreateArtifact with a clientID seen before gives
that artifact again, with its state (W&B maps client ids to artifacts: wandb-core's
ClientIDMapping query), and with enableDigestDeduplication a committed artifact of the same
collection and digest is answered COMMITTED, so the client uploads nothing.

Authentication: every request but the uploads must carry HTTP Basic "api:<key>"; the key's sha256 is
kept (never the key), and a key of "bad" + anything answers 401.
"""
import argparse
import base64
import gzip
import hashlib
import json
import os
import re
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ENTITY = "recorder"


def parse_json_line(line):
    # wandb writes NaN/Infinity as bare tokens; Python's json reads them.
    return json.loads(line)


class State:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.data = {
            "runs": {},  # "<entity>/<project>/<run>" -> run record
            "requests": [],  # [method, path, operationName] in arrival order
            "unknown_operations": [],
            "auth_key_sha256": [],
            "artifacts": {},  # artifact id -> what CreateArtifact and the uploads carried
            "uploads": {},  # upload path -> {"size", "sha256"}
        }
        self.failures = []  # [{"status", "count", "path_prefix"}]
        if path and os.path.exists(path):
            with open(path) as f:
                self.data = json.load(f)

    def save(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.path)

    def run(self, entity, project, name):
        key = f"{entity}/{project}/{name}"
        runs = self.data["runs"]
        if key not in runs:
            runs[key] = {
                "entity": entity,
                "project": project,
                "name": name,
                "id": base64.b64encode(f"Run:v1:{name}:{project}:{entity}".encode()).decode(),
                "upserts": [],
                "config": None,
                "display_name": None,
                "tags": None,
                "notes": None,
                # file_stream files: name -> {"lines": {offset: line}, "received": [offsets in order]}
                "files": {},
                "summary": None,
                "uploaded": [],
                "complete": False,
                "exitcode": None,
                "file_stream_requests": 0,
                "run_files_requested": [],
            }
        return runs[key]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None
    port = 0

    def log_message(self, fmt, *args):  # quiet: tests read /_state
        pass

    # -- plumbing --------------------------------------------------------------------------
    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        return data

    def reply(self, status, payload=None, raw=None):
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def injected_failure(self, operation=None, after=False):
        with self.state.lock:
            for failure in self.state.failures:
                if (failure["count"] > 0 and self.path.startswith(failure.get("path_prefix", "/"))
                        and failure.get("operation", operation) == operation
                        and bool(failure.get("after", False)) == after):
                    failure["count"] -= 1
                    return failure["status"]
        return None

    def authorized(self):
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, key = base64.b64decode(header[6:]).decode().partition(":")
        except Exception:
            return False
        if user != "api" or key.startswith("bad"):
            return False
        digest = hashlib.sha256(key.encode()).hexdigest()
        with self.state.lock:
            if digest not in self.state.data["auth_key_sha256"]:
                self.state.data["auth_key_sha256"].append(digest)
        return True

    def record_request(self, operation=None):
        with self.state.lock:
            self.state.data["requests"].append([self.command, self.path, operation])

    # -- HTTP verbs ------------------------------------------------------------------------
    def do_GET(self):
        if self.path == "/_state":
            with self.state.lock:
                return self.reply(200, self.state.data)
        if self.path == "/healthz":
            return self.reply(200, {"ok": True})
        self.reply(404, {"error": "not found"})

    def do_PUT(self):
        data = self.body()
        if not self.path.startswith("/upload/"):
            return self.reply(404, {"error": "not found"})
        status = self.injected_failure()
        if status:
            return self.reply(status, {"error": "injected"})
        self.record_request()
        md5 = self.headers.get("Content-MD5")
        if md5 is not None and md5 != base64.b64encode(hashlib.md5(data).digest()).decode():
            return self.reply(400, {"error": "BadDigest: the Content-MD5 header is not the body's"})
        with self.state.lock:
            self.state.data["uploads"][self.path[len("/upload/"):]] = {
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "text": data.decode("utf-8", "replace") if len(data) < 65536 else None,
            }
            if self.path.startswith("/upload/artifact/"):
                self.artifact_upload(self.path[len("/upload/"):], data)
            self.state.save()
        self.reply(200, {})

    def do_POST(self):
        data = self.body()
        if self.path == "/_fail":
            with self.state.lock:
                self.state.failures.append(json.loads(data))
            return self.reply(200, {})
        if self.path.startswith("/sdk/otel"):
            return self.reply(404, {"error": "not found"})
        status = self.injected_failure()
        if status:
            return self.reply(status, {"error": "injected"})
        if not self.authorized():
            self.record_request("unauthorized")
            return self.reply(401, {"errors": [{"message": "user is not logged in"}]})
        if self.path.rstrip("/") == "/graphql":
            return self.graphql(json.loads(data))
        match = re.fullmatch(r"/files/([^/]+)/([^/]+)/([^/]+)/file_stream", self.path)
        if match:
            return self.file_stream(*match.groups(), json.loads(data))
        self.reply(404, {"error": "not found"})

    # -- file_stream -----------------------------------------------------------------------
    def file_stream(self, entity, project, name, payload):
        self.record_request("file_stream")
        with self.state.lock:
            run = self.state.run(entity, project, name)
            run["file_stream_requests"] += 1
            for file_name, chunk in (payload.get("files") or {}).items():
                offset = int(chunk.get("offset", 0))
                content = chunk.get("content") or []
                if file_name == "wandb-summary.json":
                    if content:
                        run["summary"] = parse_json_line(content[-1])
                    continue
                record = run["files"].setdefault(file_name, {"lines": {}, "received": []})
                for i, line in enumerate(content):
                    record["lines"][str(offset + i)] = line
                    record["received"].append(offset + i)
            for uploaded in payload.get("uploaded") or []:
                if uploaded not in run["uploaded"]:
                    run["uploaded"].append(uploaded)
            if payload.get("complete"):
                run["complete"] = True
                run["exitcode"] = payload.get("exitcode")
            self.state.save()
        self.reply(200, {"exitcode": None, "limits": {}})

    # -- GraphQL ---------------------------------------------------------------------------
    def graphql(self, request):
        operation = request.get("operationName") or ""
        if not operation:  # the SDK's Python client names the operation only in the query text
            named = re.search(r"\b(?:query|mutation)\s+(\w+)", request.get("query") or "")
            operation = named.group(1) if named else ""
        variables = request.get("variables") or {}
        self.record_request(operation)
        handler = getattr(self, "op_" + operation, None)
        if handler is None:
            with self.state.lock:
                self.state.data["unknown_operations"].append(operation)
            return self.reply(200, {"data": {}})
        status = self.injected_failure(operation)
        if status:
            return self.reply(status, {"error": "injected"})
        with self.state.lock:
            result = handler(variables)
            self.state.save()
        status = self.injected_failure(operation, after=True)
        if status:
            return self.reply(status, {"error": "injected after the operation was carried out"})
        self.reply(200, {"data": result})

    def op_Viewer(self, variables):
        return {
            "viewer": {
                "id": "VXNlcjox",
                "entity": ENTITY,
                "username": ENTITY,
                "email": "recorder@localhost",
                "admin": False,
                "flags": "{}",
                "teams": {"edges": []},
            }
        }

    def op_ServerFeaturesQuery(self, variables):
        return {"serverInfo": {"features": []}}

    def op_OrganizationCoreWeaveOrganizationID(self, variables):
        return {}

    def op_ArtifactType(self, variables):
        return {"project": None}

    def bucket(self, run):
        history = run["files"].get("wandb-history.jsonl", {"lines": {}})
        events = run["files"].get("wandb-events.jsonl", {"lines": {}})
        output = run["files"].get("output.log", {"lines": {}})
        rows = [history["lines"][k] for k in sorted(history["lines"], key=int)]
        return {
            "id": run["id"],
            "name": run["name"],
            "displayName": run["display_name"],
            "description": run["notes"],
            "config": json.dumps(run["config"] or {}),
            "sweepName": None,
            "project": {"id": "UHJvamVjdDox", "name": run["project"],
                        "entity": {"id": "RW50aXR5OjE=", "name": run["entity"]}},
            "historyLineCount": len(history["lines"]),
            "eventsLineCount": len(events["lines"]),
            "logLineCount": len(output["lines"]),
            "historyTail": json.dumps(rows[-1:]),
            "eventsTail": "[]",
            "summaryMetrics": json.dumps(run["summary"] or {}),
            "wandbConfig": json.dumps({"t": 1}),
            "tags": run["tags"] or [],
            "notes": run["notes"],
        }

    def op_UpsertBucket(self, variables):
        entity = variables.get("entity") or ENTITY
        project = variables.get("project") or "uncategorized"
        name = variables.get("name") or uuid.uuid4().hex[:8]
        run = self.state.run(entity, project, name)
        inserted = not run["upserts"]
        run["upserts"].append({k: v for k, v in variables.items() if v is not None})
        if variables.get("config") is not None:
            run["config"] = json.loads(variables["config"])
        for field, key in (("displayName", "display_name"), ("tags", "tags"), ("notes", "notes")):
            if variables.get(field) is not None:
                run[key] = variables[field]
        return {"upsertBucket": {"bucket": self.bucket(run), "inserted": inserted}}

    def op_RunResumeStatus(self, variables):
        entity = variables.get("entity") or ENTITY
        project = variables.get("project") or "uncategorized"
        key = f"{entity}/{project}/{variables.get('name')}"
        run = self.state.data["runs"].get(key)
        return {
            "model": {
                "id": "UHJvamVjdDox",
                "name": project,
                "entity": {"id": "RW50aXR5OjE=", "name": entity},
                "bucket": self.bucket(run) if run else None,
            }
        }

    def op_CreateRunFiles(self, variables):
        entity = variables.get("entity") or ENTITY
        project, name = variables.get("project"), variables.get("run")
        run = self.state.run(entity, project, name)
        files = variables.get("files") or []
        run["run_files_requested"].extend(files)
        return {
            "createRunFiles": {
                "runID": run["id"],
                "uploadHeaders": [],
                "files": [
                    {"name": f, "uploadUrl": f"http://127.0.0.1:{self.port}/upload/{entity}/{project}/{name}/{f}"}
                    for f in files
                ],
            }
        }

    # -- artifacts (wandb-core's ArtifactSaver: CreateArtifact, CreateArtifactManifest,
    # CreateArtifactFiles, PUT of each file, CreateArtifactManifest with the digest, PUT of
    # wandb_manifest.json, CommitArtifact) -------------------------------------------------
    def op_CreateArtifact(self, variables):
        spec = variables.get("input") or variables
        artifacts = self.state.data["artifacts"]
        client_id = spec.get("clientID")
        # The clientID names one artifact version: asking again gives the same one (a client
        # retrying after a lost answer). A committed version of the same collection with the same
        # digest is answered COMMITTED (digest deduplication): the client uploads nothing.
        found = next((i for i, a in artifacts.items() if client_id and a["client_id"] == client_id),
                     None)
        if found is None and spec.get("enableDigestDeduplication"):
            found = next((i for i, a in artifacts.items()
                          if a["state"] == "COMMITTED" and a["name"] == spec.get("artifactCollectionName")
                          and a["project"] == spec.get("projectName") and a["digest"] == spec.get("digest")),
                         None)
        if found is None:
            found = base64.b64encode(f"Artifact:{uuid.uuid4().hex}".encode()).decode()
            artifacts[found] = {
                "type": spec.get("artifactTypeName"),
                "name": spec.get("artifactCollectionName"),
                "aliases": [a.get("alias") for a in spec.get("aliases") or []],
                "digest": spec.get("digest"),
                "digest_algorithm": spec.get("digestAlgorithm"),
                "client_id": client_id,
                "sequence_client_id": spec.get("sequenceClientID"),
                "entity": spec.get("entityName"),
                "project": spec.get("projectName"),
                "run": spec.get("runName"),
                "description": spec.get("description"),
                "metadata": json.loads(spec["metadata"]) if spec.get("metadata") else None,
                "state": "PENDING",
                "committed": False,
                "create_requests": 0,
                "commit_requests": 0,
                "declared_files": {},  # name -> md5 from CreateArtifactFiles
                "files": {},  # name -> what its PUT carried
                "manifest": None,  # wandb_manifest.json as uploaded (parsed)
                "manifest_digest": None,  # CreateArtifactManifest's digest (base64 MD5 of it)
                "manifest_md5": None,  # base64 MD5 of the uploaded manifest bytes
                "base_artifact_ids": [],  # CreateArtifactManifest's baseArtifactID, per request
                "create_input": spec,  # CreateArtifact's input as received
            }
        artifact = artifacts[found]
        artifact["create_requests"] += 1
        # The collection's latest committed version before this one (the client's base).
        latest = None
        for other_id, other in artifacts.items():
            if other_id == found:
                break
            if (other["state"] == "COMMITTED" and other["name"] == artifact["name"]
                    and other["project"] == artifact["project"]):
                latest = {"id": other_id}
        return {
            "createArtifact": {
                "artifact": {
                    "id": found,
                    "state": artifact["state"],
                    "digest": artifact["digest"],
                    "artifactSequence": {"id": "QXJ0aWZhY3RTZXF1ZW5jZTox", "latestArtifact": latest},
                }
            }
        }

    def op_CreateArtifactManifest(self, variables):
        spec = variables.get("input") or variables
        artifact_id = spec.get("artifactID")
        artifact = self.state.data["artifacts"].get(artifact_id)
        if artifact is not None and spec.get("digest"):
            artifact["manifest_digest"] = spec.get("digest")
        if artifact is not None:
            artifact["base_artifact_ids"].append(spec.get("baseArtifactID"))
        manifest_id = base64.b64encode(f"ArtifactManifest:{artifact_id}".encode()).decode()
        path = f"artifact/{artifact_id}/wandb_manifest.json"
        file = {"id": manifest_id}
        if variables.get("includeUpload", True):
            headers = [f"Content-MD5:{spec['digest']}"] if spec.get("digest") else []
            file.update({"uploadUrl": f"http://127.0.0.1:{self.port}/upload/{path}",
                         "uploadHeaders": headers})
        return {"createArtifactManifest": {"artifactManifest": {"id": manifest_id, "file": file}}}

    def op_CreateArtifactFiles(self, variables):
        spec = variables.get("input") or variables
        edges = []
        for f in spec.get("artifactFiles") or []:
            artifact_id = f.get("artifactID")
            path = f"artifact/{artifact_id}/{f.get('name')}"
            artifact = self.state.data["artifacts"].get(artifact_id)
            if artifact is not None:
                artifact["declared_files"][f.get("name")] = f.get("md5")
            edges.append({
                "node": {
                    "storagePath": path,
                    "uploadUrl": f"http://127.0.0.1:{self.port}/upload/{path}",
                    # As a storage bucket's signed URL: the PUT must carry the file's MD5.
                    "uploadHeaders": [f"Content-MD5:{f.get('md5')}",
                                      "Content-Type:application/octet-stream"],
                    "uploadMultipartUrls": None,
                    "artifact": {"id": artifact_id},
                }
            })
        return {"createArtifactFiles": {"files": {"edges": edges}}}

    def op_CommitArtifact(self, variables):
        artifact_id = variables.get("artifactID") or (variables.get("input") or {}).get("artifactID")
        artifact = self.state.data["artifacts"].get(artifact_id)
        if artifact is not None:
            artifact["committed"] = True
            artifact["state"] = "COMMITTED"
            artifact["commit_requests"] += 1
        return {"commitArtifact": {"artifact": {"id": artifact_id, "digest": artifact and artifact["digest"]}}}

    def artifact_upload(self, path, data):
        """A PUT to artifact/<id>/<name>: the file's bytes, kept with the artifact."""
        artifact_id, _, name = path[len("artifact/"):].partition("/")
        artifact = self.state.data["artifacts"].get(artifact_id)
        if artifact is None:
            return
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        if name == "wandb_manifest.json":
            artifact["manifest"] = json.loads(data)
            artifact["manifest_md5"] = md5
            artifact["manifest_content_md5_header"] = self.headers.get("Content-MD5")
            return
        artifact["files"][name] = {
            "md5": md5,
            "content_md5_header": self.headers.get("Content-MD5"),
            "content_type": self.headers.get("Content-Type"),
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "base64": base64.b64encode(data).decode() if len(data) < 1 << 20 else None,
        }


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up (wandb-core closing idle keep-alive connections) is not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--state-file")
    args = parser.parse_args()

    Handler.state = State(args.state_file)
    server = Server(("127.0.0.1", args.port), Handler)
    Handler.port = server.server_address[1]
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(Handler.port))
    os.replace(tmp, args.port_file)
    server.serve_forever()
    with Handler.state.lock:
        Handler.state.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
