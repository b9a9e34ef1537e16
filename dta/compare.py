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

The gate cannot pass on nothing: when no (dataset, method, T) is on both sides
(say, results of two different datasets) :func:`compare` raises
:class:`NothingToCompare` (``dta compare``: exit 2), naming what each side holds,
with or without ``--allow-missing``. Otherwise it says how many groups and
record pairs it compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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


class NothingToCompare(ValueError):
    """No (dataset, method, T) is on both sides: a gate that compared nothing must not pass."""


def _values(records: list[dict], key: str) -> str:
    return ",".join(str(v) for v in sorted({r[key] for r in records}))  # ints (validated)


def describe(records: list[dict]) -> str:
    """What a side holds, in one line: ``30 records: dataset digits; methods none,dta;
    T 4; seeds 0,1,2`` (methods in the order they first appear)."""
    methods = ",".join(dict.fromkeys(r["method"] for r in records))
    datasets = sorted({r["dataset"] for r in records})
    return (f"{len(records)} record(s): dataset{'s' if len(datasets) > 1 else ''} "
            f"{','.join(datasets)}; methods {methods}; T {_values(records, 'T')}; "
            f"seeds {_values(records, 'seed')}")


@dataclass
class Comparison:
    """What :func:`compare` found.

    ``table``: see :func:`compare`; ``failed``: whether the gate fails; ``groups``:
    (dataset, method, T) compared (on both sides); ``pairs``: records compared seed
    with seed (same dataset, method, T and seed); ``unpaired``: groups whose sides
    share no seed (compared mean against mean over all their seeds); ``missing``:
    records of OLD not in NEW; ``added``: records of NEW not in OLD.
    """

    table: pd.DataFrame
    failed: bool
    groups: int
    pairs: int
    unpaired: int = 0
    missing: int = 0
    added: int = 0
    regressions: int = field(init=False)
    noisy: int = field(init=False)

    def __post_init__(self):
        status = self.table["status"] if not self.table.empty else pd.Series([], dtype=str)
        self.regressions = int((status == "REGRESSION").sum())
        self.noisy = int((status == "within noise").sum())

    def summary(self) -> str:
        """``compared 8 (dataset, method, T) group(s): 24 record pair(s) ...``."""
        text = (f"compared {self.groups} (dataset, method, T) group(s): {self.pairs} record "
                "pair(s) of the same seed")
        if self.unpaired:
            text += (f", {self.unpaired} group(s) with no seed in common compared on all "
                     "their seeds")
        if self.missing:
            text += f"; {self.missing} record(s) of OLD missing in NEW"
        if self.added:
            text += f"; {self.added} record(s) only in NEW"
        return text


def compare_records(old: list[dict], new: list[dict], *, thresholds: dict | None = None,
                    skip: tuple[str, ...] = (), allow_missing: bool = False) -> tuple[pd.DataFrame, bool]:
    """``(table, failed)`` of :func:`compare` (raises :class:`NothingToCompare` alike)."""
    result = compare(old, new, thresholds=thresholds, skip=skip, allow_missing=allow_missing)
    return result.table, result.failed


def compare(old: list[dict], new: list[dict], *, thresholds: dict | None = None,
            skip: tuple[str, ...] = (), allow_missing: bool = False,
            labels: tuple[str, str] = ("OLD", "NEW")) -> Comparison:
    """Changes per (dataset, method, T, metric), whether the gate fails, and what was
    compared. Raises :class:`NothingToCompare` (naming each side by ``labels``) when
    no (dataset, method, T) is on both sides.

    Table columns: the group keys, ``seeds`` (the seeds compared), ``metric``, ``old``
    and ``new`` (means), ``old_low``/``old_high``/``new_low``/``new_high`` (95 %
    intervals, empty with one seed), ``change``, ``threshold``, ``status`` (``ok``,
    ``better``, ``REGRESSION``, ``within noise``, ``info``, ``n/a``; per seed:
    ``missing``, ``new``).
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

    both = [g for g, (a, b) in groups.items() if a and b]
    if not both:
        hint = ("compare results of the same dataset, e.g. results/digits with <new>/digits"
                if not {r["dataset"] for r in old} & {r["dataset"] for r in new}
                else "the sides share no method at the same T")
        raise NothingToCompare(
            "nothing to compare: no (dataset, method, T) is on both sides; "
            f"{labels[0]} holds {describe(old)}; {labels[1]} holds {describe(new)} ({hint})")

    rows, failed = [], False
    pairs = unpaired = missing = added = 0
    for group, (a, b) in groups.items():
        base = dict(zip(GROUP_FIELDS, group))
        gone = sorted(set(a) - set(b))
        missing += len(gone)
        if gone:
            status = "missing (allowed)" if allow_missing else "missing"
            failed |= not allow_missing
            rows.append({**base, "seeds": _seeds_text(gone), "metric": "-", "status": status})
        extra = sorted(set(b) - set(a))
        added += len(extra)
        if extra:
            rows.append({**base, "seeds": _seeds_text(extra), "metric": "-", "status": "new"})
        if not a or not b:
            continue
        common = set(a) & set(b)
        pairs += len(common)
        unpaired += not common
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
    return Comparison(pd.DataFrame(rows, columns=columns), failed, groups=len(both), pairs=pairs,
                      unpaired=unpaired, missing=missing, added=added)


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
