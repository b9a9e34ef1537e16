"""The GPU check's results (``scripts/gpu_check.py``): schema, Markdown tables, latency figure.

A GPU check is one JSON file, ``results/gpu/<device>.json``, schema
``dta-bench/gpu-check/v1``::

    {"schema": ..., "dry_run": false, "device": "cuda:0", "device_name": "NVIDIA H100 ...",
     "complete": true, "config": {...}, "environment": {...},
     "latency": [{"method", "T", "batch", "median_ms", "p10_ms", "p90_ms", ...}],
     "train_step": [{"method", "setting", "amp", "channels_last", "compiled", "T", "batch",
                     "median_ms", "p10_ms", "p90_ms", "peak_mem_mib", ...}],
     "compile": [{"method", "what", "setting", "T", "batch", "eager_ms", "compiled_ms",
                  "speedup", "compile_s"}],
     "asv": {"status", "results": [{"benchmark", "params", "seconds"}], ...},
     "skipped": [{"section", "method", "reason"}], "errors": [...]}

:func:`write_gpu_report` turns one into ``<stem>.md`` (tables) and
``<stem>-latency.png`` (forward latency against T, one line per method, one
panel per batch size); ``dta report`` calls :func:`report_gpu_checks` for every
such file it is given or finds.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Iterable

import pandas as pd

from .io import atomic_write, atomic_write_text

GPU_CHECK_SCHEMA = "dta-bench/gpu-check/v1"

#: Required top-level fields and the fields every row of each section must have.
_TOP = {"schema": str, "dry_run": bool, "device": str, "device_name": str, "complete": bool,
        "config": dict, "latency": list, "train_step": list, "compile": list, "asv": dict,
        "skipped": list, "errors": list}
_ROWS = {
    "latency": ("method", "T", "batch", "median_ms", "p10_ms", "p90_ms"),
    "train_step": ("method", "setting", "amp", "channels_last", "compiled", "T", "batch",
                   "median_ms", "p10_ms", "p90_ms", "peak_mem_mib"),
    "compile": ("method", "what", "setting", "T", "batch", "eager_ms", "compiled_ms", "speedup",
                "compile_s"),
}


class GpuCheckError(ValueError):
    """A file that is not a valid GPU-check result."""


def device_slug(name: str) -> str:
    """A file name for a device: ``"NVIDIA H100 80GB HBM3"`` -> ``"nvidia-h100-80gb-hbm3"``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "device"


def validate_gpu_check(data: object, source: str = "gpu check") -> dict:
    """Return ``data`` if it is a valid GPU-check result, else raise :class:`GpuCheckError`."""
    if not isinstance(data, dict):
        raise GpuCheckError(f"{source}: expected a JSON object, got {type(data).__name__}")
    if data.get("schema") != GPU_CHECK_SCHEMA:
        raise GpuCheckError(f"{source}: not a GPU check (schema {data.get('schema')!r}, "
                            f"expected {GPU_CHECK_SCHEMA!r})")
    for key, kind in _TOP.items():
        if not isinstance(data.get(key), kind):
            raise GpuCheckError(f"{source}: field {key!r} must be {kind.__name__}, "
                                f"got {data.get(key)!r}")
    for section, fields in _ROWS.items():
        for i, row in enumerate(data[section]):
            missing = [f for f in fields if not isinstance(row, dict) or f not in row]
            if missing:
                raise GpuCheckError(f"{source}: {section}[{i}] lacks {', '.join(missing)}")
    return data


