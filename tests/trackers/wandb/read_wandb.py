"""Strict reader of a W&B transaction log (run-<id>.wandb), independent of accel's writer.

Checks the 7-byte header, that no chunk crosses a 32 KiB block (counted from file offset 0), that
block tails shorter than a chunk header are zero, every chunk's IEEE CRC-32 (zlib.crc32 of type
byte + payload), the FULL/FIRST/MIDDLE/LAST order, and that the file ends after a whole record.
Each record is parsed with the wandb wheel's own compiled wandb_internal.Record class; prints
{"records": [...], "chunks": [[offset, type, length], ...]} as JSON (records as MessageToDict).
"""
import json
import struct
import sys
import zlib

from google.protobuf.json_format import MessageToDict
from wandb.proto import wandb_internal_pb2

BLOCK = 32768
HEADER = b":W&B\xe1\xbe\x00"


def main(path):
    data = open(path, "rb").read()
    assert data[:7] == HEADER, f"bad header {data[:7]!r}"
    pos, pending, records, chunks = 7, None, [], []
    while pos < len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:
            assert data[pos:pos + left] == b"\0" * left, f"non-zero block tail at {pos}"
            pos += left
            continue
        assert pos + 7 <= len(data), f"torn chunk header at {pos}"
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        assert 7 + length <= left, f"chunk at {pos} crosses a block boundary"
        payload = data[pos + 7:pos + 7 + length]
        assert len(payload) == length, f"torn chunk at {pos}"
        assert zlib.crc32(bytes([kind]) + payload) == crc, f"bad crc at {pos}"
        chunks.append([pos, kind, length])
        if kind == 1:
            assert pending is None, f"FULL inside a split record at {pos}"
            pending = payload
        elif kind == 2:
            assert pending is None, f"FIRST inside a split record at {pos}"
            pending = bytearray(payload)
        else:
            assert kind in (3, 4) and isinstance(pending, bytearray), f"bad chunk {kind} at {pos}"
            pending += payload
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(bytes(pending))
            records.append(MessageToDict(record, preserving_proto_field_name=True))
            pending = None
    assert pending is None, "the file ends inside a record"
    print(json.dumps({"records": records, "chunks": chunks}))


if __name__ == "__main__":
    main(sys.argv[1])
