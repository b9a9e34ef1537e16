"""``dta bench``: train, measure and tabulate every attention method over several seeds.

For each (dataset, T, seed, method), the eight attention methods and ``ann`` (the same
backbone with ReLU at T=1, :data:`dta.train.EQUIVALENTS`; one run per seed whatever the
T list), plus ``qnn`` rows derived from each ``ann`` run (its activations quantized to
``ceil(log2(T+1))`` bits, :mod:`dta.quantize`; accuracy measured, energy priced from the
ANN's counts): train with the dataset's preset (every epoch
probed: firing, ACs, step time), measure operation counts, firing and energy (every
energy model) on the first 64 test samples, and record the any-time accuracy and the
energy spent up to each time step; then time the forward pass across T (once per
method: latency does not depend on the weights). Writes under ``results/<dataset>/``:

* ``records.jsonl``          one record per (dataset, method, T, seed, commit)
* ``energy_vs_accuracy.*``   mean and 95 % interval over seeds, paired differences to
                             ``none``: CSV, Markdown and LaTeX
* ``pareto.png``             energy against accuracy, error bars, the Pareto front
* ``anytime.csv`` / ``.png`` accuracy and energy up to each time step t = 1..T
* ``training.csv`` / ``.png`` firing and ACs per epoch on the probe batch
* ``per_layer.csv``          ops and firing per layer and time step, per run
* ``latency.csv``            forward latency across T and batch size, per method

Runs go to worker processes (by default two of one thread each on a CPU-only
machine: the embedded default is too small for one run to use two cores well).
Each finished run is kept at once: its full record and per-layer table in its run
folder, and all finished records in ``records.partial.jsonl`` until the bench ends.
A bench stopped midway says so; ``--resume`` with the same options skips the runs it
finished (same configuration, commit and measurement settings).
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .attention import list_attention
from .data import get_dataset_info
from .experiment import measurement_batch
from .io import atomic_write_text
from .measure import DEFAULT_ENERGY_MODEL, get_energy_model, list_energy_models, profile, qnn_energy
from .measure.latency import measure_latency
from .measure.profile import price
from .measure.traffic import activation_bits
from .models import create_model
from .records import PARTIAL_SUFFIX, git_commit, is_measured, validate, write_record
from .report import write_tables
from .train import EQUIVALENTS, OPERATIONAL_FIELDS, evaluate, resolve_config, train

DEFAULT_DATASETS = ("digits",)
DEFAULT_SEEDS = (0, 1, 2)
DEFAULT_LATENCY_T = (2, 4, 8)
DEFAULT_LATENCY_BATCH = (1, 16)


@dataclass
class BenchConfig:
    datasets: tuple[str, ...] = DEFAULT_DATASETS
    methods: tuple[str, ...] = ()  # () = every registered method
    Ts: tuple[int, ...] = ()  # () = each dataset's preset T
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    out: str = "results"
    runs: str = "runs/bench"
    data_root: str = "data"
    energy_model: str = DEFAULT_ENERGY_MODEL
    measure_samples: int = 64
    latency_T: tuple[int, ...] = DEFAULT_LATENCY_T
    latency_batch: tuple[int, ...] = DEFAULT_LATENCY_BATCH
    latency_repeats: int = 5
    latency_devices: tuple[str, ...] = ("cpu", "cuda")  # unavailable devices: skipped, said so
    epochs: int | None = None  # override the presets (smoke runs)
    threads: int = 0  # torch threads per run (0: the cores divided among the workers)
    workers: int = 0  # processes training at once (0: auto; 1: in this process)
    resume: bool = False  # skip runs a stopped bench finished (same configuration and commit)
    progress: bool = True
    train_overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    dataset: str
    T: int
    seed: int
    method: str

    @property
    def name(self) -> str:
        return f"{self.method}-T{self.T}-s{self.seed}"

    def folder(self, runs: str | Path) -> Path:
        return Path(runs) / self.dataset / self.name


# -- one run ---------------------------------------------------------------------------------------


#: the spike-proportional traffic of a synaptic op whose input is a spike tensor: its effective
#: ACs, the weights they read, and Lemaire et al.'s per-event terms
SPIKE_COLUMNS = ("ac", "w_reads", "nnz_in", "ev_mem", "ev_ops")


def spike_energy_split(report) -> dict[str, dict[str, float]]:
    """Per energy model, the energy (uJ per inference) that scales with the spike count and
    the rest: ``{"spike_uj": ..., "fixed_uj": ...}``.

    Scaling with spikes: each spike-driven synaptic op's effective ACs, the weight reads
    they make and Lemaire et al.'s per-event terms (:data:`SPIKE_COLUMNS`). Fixed: all
    else (real-valued MACs, neuron updates and state traffic, dense 1-bit spike reads,
    attention arithmetic). Energy is then ``fixed + spike * r / r_measured`` for a network
    whose every layer fires ``r / r_measured`` times as often: the assumption behind the
    break-even firing rate of the tables.
    """
    traffic = report.traffic
    driven = (traffic["synaptic"] & (traffic["in_spike"] > 0)).to_numpy()
    fixed_rows = traffic.copy()
    for col in SPIKE_COLUMNS:
        fixed_rows.loc[driven, col] = 0.0
    out = {}
    for name in list_energy_models():
        em = get_energy_model(name)
        total = sum(float(np.sum(v)) for v in price(em, traffic, has_neurons=report.has_neurons)
                    if v is not None)
        fixed = sum(float(np.sum(v)) for v in price(em, fixed_rows, has_neurons=report.has_neurons)
                    if v is not None)
        out[name] = {"spike_uj": (total - fixed) / 1e6, "fixed_uj": fixed / 1e6}
    return out


def qnn_rows(model, report, *, dataset: str, data_root: str, Ts, energy_model: str,
             samples: int, seed: int) -> list[dict]:
    """The QNN equivalents of a trained ``ann`` for SNNs of ``Ts`` steps: per T, the
    test accuracy with activations quantized to ``ceil(log2(T+1))`` bits (calibrated on
    the first ``samples`` training samples) and the energy priced from the ANN's counts."""
    from torch.utils.data import DataLoader

    from .data import build_datasets, to_time_first
    from .quantize import quantize_activations

    train_set, test_set, info = build_datasets(dataset, root=data_root, T=1, seed=seed,
                                               augment=False)
    n = min(samples, len(train_set))
    calibration = to_time_first(torch.stack([train_set[i][0] for i in range(n)]), 1,
                                info.temporal)
    loader = DataLoader(test_set, batch_size=256)
    rows, accuracy = [], {}
    for T in sorted(set(Ts)):
        bits = activation_bits(T)
        if bits not in accuracy:
            qmodel = quantize_activations(model, bits, calibration)
            device = next(model.parameters()).device
            accuracy[bits] = float(evaluate(qmodel, loader, 1, info.temporal, device)["acc"])
        q = qnn_energy(report, T, energy_model=energy_model)
        rows.append({"T": int(T), "activation_bits": bits, "accuracy": accuracy[bits],
                     "energy": {"model": energy_model, "uj": q["energy_uj"],
                                "by_component": q["energy_uj_by_component"],
                                "attention_share": 0.0, "by_model": q["energy_uj_by_model"],
                                "compute_uj": q["compute_uj"], "memory_uj": q["memory_uj"],
                                "compute_by_model": q["compute_uj_by_model"],
                                "memory_by_model": q["memory_uj_by_model"],
                                "bytes_by_model": q["bytes_by_model"]}})
    return rows


