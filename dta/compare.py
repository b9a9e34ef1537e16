"""``dta compare OLD NEW``: a direction-aware, noise-aware gate for accuracy and energy.

Records are grouped on (dataset, method, T); within a group the seeds are the
repeats. Each metric has a direction and a threshold:

===============  =========  ===========  ==============================
metric           better     threshold    meaning of the threshold
===============  =========  ===========  ==============================
accuracy         higher     0.02         absolute (2 percentage points)
energy_uj        lower      5%           relative
energy_mem_uj    lower      5%           relative (memory-aware model)
acs              lower      5%           relative
macs             lower      5%           relative
latency_ms       lower      50%          relative (latency is noisy)
firing_rate      (none)     -            reported, never gates
params           (none)     -            reported, never gates
===============  =========  ===========  ==============================

The rule, per group and metric:

1. The two sides are compared over the seeds both have (all seeds of each
   side when they share none): ``change`` is the difference of the means
   (relative to the old mean for relative thresholds).
2. A change the wrong way by more than the threshold is a ``REGRESSION``
   (exit 1), unless both sides have at least two seeds and their Student-t
   95 % intervals of the mean overlap: then it is ``within noise`` (reported,
   exit 0), because the seeds alone move the metric that much.
3. With one seed on a side there is no interval: the threshold alone decides,
   as for single-seed records (the old rule, unchanged).

Records (dataset, method, T, seed) present in OLD but missing in NEW are
failures too (a benchmark must not vanish silently) unless ``--allow-missing``.
Malformed files are reported and skipped (exit 2 if a side has no valid record
at all).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .report import COLUMNS, record_value, t_interval

MATCH_FIELDS = ("dataset", "method", "T", "seed")
GROUP_FIELDS = ("dataset", "method", "T")


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
        Metric("energy_mem_uj", -1, 0.05, True),
        Metric("acs", -1, 0.05, True),
        Metric("macs", -1, 0.05, True),
        Metric("latency_ms", -1, 0.50, True),
        Metric("firing_rate", 0, 0.0, True),
        Metric("params", 0, 0.0, True),
    )
}
_EPS = 1e-12


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


def _seeds_text(seeds) -> str:
    return ",".join(str(s) for s in sorted(seeds))


def _overlap(a: tuple, b: tuple) -> bool | None:
    """Whether the intervals ``(mean, low, high)`` overlap; None when a side has none."""
    if not all(math.isfinite(v) for v in (a[1], a[2], b[1], b[2])):
        return None
    return a[1] <= b[2] + _EPS and b[1] <= a[2] + _EPS


def compare_records(old: list[dict], new: list[dict], *, thresholds: dict | None = None,
                    skip: tuple[str, ...] = (), allow_missing: bool = False) -> tuple[pd.DataFrame, bool]:
    """Table of changes per (dataset, method, T, metric) and whether the gate fails.

    Columns: the group keys, ``seeds`` (the seeds compared), ``metric``, ``old`` and
    ``new`` (means), ``old_low``/``old_high``/``new_low``/``new_high`` (95 % intervals,
    empty with one seed), ``change``, ``threshold``, ``status`` (``ok``, ``better``,
    ``REGRESSION``, ``within noise``, ``info``, ``n/a``; per seed: ``missing``, ``new``).
    """
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
    groups: dict[tuple, tuple[dict, dict]] = {}
    for side, idx in ((0, old_i), (1, new_i)):
        for key, r in idx.items():
            groups.setdefault(key[:3], ({}, {}))[side][key[3]] = r

    rows, failed = [], False
    for group, (a, b) in groups.items():
        base = dict(zip(GROUP_FIELDS, group))
        gone = sorted(set(a) - set(b))
        if gone:
            status = "missing (allowed)" if allow_missing else "missing"
            failed |= not allow_missing
            rows.append({**base, "seeds": _seeds_text(gone), "metric": "-", "status": status})
        added = sorted(set(b) - set(a))
        if added:
            rows.append({**base, "seeds": _seeds_text(added), "metric": "-", "status": "new"})
        if not a or not b:
            continue
        common = set(a) & set(b)
        seeds_a, seeds_b = (common, common) if common else (set(a), set(b))
        seeds = _seeds_text(common) if common else f"{_seeds_text(seeds_a)} vs {_seeds_text(seeds_b)}"
        for m in METRICS.values():
            if m.name in skip:
                continue
            va = [record_value(a[s], m.path) for s in sorted(seeds_a)]
            vb = [record_value(b[s], m.path) for s in sorted(seeds_b)]
            va = [float(v) for v in va if isinstance(v, (int, float))]
            vb = [float(v) for v in vb if isinstance(v, (int, float))]
            row = {**base, "seeds": seeds, "metric": m.name}
            if not va and not vb:
                continue  # a figure neither side records (e.g. an energy model added since)
            if not va or not vb:
                rows.append({**row, "old": va[0] if len(va) == 1 else None,
                             "new": vb[0] if len(vb) == 1 else None, "status": "n/a"})
                continue
            ia, ib = t_interval(va), t_interval(vb)
            change = (ib[0] - ia[0]) / abs(ia[0]) if m.relative and ia[0] else ib[0] - ia[0]
            limit = thresholds.get(m.name, m.threshold)
            worse = -m.direction * change  # > 0 when the metric moved the wrong way
            if m.direction == 0:
                status = "info"
            elif worse > limit + _EPS:
                if _overlap(ia, ib):
                    status = "within noise"
                else:
                    status, failed = "REGRESSION", True
            elif -worse > _EPS:
                status = "better"
            else:
                status = "ok"
            rows.append({**row, "old": ia[0], "new": ib[0], "old_low": ia[1], "old_high": ia[2],
                         "new_low": ib[1], "new_high": ib[2], "change": change,
                         "threshold": limit if m.direction else None, "status": status})
    columns = [*GROUP_FIELDS, "seeds", "metric", "old", "new", "old_low", "old_high", "new_low",
               "new_high", "change", "threshold", "status"]
    return pd.DataFrame(rows, columns=columns), failed


def format_table(table: pd.DataFrame) -> str:
    """Markdown: means, ``[low, high]`` 95 % intervals where both sides have several seeds."""
    if table.empty:
        return "(nothing to compare)"

    def number(v) -> str:
        return "" if v is None or pd.isna(v) else f"{v:.6g}"

    def side(row, which) -> str:
        text = number(row[which])
        low, high = row[f"{which}_low"], row[f"{which}_high"]
        if text and not (pd.isna(low) or pd.isna(high)):
            text += f" [{low:.4g}, {high:.4g}]"
        return text

    def fmt_change(row):
        if pd.isna(row["change"]):
            return ""
        metric = METRICS.get(row["metric"])
        if metric is not None and metric.relative:
            return f"{100 * row['change']:+.2f}%"
        return f"{row['change']:+.4f}"

    def fmt_limit(row):
        if pd.isna(row["threshold"]):
            return ""
        metric = METRICS[row["metric"]]
        return f"{100 * row['threshold']:.1f}%" if metric.relative else f"{row['threshold']:.4f}"

    shown = table[[*GROUP_FIELDS, "seeds", "metric"]].copy()
    shown["old"] = table.apply(lambda r: side(r, "old"), axis=1)
    shown["new"] = table.apply(lambda r: side(r, "new"), axis=1)
    shown["change"] = table.apply(fmt_change, axis=1)
    shown["threshold"] = table.apply(fmt_limit, axis=1)
    shown["status"] = table["status"]
    return shown.astype(str).to_markdown(index=False, disable_numparse=True)
