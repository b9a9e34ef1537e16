"""Forward latency across time steps and batch sizes.

On a GPU: CUDA events around the forward, after warm-up, with
``torch.cuda.synchronize`` before each measurement and the end event
synchronised before reading it. On the CPU: ``time.perf_counter``. The
timer is chosen by the device; ``reset_net`` runs after every forward
(outside the timed region). Results record the device name and torch
version next to median and spread, so numbers from different machines are
never compared by accident.
"""

from __future__ import annotations

import platform
import statistics
import time
from typing import Callable, Iterable

import pandas as pd
import torch
from torch import nn


class CpuTimer:
    """Wall-clock seconds of ``fn()`` with ``time.perf_counter``."""

    kind = "perf_counter"

    def __init__(self, device: torch.device):
        self.device = device

    def time(self, fn: Callable[[], object]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start


class CudaEventTimer:
    """Seconds of ``fn()`` between two CUDA events on the current stream."""

    kind = "cuda_event"

    def __init__(self, device: torch.device):
        self.device = device

    def time(self, fn: Callable[[], object]) -> float:
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(self.device)  # nothing queued before us is timed
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3  # ms -> s


def select_timer(device: torch.device | str):
    """The timer for ``device``: CUDA events on ``cuda``, perf_counter on ``cpu``."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"latency: device {device} requested but CUDA is not available on this "
                "machine; use --device cpu")
        return CudaEventTimer(device)
    if device.type == "cpu":
        return CpuTimer(device)
    raise ValueError(f"latency: unsupported device type {device.type!r}; use 'cpu' or 'cuda'")


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def time_forward(model: nn.Module, x: torch.Tensor, *, warmup: int = 3, repeats: int = 10,
                 timer=None) -> list[float]:
    """Seconds per forward of ``model(x)`` (eval, no_grad), ``repeats`` times after ``warmup``."""
    from spikingjelly.activation_based import functional

    if warmup < 0 or repeats < 1:
        raise ValueError(f"latency: need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}")
    timer = timer or select_timer(x.device)
    was_training = model.training
    model.eval()

    def forward():
        model(x)

    times = []
    try:
        with torch.no_grad():
            for i in range(warmup + repeats):
                seconds = timer.time(forward)
                functional.reset_net(model)
                if i >= warmup:
                    times.append(seconds)
    finally:
        functional.reset_net(model)
        model.train(was_training)
    return times


def _quantile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def measure_latency(
    factory: Callable[[int], nn.Module],
    sample_shape: tuple[int, ...],
    *,
    Ts: Iterable[int] = (1, 2, 4, 6),
    batch_sizes: Iterable[int] = (1, 8),
    device: str | torch.device = "cpu",
    warmup: int = 3,
    repeats: int = 10,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Latency of ``factory(T)`` for every T and batch size.

    ``sample_shape`` is one input frame, e.g. ``(3, 32, 32)``; inputs are
    ``[T, B, *sample_shape]`` uniform in [0, 1) with a fixed seed. Returns one
    row per (T, batch): median, p10, p90, IQR, std and min in ms, ms per time
    step, throughput in samples per second, device, timer and torch version.
    """
    device = torch.device(device)
    timer = select_timer(device)
    Ts, batch_sizes = list(Ts), list(batch_sizes)
    if not Ts or not batch_sizes or min(Ts) < 1 or min(batch_sizes) < 1:
        raise ValueError(f"latency: T values and batch sizes must be >= 1, got {Ts}, {batch_sizes}")
    rows = []
    jobs = [(T, b) for T in Ts for b in batch_sizes]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="latency", unit="config", leave=False)
    generator = torch.Generator().manual_seed(seed)
    for T, batch in jobs:
        model = factory(T).to(device)
        x = torch.rand((T, batch, *sample_shape), generator=generator).to(device)
        times = time_forward(model, x, warmup=warmup, repeats=repeats, timer=timer)
        ms = [t * 1e3 for t in times]
        median = statistics.median(ms)
        rows.append({
            "T": T, "batch": batch, "median_ms": median,
            "p10_ms": _quantile(ms, 0.10), "p90_ms": _quantile(ms, 0.90),
            "iqr_ms": _quantile(ms, 0.75) - _quantile(ms, 0.25),
            "std_ms": statistics.stdev(ms) if len(ms) > 1 else 0.0, "min_ms": min(ms),
            "ms_per_step": median / T, "throughput_sps": batch / (median / 1e3),
            "repeats": repeats, "warmup": warmup, "device": str(device),
            "device_name": device_name(device), "timer": timer.kind,
            "torch": torch.__version__, "threads": torch.get_num_threads(),
        })
    return pd.DataFrame(rows)
