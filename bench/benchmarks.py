"""airspeed velocity suite: accuracy, energy, speed and memory of every attention method.

``EmbeddedDefault`` and ``Equivalents`` train each (method, T) once per commit in
``setup_cache`` (deterministic: same seed, same preset as ``dta bench``) and track
what it measured; asv treats higher as worse, so accuracy is tracked as the error
rate. Their progress goes to stderr, which asv shows live under ``asv run -v`` only
(on success it discards a ``setup_cache``'s output, ``--show-stderr`` included).
``Forward`` times one eval forward and tracks the memory torch allocates for it.

Benchmark versions are pinned (``.version``): refactors keep the history; bump a
version only when a benchmark's meaning changes.
"""

import contextlib
import ctypes
import os
import re
import sys
import tempfile
import time

import torch
from spikingjelly.activation_based import functional

from dta.attention import list_attention
from dta.bench import train_and_measure
from dta.measure import profile
from dta.models import create_model, repeat_static
from dta.report import MEMORY_MODEL

METHODS = list_attention()
DATASET = "digits"
SCRATCH_PREFIX = "dta-asv-"


def progress(message: str) -> None:
    """One progress line on stderr, flushed at once (asv reads it through a pipe)."""
    print(f"dta-asv: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def scratch_dir():
    """A temporary folder (``dta-asv-*``) for runs and data, removed however the block ends."""
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX) as work:
        yield work


def train_all(label: str, jobs: list[tuple[str, int | None]], work: str, **options) -> dict:
    """Train and measure each ``(method, T)`` of ``jobs`` on the embedded default under
    ``work``, one progress line per job on stderr. Returns ``{"method-T": record}``;
    ``options`` go to :func:`dta.bench.train_and_measure` (``qnn_T``, preset overrides)."""
    data_root = os.environ.get("DTA_DATA_ROOT", os.path.join(work, "data"))
    records = {}
    start = time.perf_counter()
    for i, (method, T) in enumerate(jobs, 1):
        at = time.perf_counter()
        steps = f" T={T}" if T is not None else ""  # None: the preset's (ann: 1)
        progress(f"{label}: {i}/{len(jobs)} training {method}{steps} on {DATASET} ...")
        record, _, _ = train_and_measure(DATASET, method, T=T, seed=0,
                                         runs=os.path.join(work, "runs"), data_root=data_root,
                                         **options)
        records[f"{method}-T{record['T']}"] = record
        progress(f"{label}: {i}/{len(jobs)} {method} T={record['T']} done in "
                 f"{time.perf_counter() - at:.0f} s (accuracy {record['accuracy']:.3f}; "
                 f"{time.perf_counter() - start:.0f} s so far)")
    return records


def _tracked_values(record: dict) -> dict:
    return {
        "error_rate": 1.0 - record["accuracy"],
        "energy_uj": record["energy"]["uj"],
        "acs": record["ops"]["ac"],
        "macs": record["ops"]["mac"],
        "firing_rate": record["firing"]["rate"],
        "energy_memory_uj": record["energy"]["by_model"][MEMORY_MODEL],
    }


def _tracked(key: str, unit: str, version: str = "1"):
    """A ``track_*`` benchmark reading ``key`` of the cached results (pinned version)."""

    def track(self, results, method, T):
        return results[f"{method}-T{T}"][key]

    track.unit = unit
    track.version = version
    return track


class EmbeddedDefault:
    """Each method trained on the embedded default (digits preset), then measured."""

    params = (METHODS, [4])
    param_names = ["method", "T"]
    timeout = 3600
    preset_overrides: dict = {}  # e.g. {"epochs": 1}: the digits preset as dta bench runs it

    def setup_cache(self):
        torch.set_num_threads(min(2, os.cpu_count() or 1))
        jobs = [(method, T) for method in self.params[0] for T in self.params[1]]
        with scratch_dir() as work:
            records = train_all(type(self).__name__, jobs, work, **self.preset_overrides)
        return {key: _tracked_values(record) for key, record in records.items()}

    track_error_rate = _tracked("error_rate", "error rate (1 - test accuracy)")
    track_energy_uj = _tracked("energy_uj", "uJ per inference (horowitz45-fp32)")
    track_acs = _tracked("acs", "effective ACs per inference")
    track_macs = _tracked("macs", "effective MACs per inference")
    track_firing_rate = _tracked("firing_rate", "spikes per neuron per step")
    track_energy_memory_uj = _tracked("energy_memory_uj",
                                      f"uJ per inference, compute + memory ({MEMORY_MODEL})")


