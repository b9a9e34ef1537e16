"""Tables and plots generated from result records (never typed by hand).

* :func:`energy_vs_accuracy`: one row per (dataset, method, T): the mean over seeds of
  every :data:`FIGURES` entry with its Student-t 95 % interval, the number of seeds, and
  a paired comparison against ``none`` (per-seed differences over the seeds both have).
* :func:`anytime_frame`: accuracy of the output averaged over the first t steps and the
  energy / operations spent up to step t, per (method, T, seed, t).
* :func:`training_frame`: what the end-of-epoch probe saw while each network learned.
* :func:`write_tables`: ``energy_vs_accuracy.{csv,md,tex}``, ``pareto.png``,
  ``anytime.{csv,png}`` and ``training.{csv,png}``: the one function that draws and
  writes the report files, for ``dta bench`` and ``dta report`` alike, so the same
  records give the same bytes (:func:`report_files` names them without writing).

Intervals: for n >= 2 seeds, ``mean ± t(0.975, n-1) * s / sqrt(n)`` with ``s`` the
sample standard deviation; a single seed has no interval (the bounds are empty and
the tables say so). A paired difference against ``none`` is marked ``n.s.`` (not
significant) when its interval contains 0.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .io import atomic_write, atomic_write_text

CONFIDENCE = 0.95
REFERENCE = "none"  # paired comparisons are against this method
KEYS = ["dataset", "method", "T"]
TABLE_MARKERS = ("<!-- bench-table:start -->", "<!-- bench-table:end -->")


@dataclass(frozen=True)
class Figure:
    """One figure of the energy-versus-accuracy table.

    ``name``: the CSV column of the mean (its interval: ``name_ci_low``, ``name_ci_high``);
    ``path``: where a record holds it; ``header``: the Markdown/LaTeX column ("": CSV
    only); shown as ``value * scale`` with ``decimals`` (``thousands``: 1,234 separators);
    ``interval``: show ``mean ± half-width``; ``paired``: also the paired difference
    against ``none`` (``name_vs_none``, with its interval and significance).
    """

    name: str
    path: tuple[str, ...]
    description: str
    header: str = ""
    scale: float = 1.0
    decimals: int = 3
    thousands: bool = False
    interval: bool = False
    paired: bool = False

    def show(self, value: float, sign: bool = False) -> str:
        if value is None or not math.isfinite(value):
            return ""
        spec = ("+" if sign else "") + ("," if self.thousands else "") + f".{self.decimals}f"
        return format(value * self.scale, spec)


#: The compute-only and the memory-aware energy model every table shows side by side
#: (``--energy-model`` picks the record's own ``energy_uj``; these two are always there).
COMPUTE_MODEL = "horowitz45-fp32"
MEMORY_MODEL = "lemaire2022"
#: The row every method's energy is compared with (same dataset and seed).
ANN = "ann"

#: The table's figures, in column order. One more energy column is one more line, e.g.
#: ``Figure("memory_uj_lemaire", ("energy", "memory_by_model", "lemaire2022"),
#: "memory energy, uJ (lemaire2022)", "memory (µJ, lemaire2022)", interval=True)``:
#: CSV mean and interval, Markdown/LaTeX ``mean ± half-width`` (``paired=True``: also
#: the paired difference to ``none``).
FIGURES: list[Figure] = [
    Figure("params", ("params",), "parameters", "params", decimals=0, thousands=True),
    Figure("attention_params", ("attention_params",), "parameters of the attention block"),
    Figure("accuracy", ("accuracy",), "test accuracy in [0, 1] (final epoch)", "accuracy (%)",
           scale=100, decimals=2, interval=True, paired=True),
    Figure("acs", ("ops", "ac"), "effective ACs per inference", "ACs", decimals=0,
           thousands=True),
    Figure("macs", ("ops", "mac"), "effective MACs per inference", "MACs", decimals=0,
           thousands=True),
    Figure("firing_rate", ("firing", "rate"), "spikes per neuron per time step",
           "firing rate", decimals=4),
    Figure("energy_uj", ("energy", "uj"), "energy per inference, uJ (the record's energy model)",
           "energy (µJ)", interval=True, paired=True),
    Figure("energy_x_ann", ("vs_ann", COMPUTE_MODEL, "ratio"),
           f"energy / the same seed's ann energy ({COMPUTE_MODEL}, compute only)",
           "× ANN", decimals=2, interval=True),
    Figure("breakeven_rate", ("vs_ann", COMPUTE_MODEL, "breakeven_rate"),
           f"firing rate at which the energy would equal the ann's ({COMPUTE_MODEL}); "
           "negative: not even at zero firing", "break-even rate", decimals=3, interval=True),
    Figure("compute_mem_uj", ("energy", "compute_by_model", MEMORY_MODEL),
           f"compute energy per inference, uJ ({MEMORY_MODEL})",
           f"compute (µJ, {MEMORY_MODEL})", interval=True),
    Figure("memory_mem_uj", ("energy", "memory_by_model", MEMORY_MODEL),
           f"memory energy per inference, uJ ({MEMORY_MODEL})",
           f"memory (µJ, {MEMORY_MODEL})", interval=True),
    Figure("energy_mem_uj", ("energy", "by_model", MEMORY_MODEL),
           f"energy per inference, compute + memory, uJ ({MEMORY_MODEL})", interval=True),
    Figure("energy_mem_x_ann", ("vs_ann", MEMORY_MODEL, "ratio"),
           f"energy / the same seed's ann energy ({MEMORY_MODEL})",
           f"× ANN ({MEMORY_MODEL})", decimals=2, interval=True),
    Figure("breakeven_mem_rate", ("vs_ann", MEMORY_MODEL, "breakeven_rate"),
           f"firing rate at which the energy would equal the ann's ({MEMORY_MODEL}); "
           "negative: not even at zero firing", f"break-even rate ({MEMORY_MODEL})",
           decimals=3, interval=True),
    Figure("attention_share", ("energy", "attention_share"),
           "share of the energy spent in the attention block", "attention share (%)",
           scale=100, decimals=1),
    Figure("latency_ms", ("latency_ms",), "median forward latency, batch 1, ms",
           "latency (ms)", decimals=2),
]
#: (column, record path, description): the figures as plain tuples.
COLUMNS = [(f.name, f.path, f.description) for f in FIGURES]


# -- statistics ------------------------------------------------------------------------------------


def t_interval(values: Iterable, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """``(mean, low, high)``: the Student-t interval of the mean of the finite ``values``.

    Fewer than two values: ``(mean, nan, nan)`` (no interval); none: all nan.
    """
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if v.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return mean, mean - half, mean + half


def significant(low: float, high: float) -> bool | None:
    """True when the interval excludes 0, False when it contains it, None without one."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    return not (low <= 0.0 <= high)


