"""Timing helpers of the performance checks: ratios measured in one run, interleaved."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
from bench.benchmarks import steady_allocator  # noqa: E402 - the asv suite's, one copy


def steady() -> bool:
    """Time under the asv suite's allocator setting: glibc keeps freed memory, so no call
    pays page faults to get its buffers back (they slow the plain forward, the denominator
    of every ratio, by an amount that varies from process to process). Idempotent."""
    return steady_allocator()


def paired_times(a: Callable[[], float], b: Callable[[], float], rounds: int = 9) -> float:
    """Median of ``a() / b()`` where each call returns its own measured seconds (for phases
    such as a backward pass that need set-up outside the timed region), interleaved."""
    steady()
    a(), b()  # warm-up
    return statistics.median(a() / b() for _ in range(rounds))


def interleaved_ratios(base: Callable[[], object], others: dict[str, Callable[[], object]],
                       rounds: int = 9, block: int = 7) -> dict[str, float]:
    """Median of ``other / base`` over ``rounds`` pairs (``base`` then ``other``) for each of
    ``others``. The pairs come in blocks of ``block``, the variants taking turns block by
    block: every ratio is sampled across the whole run (the same machine load, so the
    differences between ratios are measured too), and within a block each call follows a
    call of the same pair, as in a loop of one (an untimed pair starts each block: the
    previous block's variant leaves other memory behind)."""
    steady()
    ratios: dict[str, list[float]] = {name: [] for name in others}
    while any(len(r) < rounds for r in ratios.values()):
        for name, fn in others.items():
            base(), fn()  # untimed: settle after the previous variant
            for _ in range(min(block, rounds - len(ratios[name]))):
                t0 = time.perf_counter()
                base()
                t1 = time.perf_counter()
                fn()
                t2 = time.perf_counter()
                ratios[name].append((t2 - t1) / (t1 - t0))
    return {name: statistics.median(r) for name, r in ratios.items()}


def machine() -> str:
    """The CPU the ratios were measured on (model name, family/model numbers, logical CPUs) with
    torch's version: the ratios depend on it (a CPU with slower convolutions makes the
    same fixed overhead a smaller share of the plain forward)."""
    import os
    import platform

    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model") and key not in fields:
                    fields[key] = value.strip()
                elif not line.strip() and fields:
                    break  # the first processor's block is enough
    except OSError:
        pass
    import torch

    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return f"{name}, {os.cpu_count()} CPUs, torch {torch.__version__}"  # (logical CPUs)


#: lines the checks report, printed at the end of the run by conftest's terminal summary
#: (pytest captures a passing test's own output)
SUMMARY: list[str] = []


def report(line: str) -> None:
    """Print ``line`` (seen with ``pytest -s``) and keep it for the run's closing summary."""
    print("\n" + line)
    SUMMARY.append(line)
