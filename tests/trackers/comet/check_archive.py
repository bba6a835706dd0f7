"""Checks an offline Comet archive with the pinned comet_ml wheel (3.58.8, in .venv) and prints
what it holds as one JSON object.

The checks are the uploader's own (comet_ml/offline.py, OfflineSender): the archive is unpacked
with unzip_offline_archive, experiment.json is validated with the sender's experiment-file
validator, and every messages.json line with the validator the sender applies to its type
(with the 1-based line number injected as "offset", as the sender does); metric and parameter
lines are then parsed with MetricMessage/ParameterMessage.from_message_dict, and every
file_upload's file_path must be a member. Besides: every member is stored (not compressed) and
the archive is flat (--deflated-ok accepts compressed members too: the uploader reads them, see
comet-formats.md §1.2, but accel's own archives are stored). Validation errors are collected in
"errors" (empty when the archive is good).

Usage: check_archive.py [--deflated-ok] ARCHIVE.zip
"""

import io
import json
import os
import shutil
import sys
import zipfile

os.environ.setdefault("COMET_ERROR_TRACKING_ENABLE", "false")
os.environ.setdefault("COMET_DISABLE_ANNOUNCEMENT", "true")

from comet_ml.messages import MetricMessage, ParameterMessage  # noqa: E402
from comet_ml.offline import OfflineSender, unzip_offline_archive  # noqa: E402
from PIL import Image  # noqa: E402

VALIDATORS = {  # message type -> the OfflineSender attribute that validates its payload
    "metric_msg": "metric_msg_validator",
    "parameter_msg": "parameter_msg_validator",
    "file_upload": "upload_msg_validator",
    "log_other": "log_other_message_validator",
    "html": "html_msg_validator",
    "htmlOverride": "html_override_msg_validator",
}


def upload_content(path, upload_type):
    with open(path, "rb") as f:
        data = f.read()
    if upload_type == "visualization":
        image = Image.open(io.BytesIO(data))
        return {"format": image.format, "mode": image.mode, "size": list(image.size),
                "pixels": list(image.tobytes())}
    if upload_type == "histogram3d":
        return json.loads(data)
    return data.decode("utf-8")


def main(archive, deflated_ok=False):
    out = {"errors": [], "members": [], "metrics": [], "parameters": [], "others": [],
           "html": [], "uploads": []}
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            out["members"].append(info.filename)
            if info.compress_type != zipfile.ZIP_STORED and not deflated_ok:
                out["errors"].append(f"member {info.filename} is not stored")
            if "/" in info.filename or info.is_dir():
                out["errors"].append(f"member {info.filename} is not flat")

    sender = object.__new__(OfflineSender)  # the uploader's validators, without a connection
    sender._init_message_validators()
    directory = unzip_offline_archive(archive)
    try:
        with open(os.path.join(directory, "experiment.json"), encoding="utf-8") as f:
            experiment = json.load(f)
        try:
            sender.experiment_file_validator.validate(experiment)
        except Exception as e:  # noqa: BLE001 - reported, not raised
            out["errors"].append(f"experiment.json: {e}")
        out["experiment"] = experiment
        with open(os.path.join(directory, "messages.json"), encoding="utf-8") as f:
            lines = f.readlines()
        for offset, line in enumerate(lines, start=1):
            message = json.loads(line)
            kind, payload = message["type"], message["payload"]
            if set(message) != {"type", "payload"} or kind not in VALIDATORS:
                out["errors"].append(f"line {offset}: unexpected message {line.strip()}")
                continue
            if kind == "metric_msg":
                payload["offset"] = offset
            try:
                getattr(sender, VALIDATORS[kind]).validate(payload)
            except Exception as e:  # noqa: BLE001
                out["errors"].append(f"line {offset} ({kind}): {e}")
                continue
            if kind == "metric_msg":
                metric = MetricMessage.from_message_dict(payload)
                out["metrics"].append([metric.metric["metricName"], metric.metric["metricValue"],
                                       metric.metric["step"], metric.metric.get("epoch")])
            elif kind == "parameter_msg":
                parameter = ParameterMessage.from_message_dict(payload)
                param = parameter.param if parameter.param else parameter.params
                out["parameters"].append([param["paramName"], param["paramValue"],
                                          param["step"], param.get("source")])
            elif kind == "log_other":
                out["others"].append([payload["key"], payload["value"]])
            elif kind in ("html", "htmlOverride"):
                out["html"].append([kind, payload[kind]])
            else:
                path = os.path.join(directory, payload["file_path"])
                if not os.path.isfile(path):
                    out["errors"].append(f"line {offset}: no member {payload['file_path']}")
                    continue
                out["uploads"].append({"upload_type": payload["upload_type"],
                                       "additional_params": payload["additional_params"],
                                       "content": upload_content(path, payload["upload_type"])})
            if payload.get("message_id") != offset:
                out["errors"].append(f"line {offset}: message_id {payload.get('message_id')}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[-1], deflated_ok="--deflated-ok" in sys.argv[1:-1])
