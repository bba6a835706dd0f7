"""Exports scikit-learn's copy of the UCI digits data set (1,797 8x8 images) for train_digits.

Layout (little-endian): magic b"ACCDIG01", uint32 rows, uint32 features, rows*features float32 pixels
in [0, 1] (the 0..16 intensities divided by 16), then rows uint8 labels 0..9.
Usage: python export_digits.py OUTPUT
"""
import struct
import sys

import numpy as np
from sklearn.datasets import load_digits


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: export_digits.py OUTPUT", file=sys.stderr)
        return 2
    digits = load_digits()
    pixels = (digits.data.astype(np.float32) / 16.0).astype("<f4")
    labels = digits.target.astype(np.uint8)
    rows, features = pixels.shape
    with open(sys.argv[1], "wb") as out:
        out.write(b"ACCDIG01")
        out.write(struct.pack("<II", rows, features))
        out.write(pixels.tobytes(order="C"))
        out.write(labels.tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