def load_gpu_check(path: str | Path) -> dict:
    """Read and validate one GPU-check JSON file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise GpuCheckError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    return validate_gpu_check(data, str(path))


# -- tables ----------------------------------------------------------------------------------------


def _fmt(value, spec: str = ".2f") -> str:
    return "" if value is None or pd.isna(value) else format(value, spec)


def latency_table(data: dict, batch: int) -> pd.DataFrame:
    """Median forward latency in ms [p10-p90], one row per method, one column per T."""
    rows = [r for r in data["latency"] if r["batch"] == batch and not r.get("compiled")]
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    frame["cell"] = [f"{r['median_ms']:.2f} [{r['p10_ms']:.2f}-{r['p90_ms']:.2f}]" for r in rows]
    table = frame.pivot(index="method", columns="T", values="cell")
    table = table.reindex(list(dict.fromkeys(frame["method"])))  # run order, not alphabetical
    table.columns = [f"T={t}" for t in table.columns]
    return table.fillna("").reset_index()


def train_table(data: dict) -> pd.DataFrame:
    """Training-step time and peak memory per method and setting (uncompiled)."""
    rows = [r for r in data["train_step"] if not r["compiled"]]
    if not rows:
        return pd.DataFrame()
    out = pd.DataFrame({
        "method": [r["method"] for r in rows],
        "setting": [r["setting"] for r in rows],
        "step (ms)": [f"{r['median_ms']:.1f} [{r['p10_ms']:.1f}-{r['p90_ms']:.1f}]" for r in rows],
        "samples/s": [_fmt(r.get("samples_per_s"), ".0f") for r in rows],
        "peak memory (MiB)": [_fmt(r["peak_mem_mib"], ",.0f") for r in rows],
    })
    return out


def compile_table(data: dict) -> pd.DataFrame:
    rows = data["compile"]
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame({
        "method": [r["method"] for r in rows], "what": [r["what"] for r in rows],
        "setting": [r["setting"] for r in rows],
        "T, batch": [f"{r['T']}, {r['batch']}" for r in rows],
        "eager (ms)": [_fmt(r["eager_ms"]) for r in rows],
        "compiled (ms)": [_fmt(r["compiled_ms"]) for r in rows],
        "speed-up": [_fmt(r["speedup"]) for r in rows],
        "compile (s)": [_fmt(r["compile_s"], ".1f") for r in rows],
    })


def to_markdown(data: dict) -> str:
    """All sections of a GPU check as Markdown (what ``<device>.md`` holds)."""
    cfg = data["config"]
    lines = [f"# GPU check: {data['device_name']} ({data['device']})", ""]
    if data["dry_run"]:
        lines += ["**DRY RUN on the CPU at tiny size: these numbers say nothing about a GPU.**", ""]
    if not data["complete"]:
        lines += ["**Incomplete: the run stopped before its end.**", ""]
    env = data.get("environment", {})
    lines += [f"commit `{data.get('commit', '?')}`, torch {env.get('torch', '?')}, CUDA "
              f"{cfg.get('cuda') or '-'}, {data.get('created', '')}; ms_resnet18 width "
              f"{cfg.get('width')}, {cfg.get('in_channels')}x{cfg.get('image')}x{cfg.get('image')}, "
              f"{cfg.get('classes')} classes; {cfg.get('warmup')} warm-up + {cfg.get('repeats')} "
              f"timed forwards ({cfg.get('timer')}); median [p10-p90].", ""]
    for batch in cfg.get("batches", []):
        table = latency_table(data, batch)
        if not table.empty:
            lines += [f"## Forward latency (ms), batch {batch}", "",
                      table.to_markdown(index=False), ""]
    table = train_table(data)
    if not table.empty:
        lines += [f"## Training step, T={cfg.get('train_T')}, batch {cfg.get('train_batch')}", "",
                  "One `dta.train.train_one_epoch` step (host-to-device copy, forward, loss, "
                  "backward, SGD); peak memory: `torch.cuda.max_memory_allocated` over the timed "
                  "steps.", "", table.to_markdown(index=False), ""]
    table = compile_table(data)
    if not table.empty:
        lines += [f"## torch.compile (backend `{cfg.get('compile_backend')}`)", "",
                  "compile (s): the first call, which compiles.", "",
                  table.to_markdown(index=False), ""]
    asv = data["asv"]
    lines += ["## asv CUDA benchmarks", "", f"status: {asv.get('status', '?')}"
              + (f" ({asv['note']})" if asv.get("note") else ""), ""]
    if asv.get("results"):
        frame = pd.DataFrame([{"benchmark": r["benchmark"], "params": ", ".join(r["params"]),
                               "ms": _fmt(None if r["seconds"] is None else 1e3 * r["seconds"],
                                          ".3f")} for r in asv["results"]])
        lines += [frame.to_markdown(index=False), ""]
    if data["skipped"]:
        lines += ["## Skipped", ""]
        lines += [f"* {s['section']}" + (f" {s['method']}" if s.get("method") else "")
                  + f": {s['reason']}" for s in data["skipped"]]
        lines.append("")
    if data["errors"]:
        lines += ["## Errors", ""] + [f"* {e}" for e in data["errors"]] + [""]
    return "\n".join(lines)


# -- figure ----------------------------------------------------------------------------------------


def latency_figure(data: dict):
    """The matplotlib figure: forward latency (median, p10-p90 bars) against T, one line per
    method, one panel per batch size (log latency axis when the values span over 20x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in data["latency"] if not r.get("compiled")]
    if not rows:
        raise GpuCheckError(f"{data['device_name']}: the GPU check has no latency rows to draw")
    frame = pd.DataFrame(rows)
    batches = sorted(frame["batch"].unique())
    fig, axes = plt.subplots(1, len(batches), figsize=(5.2 * len(batches), 4.2), dpi=120,
                             squeeze=False)
    for ax, batch in zip(axes[0], batches):
        for method, group in frame[frame["batch"] == batch].groupby("method", sort=False):
            group = group.sort_values("T")
            err = [group["median_ms"] - group["p10_ms"], group["p90_ms"] - group["median_ms"]]
            ax.errorbar(group["T"], group["median_ms"], yerr=err, marker="o", ms=4, capsize=2,
                        lw=1.2, label=method)
        ax.set_xlabel("time steps T")
        ax.set_ylabel("forward latency (ms, median; bars p10-p90)")
        ax.set_title(f"batch {batch}")
        ax.set_xticks(sorted(frame["T"].unique()))
        shown = frame.loc[frame["batch"] == batch, "median_ms"]
        if shown.min() > 0 and shown.max() > 20 * shown.min():
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    title = f"{data['device_name']}: forward latency against T"
    if data["dry_run"]:
        title += " (DRY RUN on the CPU, tiny size)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def latency_plot(data: dict, path: str | Path) -> Path:
    """Write :func:`latency_figure` as a PNG (atomically)."""
    import io

    import matplotlib.pyplot as plt

    fig = latency_figure(data)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def write_gpu_report(data_or_path: dict | str | Path, out_dir: str | Path | None = None,
                     stem: str | None = None) -> dict[str, Path]:
    """Write ``<stem>.md`` and ``<stem>-latency.png`` (beside the JSON unless ``out_dir``)."""
    if isinstance(data_or_path, dict):
        data = validate_gpu_check(data_or_path)
        if out_dir is None or stem is None:
            raise ValueError("write_gpu_report: a dict needs out_dir and stem")
    else:
        path = Path(data_or_path)
        data = load_gpu_check(path)
        out_dir = path.parent if out_dir is None else out_dir
        stem = stem or path.stem
    out_dir = Path(out_dir)
    paths = {"md": atomic_write_text(out_dir / f"{stem}.md", to_markdown(data) + "\n")}
    if any(not r.get("compiled") for r in data["latency"]):
        paths["png"] = latency_plot(data, out_dir / f"{stem}-latency.png")
    return paths


