"""Training speed and the embedded-default accuracy bar (a benchmark script, not a test).

    python scripts/bench_training.py [--records results/digits] [--out results/bench/training.json]

1. Training throughput (samples/s, median over timed steps after warm-up) of
   ``ms_resnet18`` + ``dta`` at T=6, batch 8, 32x32 (the paper's network), and
   of the width-16 embedded-default network at T=4, batch 64, 8x8.
2. The accuracy bar: every attention method must reach >= 90 % test accuracy
   on ``digits`` with its default preset. Read from ``dta bench`` records when
   they exist for this commit's presets, else trained here.

Writes one JSON file (atomically), ``"schema": "dta-bench/training-throughput/v1"``
(so ``dta report`` / ``dta compare`` on ``results/`` skip it: it is not a result
record), and prints a summary; exits 1 if the bar fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
from spikingjelly.activation_based import functional

from dta.attention import list_attention
from dta.io import atomic_write_text
from dta.models import create_model, repeat_static
from dta.records import TRAINING_SCHEMA, environment, git_commit, read_records

ACCURACY_BAR = 0.90


def train_throughput(*, width: int, T: int, batch: int, side: int, in_channels: int,
                     steps: int = 8, warmup: int = 2) -> dict:
    torch.manual_seed(0)
    net = create_model("ms_resnet18", attention="dta", T=T, num_classes=10,
                       in_channels=in_channels, width=width)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x = repeat_static(torch.rand(batch, in_channels, side, side), T)
    y = torch.randint(0, 10, (batch,))
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(x).mean(0), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        functional.reset_net(net)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"model": "ms_resnet18", "attention": "dta", "width": width, "T": T, "batch": batch,
            "input": f"{in_channels}x{side}x{side}", "median_step_s": median,
            "samples_per_s": batch / median, "steps": steps}


def accuracy_bar(records_path: str | None) -> dict:
    records, problems = read_records([records_path]) if records_path else ([], [])
    by_method = {r["method"]: r for r in records if r["dataset"] == "digits" and r["seed"] == 0}
    source = f"records in {records_path}"
    if set(list_attention()) - set(by_method):
        from dta.bench import train_and_measure

        source = "trained by this script"
        by_method = {}
        for method in list_attention():
            record, _, _ = train_and_measure("digits", method, runs="runs/bench-training",
                                             progress=False)
            by_method[method] = record
    accuracies = {m: by_method[m]["accuracy"] for m in list_attention()}
    return {"bar": ACCURACY_BAR, "source": source, "accuracy": accuracies,
            "passed": all(a >= ACCURACY_BAR for a in accuracies.values()), "problems": problems}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", default="results/digits",
                        help="dta bench records to read the accuracy bar from")
    parser.add_argument("--out", default="results/bench/training.json")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    result = {
        "schema": TRAINING_SCHEMA,
        "commit": git_commit(),
        "environment": environment(),
        "throughput": [
            train_throughput(width=64, T=6, batch=8, side=32, in_channels=3),
            train_throughput(width=16, T=4, batch=64, side=8, in_channels=1),
        ],
        "accuracy_bar": accuracy_bar(args.records),
    }
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    for t in result["throughput"]:
        print(f"train throughput {t['model']}+dta width {t['width']} T={t['T']} batch {t['batch']} "
              f"{t['input']}: {t['samples_per_s']:.1f} samples/s ({t['median_step_s'] * 1e3:.0f} ms/step)")
    bar = result["accuracy_bar"]
    for method, acc in bar["accuracy"].items():
        print(f"digits {method:5s} accuracy {acc:.4f} {'ok' if acc >= ACCURACY_BAR else 'BELOW BAR'}")
    print(f"accuracy bar >= {ACCURACY_BAR:.0%} ({bar['source']}): "
          f"{'passed' if bar['passed'] else 'FAILED'}; written to {args.out}")
    return 0 if bar["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