def measure_trained(model, record: dict, *, dataset: str, T: int, data_root: str,
                    energy_model: str, samples: int,
                    qnn_T: tuple[int, ...] = ()) -> tuple[dict, pd.DataFrame]:
    """Add ops, firing, energy and the energy up to each step to a training record;
    return it and the per-layer table. An ``ann`` record also gets its ``qnn`` rows for
    SNNs of ``qnn_T`` steps (:func:`qnn_rows`)."""
    x = measurement_batch(dataset, root=data_root, T=T, n=samples)
    is_ann = record["method"] == "ann"
    with warnings.catch_warnings():  # the ann row has no spiking neurons, by design
        if is_ann:
            warnings.filterwarnings("ignore", message=".*has no spiking neurons.*")
        report = profile(model, x, energy_model=energy_model)
    t = report.totals
    record = dict(record)
    record["ops"] = {k: t[k] for k in ("ac", "mac", "other", "select", "dense_macs",
                                       "neuron_updates")}
    record["ops"]["by_component"] = t["by_component"]
    record["ops"]["unsupported"] = report.unsupported
    record["ops"]["fold_bn"] = report.meta["fold_bn"]
    record["firing"] = {
        "rate": t["firing_rate"], "sparsity": t["sparsity"], "per_step": t["firing_rate_per_step"],
        "per_layer": report.firing.groupby("layer", sort=False).apply(
            lambda g: float(g["spikes"].sum() / g["neurons"].sum()), include_groups=False).to_dict(),
    }
    record["energy"] = {
        "model": energy_model, "uj": t["energy_uj"], "by_component": t["energy_uj_by_component"],
        "attention_share": t["attention_share"], "per_step": t["energy_uj_per_step"],
        "by_model": t["energy_uj_by_model"], "attention_share_by_model": t["attention_share_by_model"],
    }
    for key, name in (("compute_uj", "compute_uj"), ("memory_uj", "memory_uj"),
                      ("memory_share", "memory_share"), ("compute_uj_by_model", "compute_by_model"),
                      ("memory_uj_by_model", "memory_by_model"), ("bytes_by_model", "bytes_by_model")):
        if key in t:  # compute / memory split (memory-aware energy models)
            record["energy"][name] = t[key]
    for key in ("bytes", "bytes_by_kind", "word_bits"):
        if key in t:  # memory traffic per inference
            record["ops"][key] = t[key]
    # any time: what a reader who stops after step t has spent (the accuracy at each t
    # comes from the training run's last evaluation, the same weights)
    steps = report.per_step.groupby("t")[["ac", "mac"]].sum().reindex(range(T), fill_value=0.0)
    record["anytime"] = {
        **record.get("anytime", {}), "energy_model": energy_model,
        "energy_uj": np.cumsum(t["energy_uj_per_step"]).tolist(),
        "acs": steps["ac"].cumsum().tolist(), "macs": steps["mac"].cumsum().tolist(),
    }
    for key in ("compute_uj_per_step", "memory_uj_per_step"):
        if t.get(key) is not None:  # the compute / memory parts of energy_uj, up to step t
            record["anytime"][key.replace("_per_step", "")] = np.cumsum(t[key]).tolist()
    record["energy"]["split_by_model"] = spike_energy_split(report)
    if is_ann and qnn_T:
        record["qnn"] = qnn_rows(model, report, dataset=dataset, data_root=data_root, Ts=qnn_T,
                                 energy_model=energy_model, samples=samples,
                                 seed=record["seed"])
    record["measured_on"] = {"samples": int(x.shape[1]), "requested": samples, "split": "test"}
    layers = report.layers.copy()
    for key in ("dataset", "method", "T", "seed"):
        layers.insert(0, key, record[key])
    return record, layers


