"""Timing helpers of the performance checks: ratios measured in one run, interleaved."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def paired_ratio(fast: Callable[[], object], slow: Callable[[], object], rounds: int = 9) -> float:
    """Median of ``slow / fast`` over interleaved pairs: both see the same machine load."""
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
    a(), b()  # warm-up
    return statistics.median(a() / b() for _ in range(rounds))