class Equivalents:
    """The networks the SNNs would replace: ``ann`` (ReLU, T=1, trained with the same recipe)
    and ``qnn`` (its activations quantized to ceil(log2(T+1)) bits), tracked like the methods."""

    params = (["ann", "qnn"], [4])
    param_names = ["method", "T"]
    timeout = 1800

    def setup_cache(self):
        from dta.bench import qnn_records

        torch.set_num_threads(min(2, os.cpu_count() or 1))
        with scratch_dir() as work:
            ann = train_all("Equivalents", [("ann", None)], work,
                            qnn_T=tuple(self.params[1]))["ann-T1"]
        # the ANN (T=1) is the reference of every T; each qnn row belongs to one T
        results = {f"ann-T{T}": _tracked_values(ann) for T in self.params[1]}
        results.update({f"qnn-T{q['T']}": _tracked_values(q) for q in qnn_records(ann)})
        return results

    track_error_rate = _tracked("error_rate", "error rate (1 - test accuracy)")
    track_energy_uj = _tracked("energy_uj", "uJ per inference (horowitz45-fp32)")
    track_energy_memory_uj = _tracked("energy_memory_uj",
                                      f"uJ per inference, compute + memory ({MEMORY_MODEL})")


def _default_net(method, T, device="cpu"):
    """The width-16 embedded-default network (eval) and 16 random 8x8 digits over T:
    ``[T, 16, 1, 8, 8]``."""
    torch.manual_seed(0)
    model = create_model("ms_resnet18", attention=method, T=T, num_classes=10, in_channels=1,
                         width=16).eval().to(device)
    return model, repeat_static(torch.rand(16, 1, 8, 8), T).to(device)


# Kineto's own lines on fd 2, printed at every profile (and a GPU probe on a CPU-only box).
_KINETO_CHATTER = re.compile(r"profiler_start|profiler_stop|gpuGetDeviceCount failed")