def train_and_measure(dataset: str, method: str, *, T: int | None = None, seed: int = 0,
                      runs: str | Path = "runs/bench", data_root: str | Path = "data",
                      energy_model: str = DEFAULT_ENERGY_MODEL, samples: int = 64,
                      progress: bool = False, qnn_T: tuple[int, ...] = (), **overrides):
    """Train ``method`` on ``dataset`` with its preset, then measure it.

    Returns ``(record, per_layer_table, train_config)`` and keeps both in the run folder
    (``record.json``, now measured, and ``per_layer.csv``). Shared by ``dta bench`` and
    the asv suite, so both track the same numbers.
    """
    tcfg = _train_config(Job(dataset, T, seed, method), runs=runs, data_root=data_root,
                         progress=progress, overrides=overrides)
    trained = train(tcfg)
    record, per_layer = measure_trained(trained.model, trained.record, dataset=dataset, T=tcfg.T,
                                        data_root=str(data_root), energy_model=energy_model,
                                        samples=samples, qnn_T=qnn_T)
    atomic_write_text(Path(tcfg.out) / "per_layer.csv", per_layer.to_csv(index=False))
    write_record(Path(tcfg.out) / "record.json", record)  # last: its presence means "done"
    return record, per_layer, tcfg


def _train_config(job: Job, *, runs, data_root, progress: bool, overrides: dict):
    overrides = dict(overrides)
    if job.T is not None:
        overrides["T"] = job.T
    tcfg = resolve_config(job.dataset, job.method, seed=job.seed, data_root=str(data_root),
                          overwrite=True, progress=progress, **overrides)
    tcfg.out = str(Path(runs) / job.dataset / f"{job.method}-T{tcfg.T}-s{job.seed}")
    return tcfg