def _gpu_check_files(paths: Iterable[str | Path]) -> list[Path]:
    """The JSON files among ``paths`` (folders searched recursively) that declare the schema."""
    candidates: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            candidates += sorted(p.rglob("*.json"))
        elif p.suffix == ".json" and p.exists():
            candidates.append(p)
    found = []
    for f in candidates:
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # not ours: the record reader reports it
        if isinstance(data, dict) and data.get("schema") == GPU_CHECK_SCHEMA:
            found.append(f)
    return found


def report_gpu_checks(paths: Iterable[str | Path],
                      out: str | Path | None = None) -> dict[Path, dict | None]:
    """For ``dta report``: every GPU check given or found. Its tables go to stdout; with
    ``out``, ``<stem>.md`` and ``<stem>-latency.png`` are written into ``out``. Without
    ``out`` nothing is written (reading a report must not rewrite tracked files).

    Returns ``{file: written paths ({} without out), or None where the file was
    invalid}`` for every file declaring the GPU-check schema, so the caller does not
    report them again as foreign records.
    """
    handled: dict[Path, dict | None] = {}
    for f in _gpu_check_files(paths):
        try:
            data = load_gpu_check(f)
        except GpuCheckError as err:
            print(f"dta report: skipped {err}", file=sys.stderr)
            handled[f] = None
            continue
        print(to_markdown(data))
        if out is None:
            handled[f] = {}
            names = [f"{f.stem}.md"] + ([f"{f.stem}-latency.png"] if any(
                not r.get("compiled") for r in data["latency"]) else [])
            print(f"dta report: GPU check {f}: nothing written; --out DIR writes "
                  f"{' and '.join(names)} into DIR", file=sys.stderr)
            continue
        handled[f] = write_gpu_report(data, out, f.stem)
        print(f"dta report: GPU check {f}: written " + ", ".join(map(str, handled[f].values())),
              file=sys.stderr)
    return handled
