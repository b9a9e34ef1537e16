#!/usr/bin/env python
"""``make gpu-check``: GPU latency across time steps, training-step cost, torch.compile, asv.

On a machine with CUDA (one GPU, at most about 8 minutes), for every attention
method at full size (``ms_resnet18``, width 64, 3x32x32, 10 classes):

1. forward latency with CUDA events at T = 1, 2, 4, 6, 8 and batch 1 and 64
   (:func:`dta.measure.latency.measure_latency`: median and spread after warm-up);
2. training-step time and peak memory at T=6, batch 64, in float32 and with AMP
   (bf16 where the GPU supports it, else fp16 with a gradient scaler) plus
   channels_last: one step of ``dta.train.train_one_epoch``, the code ``dta train`` runs;
3. the asv CUDA benchmarks (``bench/benchmarks.py``: ``ForwardCUDA``);
4. the effect of ``torch.compile`` on the forward and on both training steps,
   method by method (``dta`` and ``none`` first) while the time budget lasts.

A time budget guards every step: what does not fit is skipped and named in the
output. Writes ``results/gpu/<device>.json``, ``<device>.md`` (tables) and
``<device>-latency.png`` (latency against T per method; ``dta report`` draws
it from the JSON too).

Without CUDA (or with ``--dry-run``) the same code runs on the CPU at tiny size
(width 4, 8x8, T=1,2, a few repeats; ``compile`` with the light ``aot_eager``
backend, asv for one method), says so loudly, marks the JSON ``"dry_run": true``
and writes to a temporary folder unless ``--out`` is given: ``results/gpu/``
only ever holds real GPU runs.

    python scripts/gpu_check.py                 # GPU: results/gpu/<device>.json
    python scripts/gpu_check.py --dry-run       # CPU rehearsal, about a minute
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from spikingjelly.activation_based import functional

from dta.attention import list_attention
from dta.data import get_dataset_info
from dta.gpu_report import GPU_CHECK_SCHEMA, device_slug, to_markdown, validate_gpu_check, \
    write_gpu_report
from dta.io import atomic_write_text
from dta.measure.latency import device_name, measure_latency, select_timer
from dta.models import create_model
from dta.records import environment, git_commit
from dta.train import Dist, TrainConfig, compile_model, grad_scaler, to_channels_last, \
    train_one_epoch

ROOT = Path(__file__).resolve().parent.parent
#: compile these first: the paper's method and the plain network
COMPILE_FIRST = ("dta", "none")
#: share of the budget after which each section starts nothing new (compile takes the rest)
SECTION_END = {"latency": 0.40, "train_step": 0.60, "asv": 0.78, "compile": 1.0}
BANNER = "=" * 78


@dataclass
class Plan:
    """What to measure and how long it may take (seconds)."""

    dry_run: bool
    device: str
    methods: list[str]
    width: int = 64
    image: int = 32
    in_channels: int = 3
    classes: int = 10
    Ts: tuple[int, ...] = (1, 2, 4, 6, 8)
    batches: tuple[int, ...] = (1, 64)
    train_T: int = 6
    train_batch: int = 64
    warmup: int = 5
    repeats: int = 20
    train_warmup: int = 3
    train_repeats: int = 10
    amp: str = "bf16"
    compile_backend: str = "inductor"
    compile_methods: list[str] = field(default_factory=list)
    asv: bool = True
    asv_methods: list[str] | None = None  # None: every method of the asv benchmark
    budget_s: float = 440.0
    # first guesses of one compile's cost, replaced by what the run measures
    compile_guess_s: dict = field(default_factory=lambda: {"forward": 60.0, "train_step": 120.0})


def full_plan(device: str, methods: list[str], args) -> Plan:
    amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    ordered = [m for m in COMPILE_FIRST if m in methods] + [m for m in methods
                                                            if m not in COMPILE_FIRST]
    return Plan(dry_run=False, device=device, methods=methods, amp=amp,
                compile_backend=args.compile_backend or "inductor",
                compile_methods=args.compile_methods or ordered,
                asv=not args.no_asv, budget_s=args.budget_s or 440.0)


def dry_plan(methods: list[str], args) -> Plan:
    first = [m for m in COMPILE_FIRST if m in methods][:1] or methods[:1]
    return Plan(dry_run=True, device="cpu", methods=methods, width=4, image=8, Ts=(1, 2),
                batches=(1, 4), train_T=2, train_batch=4, warmup=1, repeats=3, train_warmup=1,
                train_repeats=3, amp="bf16", compile_backend=args.compile_backend or "aot_eager",
                compile_methods=args.compile_methods or first, asv=not args.no_asv,
                asv_methods=methods[:1], budget_s=args.budget_s or 100.0,
                compile_guess_s={"forward": 10.0, "train_step": 20.0})


class Clock:
    """Seconds since the start, against the budget."""

    def __init__(self, budget_s: float):
        self.start, self.budget = time.perf_counter(), budget_s

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def before(self, section: str, need_s: float = 0.0) -> bool:
        """Whether something needing ``need_s`` seconds still fits before ``section`` ends."""
        return self.elapsed() + need_s <= SECTION_END[section] * self.budget


def _clean(value):
    """JSON-safe: NaN and inf become null, numpy scalars plain numbers."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _stats(seconds: list[float]) -> dict:
    ms = sorted(t * 1e3 for t in seconds)
    q = (lambda p: ms[0] if len(ms) == 1 else
         statistics.quantiles(ms, n=100, method="inclusive")[int(p * 100) - 1])
    return {"median_ms": statistics.median(ms), "p10_ms": q(0.10), "p90_ms": q(0.90),
            "min_ms": ms[0], "repeats": len(ms)}


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


