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


def paired_ratio(fast: Callable[[], object], slow: Callable[[], object], rounds: int = 9) -> float:
    """Median of ``slow / fast`` over interleaved pairs: both see the same machine load."""
    steady()
    fast(), slow()  # warm-up
    ratios = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fast()
        t1 = time.perf_counter()
        slow()
        t2 = time.perf_counter()
        ratios.append((t2 - t1) / (t1 - t0))
    return statistics.median(ratios)


def paired_times(a: Callable[[], float], b: Callable[[], float], rounds: int = 9) -> float:
    """Median of ``a() / b()`` where each call returns its own measured seconds (for phases
    such as a backward pass that need set-up outside the timed region), interleaved."""
    steady()
    a(), b()  # warm-up
    return statistics.median(a() / b() for _ in range(rounds))