@contextlib.contextmanager
def _without_kineto_chatter():
    """Keep the profiler's per-call lines out of ``--show-stderr``; other stderr lines stay."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode(errors="replace").splitlines():
                if line.strip() and not _KINETO_CHATTER.search(line):
                    print(line, file=sys.stderr)


def cpu_forward_peak_bytes(run) -> int:
    """Peak bytes torch's CPU allocator holds during ``run()`` above the level before it.

    Replays the profiler's allocation/free events in time order; deterministic for a
    deterministic ``run`` (the process's RSS, the torch import included, is not seen)."""
    from torch.profiler import ProfilerActivity, profile

    with _without_kineto_chatter():
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            run()
    cpu = torch.autograd.DeviceType.CPU
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]" and e.device_type() == cpu)
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def steady_allocator() -> bool:
    """Make glibc keep freed memory instead of returning it to the OS (no-op elsewhere).

    With its defaults, some processes hand each forward's buffers back and fault them in
    again on the next call: ~900 page faults and +15-25 % per forward in those processes
    only (ma, T=4: 11.8 ms vs 9.7 ms with ~10 faults, measured here), which made
    identical commits differ. Returns whether the setting took."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    # 32 MiB: glibc's largest mmap threshold on 64-bit (larger values are refused)
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


# Built once per process: asv re-runs ``setup`` before every timing sample
# (asv_runner >= 0.3, asv#966), and rebuilding the net each time would time a fresh heap.
_NETS: dict = {}


class Forward:
    """One eval forward of the width-16 embedded-default network on 16 digits
    (``[T, 16, 1, 8, 8]``), on one CPU thread.

    Conditions chosen so that identical code times the same in every process:
    one thread (on a shared 2-core machine a 2-thread forward stalls whenever a
    neighbour holds a core: medians of 57-170 ms instead of 5-6 ms measured here) and
    :func:`steady_allocator` (no per-process page-fault mode).
    """

    params = (METHODS, [2, 4])
    param_names = ["method", "T"]

    def setup(self, method, T):
        torch.set_num_threads(1)
        if (method, T) not in _NETS:
            steady_allocator()
            _NETS[method, T] = _default_net(method, T)
            self._forward(*_NETS[method, T])  # one-off kernel selection: not timed
        self.model, self.x = _NETS[method, T]

    @staticmethod
    def _forward(model, x):
        with torch.no_grad():
            model(x)
        functional.reset_net(model)

    def time_forward(self, method, T):
        """Seconds per eval forward (wall clock, one thread)."""
        self._forward(self.model, self.x)

    time_forward.version = "2"  # 2: one thread (1 timed two)
    # Each sample is one forward; several short processes (rounds) per commit, which
    # ``asv continuous`` interleaves between the two commits (A B B A ...), so a
    # neighbour's burst of load lands on both sides instead of deciding the ratio.
    time_forward.number = 1
    time_forward.repeat = (10, 50, 1.0)
    time_forward.warmup_time = 0.3
    time_forward.rounds = 4

    def time_profile(self, method, T):
        """Seconds per ``dta.measure.profile`` call on the same forward (counting, traffic and
        the totals under every energy model): the profiler's own cost, tracked like the
        forward's, so a commit that slows it shows up here (``make perf`` times the ratio)."""
        profile(self.model, self.x)

    time_profile.version = "1"
    time_profile.number = 1
    time_profile.repeat = (10, 50, 1.0)
    time_profile.warmup_time = 0.3
    time_profile.rounds = 4

    def track_forward_peak_mb(self, method, T):
        """Peak memory of one forward (see the unit)."""
        return cpu_forward_peak_bytes(lambda: self._forward(self.model, self.x)) / 1e6

    track_forward_peak_mb.unit = "MB (1e6 bytes) torch's CPU allocator holds during a forward"
    track_forward_peak_mb.version = "1"


class ForwardCUDA:
    """The same forward on a CUDA GPU, timed by asv's wall-clock timer (valid because the
    call ends with ``torch.cuda.synchronize``). On a machine without CUDA, ``setup`` raises
    NotImplementedError: asv shows n/a (an empty chart) and prints the reason with
    ``--show-stderr``."""

    params = (METHODS, [4])
    param_names = ["method", "T"]

    def setup(self, method, T):
        if not torch.cuda.is_available():
            raise NotImplementedError("no CUDA GPU on this machine: GPU benchmarks skipped")
        self.model, self.x = _default_net(method, T, "cuda")
        self._forward()  # warm-up: CUDA context and kernel selection

    def _forward(self):
        with torch.no_grad():
            self.model(self.x)
        torch.cuda.synchronize()
        functional.reset_net(self.model)

    def time_forward(self, method, T):
        """Seconds per eval forward on the GPU; n/a on a machine without CUDA."""
        self._forward()

    time_forward.version = "1"
    time_forward.pretty_name = "ForwardCUDA.time_forward (CUDA only: n/a without a GPU)"


class ForwardMemoryCUDA:
    """Peak GPU memory of the same forward; n/a (setup raises NotImplementedError) on a
    machine without CUDA. Its own class: ``make gpu-check`` runs every ``ForwardCUDA``
    benchmark and records their values as seconds."""

    params = (METHODS, [4])
    param_names = ["method", "T"]
    setup = ForwardCUDA.setup
    _forward = ForwardCUDA._forward

    def track_forward_peak_mb(self, method, T):
        """MB the CUDA caching allocator hands out during one forward above what was
        allocated before it; n/a without CUDA."""
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        self._forward()
        return (torch.cuda.max_memory_allocated() - before) / 1e6

    track_forward_peak_mb.unit = "MB (1e6 bytes) the CUDA allocator hands out during a forward"
    track_forward_peak_mb.version = "1"
    track_forward_peak_mb.pretty_name = ("ForwardMemoryCUDA.track_forward_peak_mb "
                                         "(CUDA only: n/a without a GPU)")
