"""Tables and plots generated from result records (never typed by hand).

* :func:`energy_vs_accuracy`: one row per (dataset, method, T), averaged over seeds.
* :func:`write_tables`: ``energy_vs_accuracy.{csv,md,tex}``, ``pareto.png`` and the
  README section between ``<!-- bench-table:start -->`` and ``<!-- bench-table:end -->``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import pandas as pd

from .io import atomic_write, atomic_write_text

#: (column, record path, description) of the energy-versus-accuracy table.
COLUMNS = [
    ("params", ("params",), "parameters"),
    ("attention_params", ("attention_params",), "parameters of the attention block"),
    ("accuracy", ("accuracy",), "test accuracy in [0, 1] (final epoch)"),
    ("acs", ("ops", "ac"), "effective ACs per inference"),
    ("macs", ("ops", "mac"), "effective MACs per inference"),
    ("firing_rate", ("firing", "rate"), "spikes per neuron per time step"),
    ("energy_uj", ("energy", "uj"), "energy per inference, uJ (default energy model)"),
    ("attention_share", ("energy", "attention_share"), "share of the energy spent in the attention block"),
    ("latency_ms", ("latency_ms",), "median forward latency, batch 1, ms"),
]
TABLE_MARKERS = ("<!-- bench-table:start -->", "<!-- bench-table:end -->")


def record_value(record: dict, path: tuple):
    """The value at ``path`` in a nested record, or None where the record lacks it."""
    value = record
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def records_frame(records: Iterable[dict]) -> pd.DataFrame:
    """Flat frame: one row per record with the table's columns plus the key fields."""
    rows = []
    for r in records:
        row = {"dataset": r["dataset"], "method": r["method"], "T": r["T"], "seed": r["seed"],
               "commit": r["commit"], "energy_model": record_value(r, ("energy", "model"))}
        row.update({name: record_value(r, path) for name, path, _ in COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows)


def energy_vs_accuracy(records: Iterable[dict]) -> pd.DataFrame:
    """Mean over seeds per (dataset, method, T); ``accuracy_std`` and ``seeds`` beside it.

    Rows keep the order in which methods first appear (the registry order).
    """
    flat = records_frame(records)
    if flat.empty:
        return flat
    keys = ["dataset", "method", "T"]
    metrics = [name for name, _, _ in COLUMNS]
    grouped = flat.groupby(keys, sort=False)
    table = grouped[metrics].mean()
    table["accuracy_std"] = grouped["accuracy"].std(ddof=0)
    table["seeds"] = grouped["seed"].nunique()
    table["energy_model"] = grouped["energy_model"].first()
    table = table.reset_index()
    return table[keys + ["seeds", "params", "attention_params", "accuracy", "accuracy_std",
                         "acs", "macs", "firing_rate", "energy_uj", "attention_share",
                         "latency_ms", "energy_model"]]


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """Rounded, human-readable copy for Markdown / LaTeX."""
    out = pd.DataFrame({
        "method": table["method"], "T": table["T"],
        "params": table["params"].map(lambda v: f"{v:,.0f}"),
        "accuracy (%)": [f"{100 * a:.2f}" + (f" ± {100 * s:.2f}" if n > 1 else "")
                         for a, s, n in zip(table["accuracy"], table["accuracy_std"], table["seeds"])],
        "ACs": table["acs"].map(lambda v: f"{v:,.0f}"),
        "MACs": table["macs"].map(lambda v: f"{v:,.0f}"),
        "firing rate": table["firing_rate"].map(lambda v: f"{v:.4f}"),
        "energy (µJ)": table["energy_uj"].map(lambda v: f"{v:.3f}"),
        "attention share (%)": table["attention_share"].map(lambda v: f"{100 * v:.1f}"),
        "latency (ms)": table["latency_ms"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}"),
    })
    if table["dataset"].nunique() > 1:
        out.insert(0, "dataset", table["dataset"])
    return out


def to_markdown(table: pd.DataFrame) -> str:
    return _display(table).to_markdown(index=False)


def to_latex(table: pd.DataFrame) -> str:
    shown = _display(table).rename(columns={"energy (µJ)": r"energy ($\mu$J)",
                                            "accuracy (%)": r"accuracy (\%)",
                                            "attention share (%)": r"attention share (\%)"})
    shown = shown.replace({"±": r"$\\pm$"}, regex=True)
    return shown.to_latex(index=False, escape=False, column_format="l" + "r" * (shown.shape[1] - 1))


def pareto_front(table: pd.DataFrame) -> pd.DataFrame:
    """Rows not dominated by another (lower or equal energy with higher or equal accuracy)."""
    keep = []
    for i, row in table.iterrows():
        dominated = ((table["energy_uj"] <= row["energy_uj"]) & (table["accuracy"] >= row["accuracy"])
                     & ((table["energy_uj"] < row["energy_uj"]) | (table["accuracy"] > row["accuracy"])))
        keep.append(not dominated.any())
    return table[keep].sort_values("energy_uj")


def pareto_plot(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Energy per inference (x) against test accuracy (y), Pareto front drawn."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for (dataset, T), group in table.groupby(["dataset", "T"], sort=False):
        ax.scatter(group["energy_uj"], 100 * group["accuracy"], s=36, label=f"{dataset}, T={T}")
        for _, row in group.iterrows():
            ax.annotate(row["method"], (row["energy_uj"], 100 * row["accuracy"]),
                        textcoords="offset points", xytext=(4, 3), fontsize=8)
        front = pareto_front(group)
        ax.plot(front["energy_uj"], 100 * front["accuracy"], "--", lw=1, alpha=0.6)
    energy = table["energy_uj"]
    if energy.max() > 10 * energy.min() > 0:  # log only when the range needs it
        ax.set_xscale("log")
    ax.set_xlabel(f"energy per inference (µJ, {table['energy_model'].iloc[0]})")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or "energy versus accuracy (dashed: Pareto front)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def write_tables(records: list[dict], out_dir: str | Path, *, title: str = "") -> dict[str, Path]:
    """Write the energy-versus-accuracy table (CSV, Markdown, LaTeX) and the Pareto plot."""
    out_dir = Path(out_dir)
    table = energy_vs_accuracy(records)
    if table.empty:
        raise ValueError(f"no records to tabulate for {out_dir}")
    paths = {
        "csv": atomic_write_text(out_dir / "energy_vs_accuracy.csv", table.to_csv(index=False)),
        "md": atomic_write_text(out_dir / "energy_vs_accuracy.md", to_markdown(table) + "\n"),
        "tex": atomic_write_text(out_dir / "energy_vs_accuracy.tex", to_latex(table)),
        "png": pareto_plot(table, out_dir / "pareto.png", title=title),
    }
    return paths


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
