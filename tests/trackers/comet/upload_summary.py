"""What a recording_comet_server.py log says the uploader (or an online experiment) sent, as one
JSON object, in the shape check_archive.py prints (metrics, parameters, others, html, uploads),
plus "errors": the error texts of update-status requests (the uploader's signal that it dropped or
rejected something), "status": the is_alive of every status-report/update in order, "paths": every
request as "METHOD path" in order, and "refused": how many requests were answered 401.
Metrics are in arrival order; "metric_batches" counts the metric batch requests and
"metric_batch_gzip" whether every one was gzip.

Usage: upload_summary.py LOG   (the server's GET /_summary gives the same)
"""

import base64
import io
import json
import sys

from PIL import Image


def upload_content(raw, upload_type):
    if upload_type == "visualization":
        image = Image.open(io.BytesIO(raw))
        return {"format": image.format, "mode": image.mode, "size": list(image.size),
                "pixels": list(image.tobytes())}
    if upload_type == "histogram3d":
        return json.loads(raw)
    return raw.decode("utf-8")


def summarize(records):
    out = {"errors": [], "metrics": [], "parameters": [], "others": [], "html": [],
           "uploads": [], "paths": [], "experiment": {}, "status": [], "refused": 0,
           "metric_batches": 0, "metric_batch_gzip": True}
    for r in records:
        path, body = r["path"], r.get("json") or {}
        out["paths"].append(r["method"] + " " + path)
        if r.get("refused"):
            out["refused"] += 1
            continue
        if path.endswith("/status-report/update"):
            out["status"].append(body.get("is_alive"))
        elif path.endswith("/write/experiment/update-status") and "error" in body:
            out["errors"].append(body["error"])
        elif path.endswith("/logger/add/run"):
            out["experiment"] = {"experimentKey": body.get("experimentKey"),
                                 "projectName": body.get("projectName"),
                                 "teamName": body.get("teamName")}
        elif path.endswith("/tags/add-tags-to-experiment"):
            out["experiment"]["tags"] = body.get("addedTags")
        elif path.endswith("/batch/logger/experiment/metric"):
            out["metric_batches"] += 1
            out["metric_batch_gzip"] = out["metric_batch_gzip"] and r.get("gzip", False)
            out["metrics"] += [[v["metricName"], v["metricValue"], v.get("step"), v.get("epoch")]
                               for v in body["values"]]
        elif path.endswith("/batch/logger/experiment/parameter"):
            out["parameters"] += [[v["parameterName"], v["parameterValue"], v.get("step"),
                                   v.get("source")] for v in body["values"]]
        elif path.endswith("/write/experiment/log-other"):
            out["others"].append([body["key"], body["value"]])
        elif path.endswith("/write/experiment/html"):
            out["html"].append(["htmlOverride" if body.get("override") else "html", body["html"]])
        elif "parts" in r:
            upload_type = r["query"].get("type") or (
                "visualization" if path.endswith("/visualizations/upload") else "asset")
            out["uploads"].append({"path": path, "upload_type": upload_type, "query": r["query"],
                                   "content": upload_content(base64.b64decode(r["parts"]["file"]),
                                                             upload_type)})
    return out


def main(log):
    with open(log, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    print(json.dumps(summarize(records)))


if __name__ == "__main__":
    main(sys.argv[1])