# -- records to frames -----------------------------------------------------------------------------


def record_value(record: dict, path: tuple):
    """The value at ``path`` in a nested record, or None where the record lacks it."""
    value = record
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def ann_comparison(record: dict, ann: dict) -> dict:
    """``{model: {"ratio", "breakeven_rate"}}`` of ``record`` against the ``ann`` record of
    the same dataset and seed, for :data:`COMPUTE_MODEL` and :data:`MEMORY_MODEL`.

    ``ratio``: energy / the ANN's. ``breakeven_rate``: the network firing rate ``r*`` at
    which the energy would equal the ANN's, from the record's split into spike-driven and
    fixed energy (``energy.split_by_model``, see :func:`dta.bench.spike_energy_split`):
    ``r* = r * (E_ann - E_fixed) / E_spike`` when every layer's firing scales by ``r*/r``;
    negative when the fixed part alone costs more than the ANN; absent without spikes.
    """
    out = {}
    for model in (COMPUTE_MODEL, MEMORY_MODEL):
        energy = record_value(record, ("energy", "by_model", model))
        reference = record_value(ann, ("energy", "by_model", model))
        if not isinstance(energy, (int, float)) or not reference:
            continue
        row = {"ratio": energy / reference}
        split = record_value(record, ("energy", "split_by_model", model))
        rate = record_value(record, ("firing", "rate"))
        if isinstance(split, dict) and rate and split.get("spike_uj"):
            row["breakeven_rate"] = rate * (reference - split["fixed_uj"]) / split["spike_uj"]
        out[model] = row
    return out


