"""What a recording_comet_server.py log says the uploader sent, as one JSON object, in the shape
check_archive.py prints (metrics, parameters, others, html, uploads), plus "errors": the error
texts of update-status requests (the uploader's signal that it dropped or rejected something).

Usage: upload_summary.py LOG
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


def main(log):
    out = {"errors": [], "metrics": [], "parameters": [], "others": [], "html": [],
           "uploads": [], "paths": [], "experiment": {}}
    with open(log, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    for r in records:
        path, body = r["path"], r.get("json") or {}
        out["paths"].append(r["method"] + " " + path)
        if path.endswith("/write/experiment/update-status") and "error" in body:
            out["errors"].append(body["error"])
        elif path.endswith("/logger/add/run"):
            out["experiment"] = {"experimentKey": body.get("experimentKey"),
                                 "projectName": body.get("projectName"),
                                 "teamName": body.get("teamName")}
        elif path.endswith("/tags/add-tags-to-experiment"):
            out["experiment"]["tags"] = body.get("addedTags")
        elif path.endswith("/batch/logger/experiment/metric"):
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
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
