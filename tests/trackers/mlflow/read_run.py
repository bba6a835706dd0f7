"""Reads an MLflow run back with the mlflow Python client and prints it as one JSON line.

Usage: read_run.py TRACKING_URI RUN_ID [RUN_ID ...]
Output: {RUN_ID: run, ...} where run is {"info": {...}, "params": {...}, "tags": {...},
         "metrics": {key: [[step, value, timestamp], ...] in server order},
         "artifacts": {path: {"size": n, "text": str (utf-8 files), "npy_shape": [...],
                              "npy_dtype": str, "npy_sum": int, "png_shape": [...]}}}
Credentials come from MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD as usual.
"""
import json
import math
import os
import sys
import tempfile

import mlflow
from mlflow.tracking import MlflowClient


def finite(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def walk(client, run_id, path, out, tmp):
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            walk(client, run_id, item.path, out, tmp)
            continue
        local = client.download_artifacts(run_id, item.path, tmp)
        entry = {"size": item.file_size}
        with open(local, "rb") as f:
            data = f.read()
        if item.path.endswith(".npy"):
            import numpy as np
            array = np.load(local)
            entry.update(npy_shape=list(array.shape), npy_dtype=str(array.dtype),
                         npy_sum=int(array.astype("int64").sum()))
        elif item.path.endswith(".png"):
            from PIL import Image
            import numpy as np
            with Image.open(local) as image:
                array = np.asarray(image)
                entry.update(png_shape=list(array.shape), png_mode=image.mode,
                             png_sum=int(array.astype("int64").sum()))
        else:
            try:
                entry["text"] = data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        out[item.path] = entry


def read(client, run_id):
    run = client.get_run(run_id)
    result = {
        "info": {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "experiment_name": client.get_experiment(run.info.experiment_id).name,
            "run_name": run.info.run_name,
            "status": run.info.status,
            "start_time": run.info.start_time,
            "end_time": run.info.end_time,
            "artifact_uri": run.info.artifact_uri,
        },
        "params": run.data.params,
        "tags": run.data.tags,
        "metrics": {},
        "artifacts": {},
    }
    for key in run.data.metrics:
        history = client.get_metric_history(run_id, key)
        result["metrics"][key] = [[m.step, finite(m.value), m.timestamp] for m in history]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            walk(client, run_id, None, result["artifacts"], tmp)
        except Exception as e:  # artifacts not served: report, do not fail
            result["artifacts_error"] = str(e)
    return result


def main():
    uri = sys.argv[1]
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    runs = {run_id: read(client, run_id) for run_id in sys.argv[2:]}
    print()
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
