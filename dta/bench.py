"""``dta bench``: train, measure and tabulate every attention method.

For each (dataset, T, seed, method): train with the dataset's preset, measure
operation counts, firing and energy (every energy model) on the first 64 test
samples, and time the forward pass across T. Writes under
``results/<dataset>/``:

* ``records.jsonl``          one record per (dataset, method, T, seed, commit)
* ``energy_vs_accuracy.*``   the table as CSV, Markdown and LaTeX
* ``per_layer.csv``          ops and firing per layer and time step, per method
* ``latency.csv``            forward latency across T and batch size, per method
* ``pareto.png``             energy against accuracy with the Pareto front
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from .attention import list_attention
from .data import get_dataset_info
from .experiment import measurement_batch
from .io import atomic_write_text
from .measure import DEFAULT_ENERGY_MODEL, profile
from .measure.latency import measure_latency
from .models import create_model
from .records import validate
from .report import write_tables
from .train import resolve_config, train

DEFAULT_DATASETS = ("digits",)
DEFAULT_LATENCY_T = (2, 4, 8)
DEFAULT_LATENCY_BATCH = (1, 16)


@dataclass
class BenchConfig:
    datasets: tuple[str, ...] = DEFAULT_DATASETS
    methods: tuple[str, ...] = ()  # () = every registered method
    Ts: tuple[int, ...] = ()  # () = each dataset's preset T
    seeds: tuple[int, ...] = (0,)
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
    threads: int = 0
    progress: bool = True
    train_overrides: dict = field(default_factory=dict)


def measure_trained(model, record: dict, *, dataset: str, T: int, data_root: str,
                    energy_model: str, samples: int) -> tuple[dict, pd.DataFrame]:
    """Add ops, firing and energy to a training record; return it and the per-layer table."""
    x = measurement_batch(dataset, root=data_root, T=T, n=samples)
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
    record["measured_on"] = {"samples": int(x.shape[1]), "split": "test"}
    layers = report.layers.copy()
    for key in ("dataset", "method", "T", "seed"):
        layers.insert(0, key, record[key])
    return record, layers


def train_and_measure(dataset: str, method: str, *, T: int | None = None, seed: int = 0,
                      runs: str | Path = "runs/bench", data_root: str | Path = "data",
                      energy_model: str = DEFAULT_ENERGY_MODEL, samples: int = 64,
                      progress: bool = False, **overrides):
    """Train ``method`` on ``dataset`` with its preset, then measure it.

    Returns ``(record, per_layer_table, train_config)``. Shared by ``dta bench``
    and the asv suite, so both track the same numbers.
    """
    if T is not None:
        overrides["T"] = T
    tcfg = resolve_config(dataset, method, seed=seed, data_root=str(data_root), overwrite=True,
                          progress=progress, **overrides)
    tcfg.out = str(Path(runs) / dataset / f"{method}-T{tcfg.T}-s{seed}")
    trained = train(tcfg)
    record, per_layer = measure_trained(trained.model, trained.record, dataset=dataset, T=tcfg.T,
                                        data_root=str(data_root), energy_model=energy_model,
                                        samples=samples)
    return record, per_layer, tcfg


def latency_table(method: str, dataset: str, width: int, model_name: str, cfg: BenchConfig,
                  also_T: tuple[int, ...] = ()) -> pd.DataFrame:
    """Forward latency of ``method`` across ``cfg.latency_T`` (plus ``also_T``, the trained
    T values) and batch sizes, with fresh weights: dense CPU/GPU latency does not depend on
    them. T values a method cannot be built for (GAC needs T >= 2) are skipped with a note."""
    info = get_dataset_info(dataset)

    def factory(T: int):
        return create_model(model_name, attention=method, T=T, num_classes=info.num_classes,
                            in_channels=info.in_channels, width=width)

    Ts = []
    for T in sorted(set(cfg.latency_T) | set(also_T)):
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


def run_bench(cfg: BenchConfig) -> dict[str, list[dict]]:
    """Run the sweep; write the results; return the records per dataset."""
    from tqdm.auto import tqdm

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    methods = cfg.methods or tuple(list_attention())
    jobs = []
    for dataset in cfg.datasets:
        get_dataset_info(dataset)  # unknown names fail before any training
        Ts = cfg.Ts or (resolve_config(dataset, methods[0]).T,)
        jobs += [(dataset, T, seed, m) for T in Ts for seed in cfg.seeds for m in methods]
    results: dict[str, list[dict]] = {d: [] for d in cfg.datasets}
    layers: dict[str, list[pd.DataFrame]] = {d: [] for d in cfg.datasets}
    latency: dict[tuple[str, str], pd.DataFrame] = {}  # (dataset, method) -> table over T, batch
    start = time.perf_counter()
    bar = tqdm(jobs, desc="bench", unit="run", disable=not cfg.progress, file=sys.stderr)
    for dataset, T, seed, method in bar:
        bar.set_postfix_str(f"{dataset} {method} T={T} seed={seed}")
        overrides = dict(cfg.train_overrides)
        if cfg.epochs:
            overrides["epochs"] = cfg.epochs
        record, per_layer, tcfg = train_and_measure(
            dataset, method, T=T, seed=seed, runs=cfg.runs, data_root=cfg.data_root,
            energy_model=cfg.energy_model, samples=cfg.measure_samples, progress=cfg.progress,
            **overrides)
        if (dataset, method) not in latency:  # latency does not depend on weights or seed
            latency[dataset, method] = latency_table(method, dataset, tcfg.width, tcfg.model, cfg,
                                                     also_T=cfg.Ts or (tcfg.T,))
        lat = latency[dataset, method]
        first = lat["device"].iloc[0]  # the first available of cfg.latency_devices
        at_T = lat[(lat["T"] == T) & (lat["batch"] == 1) & (lat["device"] == first)]
        record["latency_ms"] = float(at_T["median_ms"].iloc[0]) if len(at_T) else None
        record["latency"] = lat.to_dict(orient="records")
        results[dataset].append(record)
        layers[dataset].append(per_layer)
        tqdm.write(f"{dataset}/{method} T={T} seed={seed}: accuracy {record['accuracy']:.4f}, "
                   f"energy {record['energy']['uj']:.3f} uJ "
                   f"(attention {100 * record['energy']['attention_share']:.1f}%), "
                   f"firing {record['firing']['rate']:.4f}", file=sys.stderr)
    bar.close()

    for dataset, records in results.items():
        out = Path(cfg.out) / dataset
        write_records_jsonl(out / "records.jsonl", records)
        atomic_write_text(out / "per_layer.csv", pd.concat(layers[dataset]).to_csv(index=False))
        tables = [t for (d, _), t in latency.items() if d == dataset]
        atomic_write_text(out / "latency.csv", pd.concat(tables).to_csv(index=False))
        write_tables(records, out, title=f"{dataset}: energy versus accuracy")
    print(f"bench: {len(jobs)} runs in {time.perf_counter() - start:.0f} s; results in "
          f"{', '.join(str(Path(cfg.out) / d) for d in cfg.datasets)}", file=sys.stderr)
    return results


def write_records_jsonl(path: Path, records: list[dict]) -> Path:
    """Validate every record, then write them all at once (atomically)."""
    lines = [json.dumps(validate(r, f"{path} record {i}"), sort_keys=True)
             for i, r in enumerate(records)]
    return atomic_write_text(path, "\n".join(lines) + "\n")