def _run_job(job: Job, spec: dict) -> tuple[dict, pd.DataFrame]:
    """One run in a worker process (module level, so it pickles)."""
    spec = dict(spec)
    qnn_T = spec.pop("qnn_T_by_dataset", {}).get(job.dataset, ())
    qnn_T = qnn_T if job.method == "ann" else ()
    record, per_layer, _ = train_and_measure(job.dataset, job.method, T=job.T, seed=job.seed,
                                             qnn_T=tuple(qnn_T), **spec)
    return record, per_layer


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass


def finished_run(job: Job, cfg: BenchConfig, expected: dict, commit: str):
    """``(record, per_layer)`` a previous bench left for ``job``, or ``(None, why not)``.

    Reused only when it was measured with this commit, the same training configuration
    and the same measurement settings.
    """
    folder = job.folder(cfg.runs)
    try:
        record = validate(json.loads((folder / "record.json").read_text()))
        per_layer = pd.read_csv(folder / "per_layer.csv")
    except (OSError, ValueError):
        return None, "not finished"
    ignored = OPERATIONAL_FIELDS | {"out"}
    if not is_measured(record):
        return None, "trained, not measured"
    if record["commit"] != commit:
        return None, f"made at commit {record['commit']}"
    if (record["energy"].get("model") != cfg.energy_model
            or record.get("measured_on", {}).get("requested") != cfg.measure_samples):
        return None, "measured with other settings"
    if ({k: v for k, v in record.get("config", {}).items() if k not in ignored}
            != {k: v for k, v in expected.items() if k not in ignored}):
        return None, "trained with another configuration"
    return (record, per_layer), ""


# -- latency ---------------------------------------------------------------------------------------


def latency_table(method: str, dataset: str, width: int, model_name: str, cfg: BenchConfig,
                  also_T: tuple[int, ...] = ()) -> pd.DataFrame:
    """Forward latency of ``method`` across ``cfg.latency_T`` (plus ``also_T``, the trained
    T values) and batch sizes, with fresh weights: dense CPU/GPU latency does not depend on
    them. T values a method cannot be built for (GAC needs T >= 2) are skipped with a note."""
    info = get_dataset_info(dataset)
    build = dict(EQUIVALENTS.get(method, {"attention": method}))
    only_T = build.pop("T", None)  # the ANN runs at its one T

    def factory(T: int):
        return create_model(model_name, T=T, num_classes=info.num_classes,
                            in_channels=info.in_channels, width=width, **build)

    Ts = []
    for T in ([only_T] if only_T else sorted(set(cfg.latency_T) | set(also_T))):
        try:
            factory(T)
            Ts.append(T)
        except ValueError as err:
            print(f"bench: latency of {method} at T={T} skipped: {err}", file=sys.stderr)
    shape = (info.in_channels, *info.input_size)
    tables = []
    for device in available_devices(cfg.latency_devices):
        table = measure_latency(factory, shape, Ts=Ts, batch_sizes=cfg.latency_batch,
                                repeats=cfg.latency_repeats, warmup=2, device=device)
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    table.insert(0, "method", method)
    table.insert(0, "dataset", dataset)
    return table


