"""Reads a TensorBoard run directory with TensorBoard's own Python readers and prints what they see as
JSON (used by the tensorboard tests to check our files against the real reader).

usage: read_events.py <run_dir>

Output keys:
  files        events files found
  records      number of records (TensorBoard's record reader, which checks every CRC)
  reencode_mismatches  records whose bytes differ from Event.FromString(r).SerializeToString()
  file_version first event's file_version
  scalars      {tag: [[step, value], ...]}  (EventAccumulator.Scalars; NaN/Inf as strings)
  scalar_tensors {tag: [[step, value], ...]} (new-style scalar tensors: plugin "scalars")
  texts        {tag: [[step, text], ...]}
  images       {tag: [{step, width, height, channels, pixels(hex)}]} decoded with PIL
  histograms   {tag: [{step, min, max, num, sum, sum_squares, bucket_limit, bucket}]}
  hparams      {tag: HParamsPluginData as a dict} from PluginTagToContent("hparams")
  custom_scalars_layout  the run's latest Custom Scalars Layout as a dict, or null
  hparams_yaml the parsed hparams.yaml, or null
"""
import glob
import json
import math
import os
import sys

from google.protobuf import json_format
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub import errors
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util


def number(x):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def read_records(path):
    """Every record, through TensorBoard's record reader (it raises DataLossError on a bad CRC)."""
    reader = PyRecordReader_New(path)
    records = []
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            break
        records.append(reader.record())
    return records


def plugin_tags(acc, plugin):
    try:
        return acc.PluginTagToContent(plugin)
    except KeyError:  # no tag of that plugin in this run
        return {}


def main(run_dir):
    out = {"files": sorted(os.path.basename(f) for f in glob.glob(os.path.join(run_dir, "*tfevents*")))}
    records, mismatches, first_version = 0, 0, None
    for name in out["files"]:
        for raw in read_records(os.path.join(run_dir, name)):
            event = event_pb2.Event.FromString(raw)
            if first_version is None:
                first_version = event.file_version
            records += 1
            if event.SerializeToString() != raw:
                mismatches += 1
    out.update(records=records, reencode_mismatches=mismatches, file_version=first_version)

    acc = event_accumulator.EventAccumulator(run_dir, size_guidance={
        event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0, event_accumulator.HISTOGRAMS: 0,
        event_accumulator.TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()
    out["scalars"] = {t: [[e.step, number(e.value)] for e in acc.Scalars(t)] for t in tags["scalars"]}
    out["texts"], out["scalar_tensors"] = {}, {}
    text_tags = plugin_tags(acc, "text")
    scalar_tags = plugin_tags(acc, "scalars")
    for t in tags["tensors"]:
        if t in text_tags:
            out["texts"][t] = [[e.step, tensor_util.make_ndarray(e.tensor_proto).item().decode("utf-8")]
                               for e in acc.Tensors(t)]
        elif t in scalar_tags:
            out["scalar_tensors"][t] = [[e.step, number(float(tensor_util.make_ndarray(e.tensor_proto)))]
                                        for e in acc.Tensors(t)]
    out["images"] = {}
    for t in tags["images"]:
        from io import BytesIO
        from PIL import Image
        items = []
        for e in acc.Images(t):
            img = Image.open(BytesIO(e.encoded_image_string))
            img.load()
            items.append({"step": e.step, "width": e.width, "height": e.height, "mode": img.mode,
                          "size": list(img.size), "pixels": img.tobytes().hex()})
        out["images"][t] = items
    out["histograms"] = {}
    for t in tags["histograms"]:
        out["histograms"][t] = [{"step": e.step, "min": e.histogram_value.min, "max": e.histogram_value.max,
                                 "num": e.histogram_value.num, "sum": e.histogram_value.sum,
                                 "sum_squares": e.histogram_value.sum_squares,
                                 "bucket_limit": list(e.histogram_value.bucket_limit),
                                 "bucket": list(e.histogram_value.bucket)} for e in acc.Histograms(t)]
    out["hparams"] = {}
    for tag, content in plugin_tags(acc, "hparams").items():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        out["hparams"][tag] = json_format.MessageToDict(data, preserving_proto_field_name=True)
    out["custom_scalars_layout"] = None
    if "custom_scalars__config__" in tags["tensors"]:
        from tensorboard.plugins.custom_scalar import layout_pb2
        latest = acc.Tensors("custom_scalars__config__")[-1]
        layout = layout_pb2.Layout.FromString(tensor_util.make_ndarray(latest.tensor_proto).item())
        out["custom_scalars_layout"] = json_format.MessageToDict(layout, preserving_proto_field_name=True)
    yaml_path = os.path.join(run_dir, "hparams.yaml")
    out["hparams_yaml"] = None
    if os.path.exists(yaml_path):
        import yaml
        with open(yaml_path) as f:
            out["hparams_yaml"] = yaml.safe_load(f)
    json.dump(out, sys.stdout, allow_nan=False, default=str)


if __name__ == "__main__":
    main(sys.argv[1])
