"""``dta compare OLD NEW``: a direction-aware gate for accuracy and energy.

Records are matched on (dataset, method, T, seed); the commit is what differs.
Each metric has a direction and a threshold:

===============  =========  ===========  ==============================
metric           better     threshold    meaning of the threshold
===============  =========  ===========  ==============================
accuracy         higher     0.02         absolute (2 percentage points)
energy_uj        lower      5%           relative
acs              lower      5%           relative
macs             lower      5%           relative
latency_ms       lower      50%          relative (latency is noisy)
firing_rate      (none)     -            reported, never gates
params           (none)     -            reported, never gates
===============  =========  ===========  ==============================

A metric that moves the wrong way by more than its threshold is a
regression and the command exits 1. Records present in OLD but missing in
NEW are failures too (a benchmark must not vanish silently) unless
``--allow-missing``. Malformed files are reported and skipped (exit 2 if a
side has no valid record at all).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .report import COLUMNS, record_value

MATCH_FIELDS = ("dataset", "method", "T", "seed")


@dataclass(frozen=True)
class Metric:
    name: str  # a column of the energy-versus-accuracy table (its record path comes from there)
    direction: int  # +1 higher is better, -1 lower is better, 0 informational
    threshold: float
    relative: bool

    @property
    def path(self) -> tuple:
        return _PATHS[self.name]


_PATHS = {name: path for name, path, _ in COLUMNS}
METRICS = {
    m.name: m for m in (
        Metric("accuracy", +1, 0.02, False),
        Metric("energy_uj", -1, 0.05, True),
        Metric("acs", -1, 0.05, True),
        Metric("macs", -1, 0.05, True),
        Metric("latency_ms", -1, 0.50, True),
        Metric("firing_rate", 0, 0.0, True),
        Metric("params", 0, 0.0, True),
    )
}


def parse_thresholds(items: list[str] | None) -> dict[str, float]:
    """``["accuracy=0.01", "energy_uj=3%"]`` -> ``{"accuracy": 0.01, "energy_uj": 0.03}``."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or name not in METRICS:
            raise ValueError(f"--threshold {item!r}: expected METRIC=VALUE with METRIC one of "
                             f"{', '.join(METRICS)}")
        try:
            number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
        except ValueError:
            raise ValueError(f"--threshold {item!r}: {value!r} is not a number") from None
        if number < 0:
            raise ValueError(f"--threshold {item!r}: must be >= 0")
        out[name] = number
    return out


def compare_records(old: list[dict], new: list[dict], *, thresholds: dict | None = None,
                    skip: tuple[str, ...] = (), allow_missing: bool = False) -> tuple[pd.DataFrame, bool]:
    """Table of changes per (key, metric) and whether the gate fails."""
    thresholds = thresholds or {}
    unknown = [s for s in skip if s not in METRICS]
    if unknown:
        raise ValueError(f"--skip: unknown metrics {unknown}; known: {', '.join(METRICS)}")

    def index(records):
        out = {}
        for r in records:
            out[tuple(r[k] for k in MATCH_FIELDS)] = r  # a later record of a key wins
        return out

    old_i, new_i = index(old), index(new)
    rows, failed = [], False
    for key in list(old_i) + [k for k in new_i if k not in old_i]:
        a, b = old_i.get(key), new_i.get(key)
        base = dict(zip(MATCH_FIELDS, key))
        if a is None or b is None:
            status = "new" if a is None else ("missing" if not allow_missing else "missing (allowed)")
            failed |= status == "missing"
            rows.append({**base, "metric": "-", "old": None, "new": None, "change": None,
                         "threshold": None, "status": status})
            continue
        for m in METRICS.values():
            if m.name in skip:
                continue
            va, vb = record_value(a, m.path), record_value(b, m.path)
            if va is None or vb is None:
                rows.append({**base, "metric": m.name, "old": va, "new": vb, "change": None,
                             "threshold": None, "status": "n/a"})
                continue
            change = (vb - va) / abs(va) if m.relative and va else (vb - va)
            limit = thresholds.get(m.name, m.threshold)
            worse = -m.direction * change  # > 0 when the metric moved the wrong way
            if m.direction == 0:
                status = "info"
            elif worse > limit + 1e-12:
                status, failed = "REGRESSION", True
            elif -worse > 1e-12:
                status = "better"
            else:
                status = "ok"
            rows.append({**base, "metric": m.name, "old": va, "new": vb, "change": change,
                         "threshold": limit if m.direction else None, "status": status})
    return pd.DataFrame(rows), failed


def format_table(table: pd.DataFrame) -> str:
    if table.empty:
        return "(nothing to compare)"
    shown = table.copy()

    def fmt_change(row):
        if row["change"] is None or pd.isna(row["change"]):
            return ""
        metric = METRICS.get(row["metric"])
        if metric is not None and metric.relative:
            return f"{100 * row['change']:+.2f}%"
        return f"{row['change']:+.4f}"

    def fmt_limit(row):
        if row["threshold"] is None or pd.isna(row["threshold"]):
            return ""
        metric = METRICS[row["metric"]]
        return f"{100 * row['threshold']:.1f}%" if metric.relative else f"{row['threshold']:.4f}"

    shown["change"] = shown.apply(fmt_change, axis=1)
    shown["threshold"] = shown.apply(fmt_limit, axis=1)
    for col in ("old", "new"):
        shown[col] = shown[col].map(lambda v: "" if v is None or pd.isna(v) else f"{v:.6g}")
    return shown.to_markdown(index=False)