def with_ann_comparisons(records: Iterable[dict]) -> list[dict]:
    """The records, each with ``vs_ann`` (:func:`ann_comparison`) where an ``ann`` record of
    its dataset and seed exists (the later of several wins)."""
    records = list(records)
    anns = {(r["dataset"], r["seed"]): r for r in records if r.get("method") == ANN}
    out = []
    for r in records:
        ann = anns.get((r["dataset"], r["seed"]))
        if ann is not None and "vs_ann" not in r:
            r = {**r, "vs_ann": ann_comparison(r, ann)}
        out.append(r)
    return out


def records_frame(records: Iterable[dict]) -> pd.DataFrame:
    """Flat frame: one row per (dataset, method, T, seed) with every figure; of several
    records of one key (e.g. two commits) the later one wins."""
    rows = []
    for r in with_ann_comparisons(records):
        row = {"dataset": r["dataset"], "method": r["method"], "T": r["T"], "seed": r["seed"],
               "commit": r["commit"], "energy_model": record_value(r, ("energy", "model"))}
        for f in FIGURES:
            value = record_value(r, f.path)
            row[f.name] = float(value) if isinstance(value, (int, float)) else math.nan
        rows.append(row)
    flat = pd.DataFrame(rows)
    if flat.empty:
        return flat
    return flat.drop_duplicates(subset=KEYS + ["seed"], keep="last").reset_index(drop=True)


def energy_vs_accuracy(records: Iterable[dict], reference: str = REFERENCE) -> pd.DataFrame:
    """One row per (dataset, method, T), methods in the order they first appear.

    Columns: the keys, ``seeds``, then per figure its mean, ``_ci_low`` and ``_ci_high``
    (empty for one seed); per paired figure ``_vs_<reference>`` (mean per-seed
    difference), its interval and ``_vs_<reference>_significant``; ``paired_seeds``;
    ``energy_model``.
    """
    flat = records_frame(records)
    if flat.empty:
        return flat
    paired = [f for f in FIGURES if f.paired]
    rows = []
    for key, group in flat.groupby(KEYS, sort=False):
        row = dict(zip(KEYS, key))
        row["seeds"] = int(group["seed"].nunique())
        for f in FIGURES:
            row[f.name], row[f"{f.name}_ci_low"], row[f"{f.name}_ci_high"] = t_interval(group[f.name])
        ref = flat[(flat["dataset"] == key[0]) & (flat["T"] == key[2])
                   & (flat["method"] == reference)]
        both = (group.merge(ref, on="seed", suffixes=("", "_ref"))
                if key[1] != reference and not ref.empty else None)
        row["paired_seeds"] = 0 if both is None else len(both)
        for f in paired:
            col = f"{f.name}_vs_{reference}"
            if both is None or both.empty:
                row[col] = row[f"{col}_ci_low"] = row[f"{col}_ci_high"] = math.nan
                row[f"{col}_significant"] = None
                continue
            row[col], low, high = t_interval(both[f.name] - both[f"{f.name}_ref"])
            row[f"{col}_ci_low"], row[f"{col}_ci_high"] = low, high
            row[f"{col}_significant"] = significant(low, high)
        row["energy_model"] = group["energy_model"].dropna().iloc[0] \
            if group["energy_model"].notna().any() else None
        rows.append(row)
    return pd.DataFrame(rows)


def _paired_columns(table: pd.DataFrame, reference: str) -> list[Figure]:
    return [f for f in FIGURES if f.paired and f"{f.name}_vs_{reference}" in table
            and table[f"{f.name}_vs_{reference}"].notna().any()]