class Run:
    """The JSON being built, written atomically after every section."""

    def __init__(self, plan: Plan, out_dir: Path):
        self.plan, self.out_dir = plan, out_dir
        device = torch.device(plan.device)
        self.device = device
        name = device_name(device)
        self.stem = device_slug(name) if not plan.dry_run else \
            f"dry-run-cpu-{device_slug(platform.machine() or 'cpu')}"
        self.json_path = out_dir / f"{self.stem}.json"
        cuda = device.type == "cuda"
        config = asdict(plan)
        config.update({
            "timer": select_timer(device).kind, "cuda": torch.version.cuda if cuda else None,
            "cudnn": torch.backends.cudnn.version() if cuda else None,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "bf16_supported": torch.cuda.is_bf16_supported() if cuda else True,
            "gpu_memory_gib": (torch.cuda.get_device_properties(device).total_memory / 2**30
                               if cuda else None),
            "optimizer": "SGD lr 0.1, momentum 0.9, weight decay 5e-5 (the cifar preset's)",
        })
        self.data = {
            "schema": GPU_CHECK_SCHEMA, "dry_run": plan.dry_run, "device": str(device),
            "device_name": name, "complete": False, "commit": git_commit(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": config, "environment": environment(), "latency": [], "train_step": [],
            "compile": [], "asv": {"status": "not run"}, "skipped": [], "errors": [],
            "elapsed_s": 0.0,
        }

    def skip(self, section: str, method: str | None, reason: str) -> None:
        self.data["skipped"].append({"section": section, "method": method, "reason": reason})
        print(f"  skipped {section} {method or ''}: {reason}")

    def error(self, what: str, err: BaseException) -> None:
        message = f"{what}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        self.data["errors"].append(message)
        print(f"  ERROR {message}", file=sys.stderr)
        _free(self.device)

    def save(self, clock: Clock) -> None:
        self.data["elapsed_s"] = round(clock.elapsed(), 1)
        data = json.loads(json.dumps(self.data, default=_clean), parse_constant=lambda c: None)
        validate_gpu_check(data, str(self.json_path))
        atomic_write_text(self.json_path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def build(plan: Plan, method: str, T: int) -> torch.nn.Module:
    """The full-size (or dry-run) network; ValueError where the method cannot run at ``T``."""
    torch.manual_seed(0)
    return create_model("ms_resnet18", attention=method, T=T, num_classes=plan.classes,
                        in_channels=plan.in_channels, width=plan.width)


# -- 1. forward latency ----------------------------------------------------------------------------


def latency_rows(plan: Plan, model: torch.nn.Module, T: int, batches) -> list[dict]:
    frame = measure_latency(lambda t: model, (plan.in_channels, plan.image, plan.image), Ts=[T],
                            batch_sizes=batches, device=plan.device, warmup=plan.warmup,
                            repeats=plan.repeats, seed=0)
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def section_latency(run: Run, clock: Clock) -> None:
    plan = run.plan
    for method in plan.methods:
        for T in plan.Ts:
            if not clock.before("latency"):
                run.skip("latency", method, f"T={T}: time budget")
                continue
            try:
                model = build(plan, method, T)
            except ValueError as err:  # e.g. gac needs T >= 2
                run.skip("latency", method, f"T={T}: {err}")
                continue
            try:
                for row in latency_rows(plan, model, T, plan.batches):
                    run.data["latency"].append({"method": method, "compiled": False, **row})
            except Exception as err:  # noqa: BLE001  (out of memory, driver errors: go on)
                run.error(f"latency {method} T={T}", err)
            del model
            _free(run.device)
        done = [r for r in run.data["latency"] if r["method"] == method]
        if done:
            print(f"  latency {method}: " + ", ".join(
                f"T={r['T']}/b{r['batch']} {r['median_ms']:.2f} ms" for r in done))


# -- 2. training step ------------------------------------------------------------------------------


def settings(plan: Plan) -> dict[str, dict]:
    return {"float32": {"amp": "off", "channels_last": False},
            f"{plan.amp}+channels_last": {"amp": plan.amp, "channels_last": True}}


def train_step(plan: Plan, method: str, *, amp: str, channels_last: bool,
               compiled: bool) -> dict:
    """Median and spread of one ``train_one_epoch`` step (one batch), peak memory, first call."""
    device = torch.device(plan.device)
    model = build(plan, method, plan.train_T).to(device)
    if channels_last:
        to_channels_last(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-5)
    scaler = grad_scaler(amp, device)
    net = compile_model(model, plan.compile_backend) if compiled else model
    cfg = TrainConfig(dataset="cifar10", attention=method, T=plan.train_T,
                      batch_size=plan.train_batch, amp=amp, channels_last=channels_last,
                      compile=compiled, compile_backend=plan.compile_backend, log_every=1,
                      progress=False)
    info = get_dataset_info("cifar10")  # 10 classes, static images: repeated over T
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(plan.train_batch, plan.in_channels, plan.image, plan.image, generator=generator)
    y = torch.randint(plan.classes, (plan.train_batch,), generator=generator)
    if device.type == "cuda":  # as the training DataLoader hands them over (pin_memory)
        x, y = x.pin_memory(), y.pin_memory()
    batch = [(x, y)]
    timer = select_timer(device)

    def step():
        train_one_epoch(net, batch, optimizer, cfg, info, device, Dist(), epoch=0, n_batches=1,
                        scaler=scaler)

    start = time.perf_counter()
    step()  # compiles when compiled; cuDNN picks its algorithms
    _free(device)
    first_s = time.perf_counter() - start
    for _ in range(max(plan.train_warmup - 1, 0)):
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = [timer.time(step) for _ in range(plan.train_repeats)]
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    stats = _stats(times)
    del net, model, optimizer
    _free(device)
    return {"method": method, "amp": amp, "channels_last": channels_last, "compiled": compiled,
            "T": plan.train_T, "batch": plan.train_batch, **stats,
            "samples_per_s": plan.train_batch / (stats["median_ms"] / 1e3),
            "peak_mem_mib": peak, "first_call_s": first_s}


def section_train(run: Run, clock: Clock) -> None:
    plan = run.plan
    for method in plan.methods:
        for name, setting in settings(plan).items():
            if not clock.before("train_step"):
                run.skip("train_step", method, f"{name}: time budget")
                continue
            try:
                row = train_step(plan, method, compiled=False, **setting)
            except ValueError as err:
                run.skip("train_step", method, f"{name}: {err}")
                continue
            except Exception as err:  # noqa: BLE001
                run.error(f"train_step {method} {name}", err)
                continue
            run.data["train_step"].append({"setting": name, **row})
            peak = "" if row["peak_mem_mib"] is None else f", peak {row['peak_mem_mib']:,.0f} MiB"
            print(f"  train step {method} {name}: {row['median_ms']:.1f} ms{peak}")


# -- 3. asv ----------------------------------------------------------------------------------------


def _run_bounded(cmd: list[str], *, env: dict, timeout: float) -> tuple[int | None, str]:
    """Run ``cmd`` in its own process group; kill the whole group at ``timeout``."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # asv's benchmark processes with it
        out, _ = proc.communicate()
        return None, out


def section_asv(run: Run, clock: Clock) -> None:
    """``asv run --python=same`` of the CUDA benchmarks; their results copied into the JSON."""
    plan = run.plan
    if not plan.asv:
        run.data["asv"] = {"status": "not run", "note": "--no-asv"}
        return
    # ``python -m asv`` with this interpreter: works where asv was installed with
    # ``pip --target`` (no console script beside the interpreter), as on a lent GPU machine
    if importlib.util.find_spec("asv") is None:
        run.data["asv"] = {"status": "not run", "note": f"asv is not importable by {sys.executable}"}
        return
    asv = [sys.executable, "-m", "asv"]
    timeout = SECTION_END["asv"] * plan.budget_s - clock.elapsed()
    if timeout < 20:
        run.data["asv"] = {"status": "not run", "note": "time budget"}
        run.skip("asv", None, "time budget")
        return
    commit = git_commit(ROOT).replace("+dirty", "")
    if commit == "unknown":  # asv files its results under a commit
        run.data["asv"] = {"status": "not run", "note": f"{ROOT} is not a git checkout"}
        run.skip("asv", None, "not a git checkout")
        return
    machine = f"gpu-check-{run.stem}"
    from asv.config import Config

    config_args: list[str] = []
    results_dir = ROOT / Config.load(str(ROOT / "asv.conf.json")).results_dir
    # a private HOME: the machine description goes there, not into the user's ~/.asv-machine.json
    home = tempfile.mkdtemp(prefix="dta-asv-home-")
    scratch = None
    if plan.dry_run:
        # A rehearsal's results (every benchmark skipped) are not history: they go to a
        # temporary results folder, so no dry-run machine shows up in asv publish or
        # dta history of this repository.
        from asv import util as asv_util

        scratch = Path(tempfile.mkdtemp(prefix="dta-asv-dry-"))
        conf = asv_util.load_json(str(ROOT / "asv.conf.json"), js_comments=True)
        for key in ("repo", "benchmark_dir", "env_dir", "html_dir"):
            if key in conf:
                conf[key] = str((ROOT / conf[key]).resolve())
        results_dir = scratch / "results"
        conf["results_dir"] = str(results_dir)
        atomic_write_text(scratch / "asv.conf.json", json.dumps(conf, indent=1))
        config_args = ["--config", str(scratch / "asv.conf.json")]
    try:
        _asv_run_in(run, asv, machine, commit, home, timeout, config_args, results_dir)
    finally:
        for folder in (home, scratch):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)


def _asv_run_in(run: Run, asv: list[str], machine: str, commit: str, home: str,
                timeout: float, config_args: list[str], results_dir: Path) -> None:
    plan = run.plan
    env = {**os.environ, "HOME": home}
    if os.environ.get("PYTHONPATH"):  # asv drops PYTHONPATH in its benchmark processes and
        env["ASV_PYTHONPATH"] = os.environ["PYTHONPATH"]  # reads ASV_PYTHONPATH instead
    bench = "ForwardCUDA"
    if plan.asv_methods is not None:
        bench = r"ForwardCUDA\.time_forward\('(?:" + "|".join(plan.asv_methods) + r")'"
    cmd = [*asv, "run", *config_args, "--python=same", "--bench", bench, "--set-commit-hash",
           commit, "--machine", machine, "-a", "repeat=5", "--show-stderr"]
    entry = {"command": " ".join(cmd), "machine": machine, "commit": commit}
    try:
        code, _ = _run_bounded([*asv, "machine", *config_args, "--yes", "--machine", machine],
                               env=env, timeout=60)
        code, out = _run_bounded(cmd, env=env, timeout=timeout)
    except OSError as err:
        run.data["asv"] = {**entry, "status": "failed", "note": str(err)}
        return
    entry["log_tail"] = out[-3000:]
    if code is None:
        run.data["asv"] = {**entry, "status": "timeout", "note": f"killed after {timeout:.0f} s"}
        run.skip("asv", None, f"asv run killed after {timeout:.0f} s")
        return
    results = asv_results(machine, commit, results_dir)
    if plan.dry_run:
        entry["results_dir"] = "a temporary folder (dry run), removed after reading"
    ran = [r for r in results if r["seconds"] is not None]
    status = "ok" if code == 0 else f"asv exit code {code}"
    note = None
    if results and not ran:
        note = "every benchmark skipped (no CUDA: setup raises NotImplementedError)"
    run.data["asv"] = {**entry, "status": status, "note": note, "results": results}
    print(f"  asv: {status}; {len(ran)} of {len(results)} CUDA benchmarks timed"
          + (f" ({note})" if note else ""))


def asv_results(machine: str, commit: str, results_dir: Path) -> list[dict]:
    """The ForwardCUDA results asv saved in ``results_dir`` for ``machine`` at ``commit``
    (seconds, None if skipped)."""
    from asv import results as asv_results_module

    rows = []
    for result in asv_results_module.iter_results_for_machine_and_hash(
            str(results_dir), machine, commit):
        for key in result.get_all_result_keys():
            if "ForwardCUDA" not in key:
                continue
            params = result.get_result_params(key)
            values = result.get_result_value(key, params)
            for combo, value in zip(itertools.product(*params), values):
                rows.append({"benchmark": key, "params": [p.strip("'") for p in combo],
                             "seconds": _clean(value) if value is not None else None})
    return rows


# -- 4. torch.compile ------------------------------------------------------------------------------


def compiled_forward(plan: Plan, method: str, T: int, batch: int) -> tuple[dict, float]:
    """Latency row of the compiled network and the seconds its first (compiling) call took."""
    device = torch.device(plan.device)
    model = build(plan, method, T).to(device).eval()
    net = compile_model(model, plan.compile_backend)
    # the same shape and layout as measure_latency's input: no recompilation when timed
    x = torch.rand(T, batch, plan.in_channels, plan.image, plan.image).to(device)
    start = time.perf_counter()
    with torch.no_grad():
        net(x)
    _free(device)
    compile_s = time.perf_counter() - start
    functional.reset_net(model)
    (row,) = latency_rows(plan, net, T, [batch])
    del net, model
    _free(device)
    return row, compile_s


def _eager(run: Run, section: str, **match) -> dict | None:
    for row in run.data[section]:
        if not row.get("compiled") and all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def compile_jobs(plan: Plan) -> list[tuple[str, str, dict]]:
    jobs = []
    for method in plan.compile_methods:
        for batch in sorted(plan.batches, reverse=True):
            jobs.append((method, "forward", {"batch": batch}))
        for name in settings(plan):
            jobs.append((method, "train_step", {"setting": name}))
    return jobs


def section_compile(run: Run, clock: Clock) -> None:
    plan = run.plan
    measured: dict[str, float] = {}  # the longest job of each kind so far, seconds
    for method, what, job in compile_jobs(plan):
        guess = {**plan.compile_guess_s, **measured}
        label = f"{what} " + (f"batch {job['batch']}" if what == "forward" else job["setting"])
        if not clock.before("compile", 1.2 * guess[what]):
            run.skip("compile", method, f"{label}: time budget (a compile takes about "
                                        f"{guess[what]:.0f} s here)")
            continue
        torch._dynamo.reset()  # a fresh cache: no recompile limit reached across methods
        start = time.perf_counter()
        try:
            if what == "forward":
                T, batch = plan.train_T, job["batch"]
                row, compile_s = compiled_forward(plan, method, T, batch)
                eager = _eager(run, "latency", method=method, T=T, batch=batch)
                setting = "float32, eval"
            else:
                setting = job["setting"]
                row = train_step(plan, method, compiled=True, **settings(plan)[setting])
                compile_s = row["first_call_s"]
                T, batch = row["T"], row["batch"]
                eager = _eager(run, "train_step", method=method, setting=setting)
                row = {"setting": setting, **row}
        except ValueError as err:
            run.skip("compile", method, f"{label}: {err}")
            continue
        except Exception as err:  # noqa: BLE001  (a backend that fails here: record, go on)
            run.error(f"compile {method} {label}", err)
            continue
        measured[what] = max(measured.get(what, 0.0), time.perf_counter() - start)
        eager_ms = eager["median_ms"] if eager else None
        run.data["compile"].append({
            "method": method, "what": what, "setting": setting, "T": T, "batch": batch,
            "eager_ms": eager_ms, "compiled_ms": row["median_ms"],
            "compiled_p10_ms": row["p10_ms"], "compiled_p90_ms": row["p90_ms"],
            "speedup": eager_ms / row["median_ms"] if eager_ms else None,
            "compile_s": compile_s, "peak_mem_mib": row.get("peak_mem_mib")})
        print(f"  compile {method} {label}: {row['median_ms']:.2f} ms compiled"
              + (f" vs {eager_ms:.2f} eager" if eager_ms else "") + f" (compile {compile_s:.0f} s)")


# -- main ------------------------------------------------------------------------------------------


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true",
                   help="run the CPU rehearsal at tiny size even where CUDA is available")
    p.add_argument("--device", default="cuda", help="CUDA device for the real run (default: cuda)")
    p.add_argument("--out", default=None,
                   help="output folder (default: results/gpu on a GPU, a new temporary folder "
                   "for a dry run)")
    p.add_argument("--methods", type=_csv, default=None,
                   help="comma-separated attention methods (default: all registered)")
    p.add_argument("--compile-methods", type=_csv, default=None,
                   help="methods to compile, in order (default: dta, none, then the rest on a "
                   "GPU; one method in a dry run)")
    p.add_argument("--compile-backend", default=None,
                   help="torch.compile backend (default: inductor; aot_eager in a dry run)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="time budget in seconds (default: 440 on a GPU, 100 in a dry run)")
    p.add_argument("--no-asv", action="store_true", help="leave out the asv CUDA benchmarks")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    known = list_attention()
    methods = args.methods or known
    unknown = [m for m in methods + (args.compile_methods or []) if m not in known]
    if unknown:
        print(f"gpu_check: error: unknown method(s) {', '.join(unknown)}; known: "
              f"{', '.join(known)}", file=sys.stderr)
        return 2
    if args.budget_s is not None and args.budget_s <= 0:
        print(f"gpu_check: error: --budget-s must be > 0, got {args.budget_s}", file=sys.stderr)
        return 2
    dry = args.dry_run or not torch.cuda.is_available()
    if dry:
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        plan = dry_plan(methods, args)
        why = "--dry-run given" if args.dry_run else "no CUDA GPU on this machine"
        print(f"{BANNER}\nDRY RUN ({why}): the same code on the CPU at tiny size (width "
              f"{plan.width}, {plan.image}x{plan.image}, T={','.join(map(str, plan.Ts))}, "
              f"{plan.repeats} repeats).\nThese numbers say nothing about a GPU. On a machine "
              f"with CUDA, `make gpu-check` measures the full size.\n{BANNER}")
    else:
        device = torch.device(args.device)
        if device.type != "cuda":
            print(f"gpu_check: error: --device must be a CUDA device, got {args.device}; "
                  "use --dry-run for the CPU rehearsal", file=sys.stderr)
            return 2
        if device.index is None:  # "cuda": the current device, named by index from here on
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # what a GPU user runs with; recorded in the JSON
        plan = full_plan(str(device), methods, args)
    out_dir = Path(args.out) if args.out else (
        Path(tempfile.mkdtemp(prefix="dta-gpu-check-")) if dry else ROOT / "results" / "gpu")
    run = Run(plan, out_dir)
    clock = Clock(plan.budget_s)
    print(f"gpu check on {run.data['device_name']} ({plan.device}); budget {plan.budget_s:.0f} s;"
          f" writing {run.json_path}")
    sections = [("forward latency", section_latency), ("training step", section_train),
                ("asv CUDA benchmarks", section_asv), ("torch.compile", section_compile)]
    try:
        for title, section in sections:
            print(f"\n== {title} ({clock.elapsed():.0f} s)")
            try:
                section(run, clock)
            except Exception as err:  # noqa: BLE001 - one broken section must not lose the rest
                traceback.print_exc()
                run.error(title, err)
            run.save(clock)
        run.data["complete"] = True
    finally:
        run.save(clock)
        paths = write_gpu_report(run.json_path)
    print()
    print(to_markdown(json.loads(run.json_path.read_text())))
    print(f"written: {run.json_path}, " + ", ".join(map(str, paths.values())))
    print(f"elapsed {clock.elapsed():.0f} s of a {plan.budget_s:.0f} s budget; "
          f"{len(run.data['skipped'])} item(s) skipped, {len(run.data['errors'])} error(s)")
    if dry:
        print(f"{BANNER}\nDRY RUN: CPU at tiny size, not a GPU measurement "
              f"(\"dry_run\": true in {run.json_path.name}).\n{BANNER}")
    return 1 if run.data["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
