"""The Accelerate side of scripts/bench/train_digits: the same digits training step (MLP 64-128-128-10
with dropout, AdamW, cross-entropy, batch size per process, shuffled data) through
accelerate.Accelerator. Run with `accelerate launch --num_processes N --cpu peer.py --data ...`.
The main process prints one JSON line with the timings.
"""
import argparse
import json
import struct
import time

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def load(path):
    with open(path, "rb") as f:
        magic = f.read(8)
        assert magic == b"ACCDIG01", f"{path} is not a digits export"
        rows, features = struct.unpack("<II", f.read(8))
        pixels = np.frombuffer(f.read(rows * features * 4), dtype="<f4").reshape(rows, features)
        labels = np.frombuffer(f.read(rows), dtype=np.uint8)
    return torch.from_numpy(pixels.copy()), torch.from_numpy(labels.astype(np.int64))


class Net(nn.Module):
    def __init__(self, hidden=128, dropout=0.1):
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, 10)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        h = self.dropout(torch.relu(self.fc2(h)))
        return self.fc3(h)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    pixels, labels = load(args.data)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    train = order[int(len(labels) * 0.2):]
    accelerator = Accelerator(cpu=True)
    model = Net()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(pixels[train], labels[train]), batch_size=args.batch_size, shuffle=True)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    model.train()
    step, start = 0, None
    total = args.warmup + args.steps
    while step < total:
        for data, target in loader:
            if step == args.warmup:
                accelerator.wait_for_everyone()
                start = time.perf_counter()
            with accelerator.accumulate(model):
                loss = nn.functional.cross_entropy(model(data), target)
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
            step += 1
            if step == total:
                break
    accelerator.wait_for_everyone()
    seconds = time.perf_counter() - start
    if accelerator.is_main_process:
        print(json.dumps({"mode": "accelerate", "processes": accelerator.num_processes, "steps": args.steps,
                          "seconds": seconds, "steps_per_s": args.steps / seconds,
                          "step_us": seconds * 1e6 / args.steps}), flush=True)


if __name__ == "__main__":
    main()