def _display(table: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Rounded, human-readable copy for Markdown / LaTeX (``±``: 95 % half-width)."""
    out = {}
    if table["dataset"].nunique() > 1:
        out["dataset"] = table["dataset"]
    out["method"], out["T"], out["seeds"] = table["method"], table["T"], table["seeds"]
    deltas = {f.name for f in _paired_columns(table, reference)}
    for f in FIGURES:
        if not f.header or f.name not in table:
            continue
        cells = []
        for _, row in table.iterrows():
            cell = f.show(row[f.name])
            if f.name.startswith("breakeven") and row[f.name] < 0:
                cells.append("never")  # the fixed energy alone exceeds the ANN's
                continue
            high = row.get(f"{f.name}_ci_high", math.nan)
            if f.interval and cell and math.isfinite(high):
                cell += " ± " + f.show(high - row[f.name])
            cells.append(cell)
        out[f.header] = cells
        if f.name in deltas:
            col, cells = f"{f.name}_vs_{reference}", []
            for _, row in table.iterrows():
                cell = f.show(row[col], sign=True)
                high = row[f"{col}_ci_high"]
                if cell and math.isfinite(high):
                    cell += " ± " + f.show(high - row[col])
                    if row[f"{col}_significant"] is False:
                        cell += " n.s."
                cells.append(cell)
            out[f"Δ {f.header.replace('(%)', '(pp)')} vs {reference}"] = cells
    return pd.DataFrame(out)


def table_notes(table: pd.DataFrame, reference: str = REFERENCE) -> list[str]:
    """What the ``±``, ``Δ`` and ``n.s.`` of the Markdown/LaTeX table mean, and which rows
    have no interval."""
    notes = []
    if (table["seeds"] >= 2).any():
        notes.append(f"± : half-width of the Student-t {CONFIDENCE:.0%} interval of the mean "
                     "over seeds.")
    single = table[table["seeds"] < 2]
    if len(single) == len(table):
        notes.append("1 seed per row: no interval (run several seeds, e.g. "
                     "`dta bench --seeds 0,1,2`).")
    elif len(single):
        notes.append("no interval (1 seed): " + ", ".join(
            f"{m} T={t}" for m, t in zip(single["method"], single["T"])) + ".")
    if "energy_x_ann" in table and table["energy_x_ann"].notna().any():
        notes.append(f"× ANN: energy / the energy of `{ANN}` (the same backbone with ReLU at T=1, "
                     f"same recipe and seed), under `{COMPUTE_MODEL}` (compute only) and "
                     f"`{MEMORY_MODEL}` (compute + memory). break-even rate: the firing rate at "
                     "which the method's energy would equal the ANN's if every layer's firing "
                     "scaled alike; never: its spike-independent energy alone exceeds the "
                     "ANN's. `qnn`: the ANN with activations quantized to ceil(log2(T+1)) bits "
                     "after training (accuracy measured, energy priced from the ANN's counts).")
    if _paired_columns(table, reference):
        notes.append(f"Δ … vs {reference}: mean of the per-seed differences to `{reference}` "
                     f"over the same seeds ± its {CONFIDENCE:.0%} interval; n.s.: the interval "
                     "contains 0 (not significant).")
    return notes


def to_markdown(table: pd.DataFrame, notes: bool = True) -> str:
    """The table as Markdown, its notes below it."""
    shown = _display(table).astype(str)
    # as formatted here (tabulate would re-parse "+0.28" or "7.700" as numbers)
    align = ["left" if c in ("dataset", "method") else "right" for c in shown.columns]
    text = shown.to_markdown(index=False, disable_numparse=True, colalign=align)
    if notes:
        text += "".join(f"\n\n{n}" for n in table_notes(table))
    return text


def to_latex(table: pd.DataFrame) -> str:
    """The table as a LaTeX ``tabular``; its notes follow as comments."""
    shown = _display(table)
    shown.columns = [_latex_text(c) for c in shown.columns]
    shown = shown.map(lambda v: _latex_text(v) if isinstance(v, str) else v)
    text = shown.to_latex(index=False, escape=False, column_format="l" + "r" * (shown.shape[1] - 1))
    return text + "".join(f"% {n}\n" for n in table_notes(table))


def _latex_text(text: str) -> str:
    for plain, tex in (("±", r"$\pm$"), ("Δ", r"$\Delta$"), ("µ", r"$\mu$"), ("%", r"\%"),
                       ("_", r"\_")):
        text = text.replace(plain, tex)
    return text


# -- any time, and training ------------------------------------------------------------------------


def anytime_frame(records: Iterable[dict]) -> pd.DataFrame:
    """One row per (dataset, method, T, seed, t), t = 1..T: ``accuracy`` of the output
    averaged over the first t steps, and ``energy_uj`` / ``acs`` / ``macs`` spent up to
    step t (cumulative, per inference). Records without any-time data are left out."""
    rows = []
    for r in records:
        anytime = r.get("anytime") or {}
        accuracy = anytime.get("accuracy")
        if not accuracy:
            continue
        for t in range(1, len(accuracy) + 1):
            row = {"dataset": r["dataset"], "method": r["method"], "T": r["T"], "seed": r["seed"],
                   "t": t, "accuracy": accuracy[t - 1]}
            for name in ("energy_uj", "acs", "macs"):
                values = anytime.get(name)
                row[name] = values[t - 1] if values else math.nan
            row["energy_model"] = anytime.get("energy_model")
            rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.drop_duplicates(subset=KEYS + ["seed", "t"], keep="last").reset_index(drop=True)


#: (column, where in an epoch entry of ``record["train"]["per_epoch"]``)
TRAINING_COLUMNS = [
    ("test_acc", ("test_acc",)), ("train_loss", ("train_loss",)), ("seconds", ("seconds",)),
    ("step_s", ("step_s",)), ("samples_per_s", ("samples_per_s",)),
    ("firing_rate", ("probe", "firing_rate")), ("acs", ("probe", "acs")),
    ("macs", ("probe", "macs")), ("energy_uj", ("probe", "energy_uj")),
    ("attention_share", ("probe", "attention_share")), ("probe_s", ("probe", "seconds")),
]


def training_frame(records: Iterable[dict]) -> pd.DataFrame:
    """One row per (dataset, method, T, seed, epoch): what the end-of-epoch probe measured
    (firing, ACs, MACs per sample, attention share) and the epoch's cost (``step_s``,
    ``samples_per_s``). Records without per-epoch data are left out."""
    rows = []
    for r in records:
        for entry in record_value(r, ("train", "per_epoch")) or []:
            row = {"dataset": r["dataset"], "method": r["method"], "T": r["T"], "seed": r["seed"],
                   "epoch": entry.get("epoch")}
            for name, path in TRAINING_COLUMNS:
                value = record_value(entry, path)
                row[name] = float(value) if isinstance(value, (int, float)) else math.nan
            rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.drop_duplicates(subset=KEYS + ["seed", "epoch"], keep="last").reset_index(drop=True)


# -- plots -----------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    buffer = io.BytesIO()
    # PNG metadata is Software only (no date), so the same figure is the same bytes
    fig.savefig(buffer, format="png")
    _pyplot().close(fig)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def pareto_front(table: pd.DataFrame, energy: str = "energy_uj") -> pd.DataFrame:
    """Rows not dominated by another (lower or equal energy with higher or equal accuracy,
    one of them strictly), on the means; sorted by energy."""
    keep = []
    for _, row in table.iterrows():
        dominated = ((table[energy] <= row[energy]) & (table["accuracy"] >= row["accuracy"])
                     & ((table[energy] < row[energy]) | (table["accuracy"] > row["accuracy"])))
        keep.append(not dominated.any())
    return table[keep].sort_values(energy)


def _errors(table: pd.DataFrame, name: str, scale: float = 1.0,
            limits: tuple[float, float] = (0.0, math.inf)) -> np.ndarray | None:
    """``[2, n]`` error-bar lengths from the interval columns (0 where there is none),
    drawn within ``limits`` (the values the quantity can take)."""
    low, high = table.get(f"{name}_ci_low"), table.get(f"{name}_ci_high")
    if low is None or high is None or not (low.notna().any()):
        return None
    low, high = low.clip(*limits), high.clip(*limits)
    mean = table[name]
    return scale * np.vstack([(mean - low).fillna(0.0).to_numpy(),
                              (high - mean).fillna(0.0).to_numpy()])


def _energy_label(table: pd.DataFrame, energy: str) -> str:
    """Axis label of an energy column: its model, and whether it prices memory."""
    from .measure import get_energy_model

    if energy == "energy_mem_uj":
        names = [MEMORY_MODEL]
    else:
        names = [str(m) for m in table["energy_model"].dropna().unique()] or ["?"]
    kinds = []
    for name in names:
        try:
            kinds.append("compute only" if get_energy_model(name).compute_only
                         else "compute + memory")
        except (KeyError, ValueError):
            kinds.append("?")
    return f"energy per inference (µJ, {', '.join(names)}: {', '.join(sorted(set(kinds)))})"


def pareto_plot(table: pd.DataFrame, path: str | Path, title: str = "",
                energies: tuple[str, ...] = ("energy_uj", "energy_mem_uj")) -> Path:
    """Energy per inference (x) against test accuracy (y), one panel per energy column
    (default: the record's model and :data:`MEMORY_MODEL`): means with their 95 %
    intervals as error bars on both axes; per dataset, the non-dominated rows (all T,
    ``ann``/``qnn`` included) circled and joined."""
    plt = _pyplot()
    energies = [e for e in energies if e in table and table[e].notna().any()]
    fig, axes = plt.subplots(1, len(energies), figsize=(6.8 * len(energies), 4.8), dpi=120,
                             squeeze=False)
    for ax, energy in zip(axes[0], energies):
        for dataset, group in table.dropna(subset=[energy]).groupby("dataset", sort=False):
            several_T = group["T"].nunique() > 1
            bars = ax.errorbar(group[energy], 100 * group["accuracy"], xerr=_errors(group, energy),
                               yerr=_errors(group, "accuracy", 100, (0.0, 1.0)), fmt="o", ms=5,
                               capsize=3, elinewidth=1, label=dataset)
            for _, row in group.iterrows():
                label = row["method"] + (f" T={row['T']}" if several_T else "")
                ax.annotate(label, (row[energy], 100 * row["accuracy"]),
                            textcoords="offset points", xytext=(4, 3), fontsize=8)
            front = pareto_front(group, energy)
            ax.plot(front[energy], 100 * front["accuracy"], "--o", lw=1.2, ms=11, mfc="none",
                    color=bars[0].get_color(), alpha=0.8, label=f"Pareto front ({dataset})")
        values = table[energy].dropna()
        if values.max() > 10 * values.min() > 0:  # log only when the range needs it
            ax.set_xscale("log")
        ax.set_xlabel(_energy_label(table, energy))
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    seeds = table["seeds"]
    span = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    bars_note = (f"bars: {CONFIDENCE:.0%} intervals over {span} seeds" if seeds.max() >= 2
                 else "1 seed: no intervals")
    fig.suptitle(f"{title or 'energy versus accuracy'}\n(circled and joined: the non-dominated "
                 f"means; {bars_note})", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _bands(ax, frame: pd.DataFrame, x: str, y: str, scale: float, style_of,
           limits: tuple[float, float] = (0.0, math.inf)) -> None:
    """Mean of ``y`` over seeds against ``x`` per (method, T), with a 95 % band drawn
    within ``limits`` (the values ``y`` can take)."""
    for (method, T), group in frame.groupby(["method", "T"], sort=False):
        if group[y].isna().all():
            continue
        stats = [(xv, *t_interval(g[y])) for xv, g in group.groupby(x)]
        xs = [s[0] for s in stats]
        mean = np.array([s[1] for s in stats]) * scale
        color, linestyle, label = style_of(method, T)
        ax.plot(xs, mean, marker="o", ms=3, lw=1.3, color=color, linestyle=linestyle, label=label)
        low = np.clip([s[2] for s in stats], *limits) * scale
        high = np.clip([s[3] for s in stats], *limits) * scale
        if np.isfinite(low).any():
            ax.fill_between(xs, low, high, color=color, alpha=0.15, lw=0)


def _styler(frame: pd.DataFrame):
    """Colour per method, line style per T (labels name T only when there are several)."""
    plt = _pyplot()
    methods = list(dict.fromkeys(frame["method"]))
    Ts = sorted(frame["T"].unique())
    colors = plt.get_cmap("tab10")
    styles = ["-", "--", ":", "-."]

    def style_of(method, T):
        label = method if len(Ts) == 1 else f"{method}, T={T}"
        return colors(methods.index(method) % 10), styles[Ts.index(T) % len(styles)], label

    return style_of


def anytime_plot(frame: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Any-time accuracy and cumulative energy against the time step t, every method."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120)
    style_of = _styler(frame)
    _bands(left, frame, "t", "accuracy", 100, style_of, (0.0, 1.0))
    _bands(right, frame, "t", "energy_uj", 1, style_of)
    left.set_ylabel("accuracy of the output averaged over steps 1..t (%)")
    model = ", ".join(str(m) for m in frame["energy_model"].dropna().unique()) or "?"
    right.set_ylabel(f"energy up to step t (µJ, {model})")
    for ax in (left, right):
        ax.set_xlabel("time step t")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
    left.legend(fontsize=7, ncol=2)
    fig.suptitle(title or f"accuracy and energy across time steps (bands: {CONFIDENCE:.0%} "
                 "intervals over seeds)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def training_plot(frame: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Firing rate and effective ACs per sample on the probe batch, per epoch, every method
    (networks that never spike, such as ``ann``, are left out of the figure, not the CSV)."""
    spiking = frame.groupby(["method", "T"], sort=False).filter(
        lambda g: (g["firing_rate"] > 0).any())
    frame = spiking if not spiking.empty else frame
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120)
    style_of = _styler(frame)
    _bands(left, frame, "epoch", "firing_rate", 1, style_of, (0.0, 1.0))
    _bands(right, frame, "epoch", "acs", 1, style_of)
    left.set_ylabel("firing rate (spikes per neuron per step)")
    right.set_ylabel("effective ACs per sample")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
    left.legend(fontsize=7, ncol=2)
    fig.suptitle(title or "while training: the end-of-epoch probe batch (bands: "
                 f"{CONFIDENCE:.0%} intervals over seeds)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


# -- files -----------------------------------------------------------------------------------------


def report_title(records: Iterable[dict]) -> str:
    """The Pareto figure's title: the datasets, in the order they first appear."""
    datasets = ", ".join(dict.fromkeys(r["dataset"] for r in records))
    return f"{datasets}: energy versus accuracy"


def _report_files(records: list[dict]) -> list[tuple[str, str, object]]:
    """``(key, file name, write(path) -> Path)`` of every report file ``records`` give."""
    records = list(records)
    table = energy_vs_accuracy(records)
    if table.empty:
        raise ValueError("no records to tabulate")
    files = [
        ("csv", "energy_vs_accuracy.csv", lambda p: atomic_write_text(p, table.to_csv(index=False))),
        ("md", "energy_vs_accuracy.md", lambda p: atomic_write_text(p, to_markdown(table) + "\n")),
        ("tex", "energy_vs_accuracy.tex", lambda p: atomic_write_text(p, to_latex(table))),
        ("png", "pareto.png", lambda p: pareto_plot(table, p, title=report_title(records))),
    ]
    anytime = anytime_frame(records)
    if not anytime.empty:
        files += [("anytime_csv", "anytime.csv",
                   lambda p: atomic_write_text(p, anytime.to_csv(index=False))),
                  ("anytime_png", "anytime.png", lambda p: anytime_plot(anytime, p))]
    training = training_frame(records)
    if not training.empty:
        files += [("training_csv", "training.csv",
                   lambda p: atomic_write_text(p, training.to_csv(index=False))),
                  ("training_png", "training.png", lambda p: training_plot(training, p))]
    return files


def report_files(records: list[dict]) -> list[str]:
    """The names of the files :func:`write_tables` writes for ``records`` (nothing drawn)."""
    return [name for _, name, _ in _report_files(records)]


def write_tables(records: list[dict], out_dir: str | Path) -> dict[str, Path]:
    """Write the energy-versus-accuracy table (CSV, Markdown, LaTeX), the Pareto plot
    (titled by :func:`report_title`), and, where the records carry them, the any-time and
    per-epoch tables and figures; ``{key: path}``.

    ``dta bench`` and ``dta report`` both call this, and nothing here depends on who
    calls it or when: the same records (in the same order) give byte-identical files.
    """
    out_dir = Path(out_dir)
    try:
        files = _report_files(records)
    except ValueError as err:
        raise ValueError(f"{err} for {out_dir}") from None
    return {key: write(out_dir / name) for key, name, write in files}


def update_readme(readme: str | Path, markdown: str, note: str = "") -> bool:
    """Replace the README section between the bench-table markers; False if no markers."""
    readme = Path(readme)
    text = readme.read_text()
    start, end = TABLE_MARKERS
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        return False
    body = f"{start}\n{note}{markdown}\n{end}"
    atomic_write_text(readme, pattern.sub(lambda _: body, text))
    return True