_SKIP_NOTED: set = set()


def available_devices(devices: tuple[str, ...]) -> list[str]:
    """The devices that exist here; each missing one is reported once with the reason."""
    out = []
    for device in devices:
        if device.startswith("cuda") and not torch.cuda.is_available():
            if device not in _SKIP_NOTED:
                _SKIP_NOTED.add(device)
                print(f"bench: {device} latency skipped: no CUDA GPU on this machine "
                      f"(torch {torch.__version__}, torch.cuda.is_available() is False)",
                      file=sys.stderr)
            continue
        out.append(device)
    if not out:
        raise ValueError(f"bench: none of the latency devices {devices} is available")
    return out


# -- the sweep -------------------------------------------------------------------------------------


def plan_workers(cfg: BenchConfig, n_jobs: int) -> tuple[int, int]:
    """``(workers, threads per run)``. Auto: on a CPU-only machine one process of one
    thread per core, at most 2 (a width-16 network keeps one core busy; a second thread
    per run gains less than a second run does); with a GPU, one process."""
    cores = os.cpu_count() or 1
    workers = cfg.workers or (1 if torch.cuda.is_available() else min(2, cores))
    workers = max(1, min(workers, n_jobs))
    threads = cfg.threads or max(1, cores // workers)
    return workers, threads


def _epochs_done(folder: Path) -> int:
    """Epochs a running job has finished (its metrics log, which training rewrites)."""
    try:
        return (folder / "metrics.jsonl").read_text().count('"event": "epoch"')
    except OSError:
        return 0


def run_bench(cfg: BenchConfig) -> dict[str, list[dict]]:
    """Run the sweep; write the results; return the records per dataset."""
    from tqdm.auto import tqdm

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if not cfg.seeds:
        raise ValueError("bench: no seeds given; pass e.g. --seeds 0,1,2")
    methods = cfg.methods or (*list_attention(), *EQUIVALENTS)
    jobs: list[Job] = []
    qnn_T: dict[str, tuple[int, ...]] = {}
    for dataset in cfg.datasets:
        get_dataset_info(dataset)  # unknown names fail before any training
        Ts = cfg.Ts or (resolve_config(dataset, "none").T,)
        jobs += [Job(dataset, T, seed, m) for T in Ts for seed in cfg.seeds for m in methods
                 if m not in EQUIVALENTS]
        # the ANN runs once per seed at its own T; its qnn rows follow the SNNs' T list
        jobs += [Job(dataset, EQUIVALENTS[m]["T"], seed, m) for seed in cfg.seeds
                 for m in methods if m in EQUIVALENTS]
        qnn_T[dataset] = tuple(Ts)
    overrides = dict(cfg.train_overrides)
    if cfg.epochs:
        overrides["epochs"] = cfg.epochs
    workers, threads = plan_workers(cfg, len(jobs))
    spec = dict(runs=cfg.runs, data_root=cfg.data_root, energy_model=cfg.energy_model,
                samples=cfg.measure_samples, progress=cfg.progress and workers == 1,
                qnn_T_by_dataset=qnn_T, **overrides)
    configs = {job: _train_config(job, runs=cfg.runs, data_root=cfg.data_root,
                                  progress=False, overrides=overrides) for job in jobs}

    done: dict[Job, tuple[dict, pd.DataFrame]] = {}
    if cfg.resume:
        commit, others = git_commit(), {}
        for job in jobs:
            found, why = finished_run(job, cfg, configs[job].to_dict(), commit)
            if found is not None:
                done[job] = found
            elif why != "not finished":
                others.setdefault(why, []).append(job.name)
        print(f"bench: --resume: {len(done)} of {len(jobs)} runs already finished in "
              f"{cfg.runs} (same configuration and commit {commit}); skipping them",
              file=sys.stderr)
        for why, names in others.items():
            print(f"bench: --resume: trained again ({why}): {', '.join(names)}", file=sys.stderr)
    todo = [job for job in jobs if job not in done]
    # progress in units of epoch x T (a run's cost grows with both)
    weight = {job: configs[job].epochs * configs[job].T for job in jobs}
    start = time.perf_counter()
    bar = tqdm(total=float(sum(weight.values())), desc="bench", disable=not cfg.progress,
               file=sys.stderr, bar_format="{desc}: {percentage:3.0f}%|{bar}| "
               "[{elapsed} elapsed, {remaining} left{postfix}]")
    bar.update(float(sum(weight[j] for j in done)))
    print(f"bench: {len(todo)} runs ({len(jobs)} in all) in {workers} worker process(es) of "
          f"{threads} thread(s); latency after training", file=sys.stderr)

    def finished(job: Job, result) -> None:
        done[job] = result
        record = result[0]
        tqdm.write(f"{job.dataset}/{job.method} T={job.T} seed={job.seed}: accuracy "
                   f"{record['accuracy']:.4f}, energy {record['energy']['uj']:.3f} uJ "
                   f"(attention {100 * record['energy']['attention_share']:.1f}%), firing "
                   f"{record['firing']['rate']:.4f}", file=sys.stderr)
        _write_partial(cfg, jobs, done)

    try:
        if workers == 1:
            for job in todo:
                bar.set_postfix_str(f"{len(done)}/{len(jobs)} runs, now {job.name}")
                finished(job, _run_job(job, spec))
                bar.update(float(weight[job]))
        else:
            _run_pool(todo, spec, workers, threads, cfg, weight, finished, bar, len(jobs), done)
    except BaseException as err:
        bar.close()
        what = "interrupted" if isinstance(err, KeyboardInterrupt) else f"failed ({err!r})"
        print(f"\nbench: {what} after {len(done)} of {len(jobs)} runs. The finished records "
              f"are kept: {_partial_paths(cfg)} and the run folders under {cfg.runs}; rerun "
              "with the same options and --resume to skip them.", file=sys.stderr)
        raise
    bar.set_postfix_str(f"{len(done)}/{len(jobs)} runs; latency")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # as the runs had: a second thread mostly spins on this net
    try:
        results = _finish(cfg, jobs, done, configs)
    finally:
        torch.set_num_threads(before)
    bar.close()
    print(f"bench: {len(jobs)} runs in {time.perf_counter() - start:.0f} s "
          f"({workers} worker(s) x {threads} thread(s)); results in "
          f"{', '.join(str(Path(cfg.out) / d) for d in cfg.datasets)}", file=sys.stderr)
    return results


def _run_pool(todo, spec, workers, threads, cfg, weight, finished, bar, total, done) -> None:
    """Run ``todo`` in ``workers`` spawned processes; advance the bar as epochs finish."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    for job in todo:  # a stale log from an earlier run must not count as progress
        (job.folder(cfg.runs) / "metrics.jsonl").unlink(missing_ok=True)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(threads,))
    try:
        pending = {pool.submit(_run_job, job, spec): job for job in todo}
        shown = {job: 0.0 for job in todo}  # progress already on the bar, per job
        while pending:
            ready, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in ready:
                job = pending.pop(future)
                finished(job, future.result())  # a failed run raises here
                bar.update(weight[job] - shown.pop(job))
            for job in pending.values():
                now = min(float(job.T * _epochs_done(job.folder(cfg.runs))), weight[job])
                if now > shown[job]:
                    bar.update(now - shown[job])
                    shown[job] = now
            bar.set_postfix_str(f"{len(done)}/{total} runs")
    except BaseException:
        # Ctrl-C or a failed run: stop the runs in flight now (an executor would finish
        # them, and start the ones it had already queued, before shutting down)
        stop = getattr(pool, "terminate_workers", None)  # Python >= 3.14
        if stop is not None:
            stop()
        else:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _partial_paths(cfg: BenchConfig) -> str:
    return ", ".join(str(Path(cfg.out) / d / f"records{PARTIAL_SUFFIX}") for d in cfg.datasets)


def _write_partial(cfg: BenchConfig, jobs: list[Job], done: dict) -> None:
    """All finished records of each dataset, in job order, rewritten atomically."""
    for dataset in cfg.datasets:
        records = [done[j][0] for j in jobs if j.dataset == dataset and j in done]
        if records:
            write_records_jsonl(Path(cfg.out) / dataset / f"records{PARTIAL_SUFFIX}", records)


def _finish(cfg: BenchConfig, jobs: list[Job], done: dict, configs: dict) -> dict[str, list[dict]]:
    """Latency per (dataset, method) in this process, then every file of every dataset."""
    latency: dict[tuple[str, str], pd.DataFrame] = {}
    for job in jobs:
        if (job.dataset, job.method) not in latency:  # it depends on neither weights nor seed
            tcfg = configs[job]
            Ts = tuple(sorted({j.T for j in jobs if j.dataset == job.dataset}))
            latency[job.dataset, job.method] = latency_table(job.method, job.dataset, tcfg.width,
                                                             tcfg.model, cfg, also_T=Ts)
    results: dict[str, list[dict]] = {}
    for dataset in cfg.datasets:
        records, layers = [], []
        for job in (j for j in jobs if j.dataset == dataset):
            record, per_layer = done[job]
            lat = latency[dataset, job.method]
            first = lat["device"].iloc[0]  # the first available of cfg.latency_devices
            at_T = lat[(lat["T"] == job.T) & (lat["batch"] == 1) & (lat["device"] == first)]
            record = dict(record)
            record["latency_ms"] = float(at_T["median_ms"].iloc[0]) if len(at_T) else None
            record["latency"] = lat.to_dict(orient="records")
            records.append(record)
            layers.append(per_layer)
        records += [q for r in records for q in qnn_records(r)]
        out = Path(cfg.out) / dataset
        write_records_jsonl(out / "records.jsonl", records)
        atomic_write_text(out / "per_layer.csv", pd.concat(layers).to_csv(index=False))
        tables = [t for (d, _), t in latency.items() if d == dataset]
        atomic_write_text(out / "latency.csv", pd.concat(tables).to_csv(index=False))
        write_tables(records, out)  # as `dta report` draws them: the same bytes
        (out / f"records{PARTIAL_SUFFIX}").unlink(missing_ok=True)  # the bench ended
        results[dataset] = records
    return results


def qnn_records(ann: dict) -> list[dict]:
    """The ``qnn`` records an ``ann`` record carries (one per SNN T): the ANN's record with
    the quantized network's accuracy and energy; no latency, any-time or training curves
    of their own (nothing was trained or timed for them)."""
    rows = ann.get("qnn") or []
    out = []
    for row in rows:
        q = {k: v for k, v in ann.items() if k not in ("qnn", "anytime", "latency", "train")}
        q.update(method="qnn", T=row["T"], accuracy=row["accuracy"], energy=row["energy"],
                 latency_ms=None, latency=[])
        q["quantization"] = {
            "activation_bits": row["activation_bits"], "from": "ann",
            "how": "post-training, per-layer clip at the 99.9th percentile of the training "
                   "split's ReLU outputs (dta.quantize)"}
        q.pop("best_accuracy", None)
        out.append(q)
    return out


def write_records_jsonl(path: Path, records: list[dict]) -> Path:
    """Validate every record, then write them all at once (atomically)."""
    lines = [json.dumps(validate(r, f"{path} record {i}"), sort_keys=True)
             for i, r in enumerate(records)]
    return atomic_write_text(path, "\n".join(lines) + "\n")
