"""Result records: one JSON object per (dataset, method, T, seed, commit).

A record holds what a table needs and what makes it reproducible::

    {"schema": "dta-bench/record/v1", "dataset": ..., "method": ..., "model": ...,
     "T": ..., "seed": ..., "width": ..., "commit": ..., "params": ...,
     "accuracy": <test accuracy in [0, 1]>, "train": {...}, "ops": {...},
     "firing": {...}, "energy": {...}, "latency": [...], "config": {...},
     "environment": {...}}

``ops``/``firing``/``energy``/``latency`` are filled by ``dta bench`` (training
alone writes the rest). Records are written atomically and validated on read:
a malformed or foreign file is reported by name and skipped, never merged.

Later fields are optional, so older records (one seed, no per-epoch data) still
load, tabulate and compare: ``train.per_epoch`` (what each epoch measured:
loss, accuracy, step time, the probe's firing and ACs) and ``anytime``
(accuracy of the output averaged over the first t steps; energy and ops up to
step t).

A ``dta bench`` that is stopped midway leaves its finished records in
``records.partial.jsonl``; a folder search reports that file and skips it (name
it explicitly to read it, or finish the bench with ``dta bench --resume``).

Only records are read. Other JSON the project writes declares its own ``schema``
(the GPU check ``dta-bench/gpu-check/v1``, the training-throughput file
:data:`TRAINING_SCHEMA`): a folder search skips such a file silently, a file named
explicitly is reported as not a record. A JSON object with no ``schema`` key is
reported (it may be a record someone stripped).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Iterable

import torch

from .io import atomic_write_text

SCHEMA = "dta-bench/record/v1"
#: ``scripts/bench_training.py``'s output (training samples/s and the accuracy bar)
TRAINING_SCHEMA = "dta-bench/training-throughput/v1"
REQUIRED = {"schema": str, "dataset": str, "method": str, "model": str, "T": int, "seed": int,
            "commit": str, "params": int, "accuracy": float}


class RecordError(ValueError):
    """A result file that is not a valid dta-bench record."""


def git_commit(cwd: str | Path | None = None) -> str:
    """The current commit hash, ``+dirty`` when the tree has changes, or ``unknown``."""
    env_commit = os.environ.get("DTA_COMMIT")
    if env_commit:
        return env_commit
    try:
        here = cwd or Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> dict:
    """Where a number was measured: library versions, device, threads."""
    from importlib.metadata import version

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "spikingjelly": version("spikingjelly"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return env


def validate(record: object, source: str = "record") -> dict:
    """Return ``record`` if it is a valid record, else raise :class:`RecordError`."""
    if not isinstance(record, dict):
        raise RecordError(f"{source}: expected a JSON object, got {type(record).__name__}")
    if record.get("schema") != SCHEMA:
        raise RecordError(f"{source}: not a dta-bench record (schema {record.get('schema')!r}, "
                          f"expected {SCHEMA!r})")
    for key, kind in REQUIRED.items():
        value = record.get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float \
            else isinstance(value, kind) and not isinstance(value, bool)
        if not ok:
            raise RecordError(f"{source}: field {key!r} must be {kind.__name__}, got {value!r}")
    if not 0.0 <= record["accuracy"] <= 1.0:
        raise RecordError(f"{source}: accuracy must be a test accuracy in [0, 1], "
                          f"got {record['accuracy']!r}")
    return record


def write_record(path: str | Path, record: dict) -> Path:
    """Validate and atomically write one record as JSON."""
    validate(record, str(path))
    return atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")


PARTIAL_SUFFIX = ".partial.jsonl"  # the finished records of a bench that has not ended


def is_measured(record: dict) -> bool:
    """Whether a record carries the bench's measurement (a training record does not)."""
    return isinstance(record.get("energy"), dict) and "uj" in record["energy"]


def declared_other(data: object) -> str | None:
    """The schema of a JSON object that says it is not a record, else None.

    A string ``schema`` other than a record's (``dta-bench/record/...``: another record
    version is a record this code cannot read, reported by :func:`validate`).
    """
    if not isinstance(data, dict):
        return None
    schema = data.get("schema")
    if isinstance(schema, str) and not schema.startswith("dta-bench/record/"):
        return schema
    return None


def read_records(paths: Iterable[str | Path], *, measured: bool = False) -> tuple[list[dict], list[str]]:
    """Load records from files and directories.

    A directory is searched recursively for ``*.json`` files and JSONL files whose
    name contains ``records`` (training logs such as ``metrics.jsonl`` are not
    records); files named explicitly are always read. ``*.partial.jsonl`` files
    (a bench stopped midway) found in a directory are reported and skipped; JSON
    files that declare another schema (:func:`declared_other`) found there are
    skipped silently, and reported when named.
    ``measured=True``: records without an energy measurement (a training record
    whose bench stopped before measuring it) are reported and skipped too.

    Returns ``(records, problems)``: each malformed or foreign file (or JSONL
    line) is named in ``problems`` and skipped.
    """
    records, problems = [], []
    files: list[Path] = []
    named: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            for q in sorted(p.rglob("*")):
                if q.name.endswith(PARTIAL_SUFFIX):
                    lines = sum(1 for line in q.read_text().splitlines() if line.strip())
                    problems.append(
                        f"{q}: {lines} record(s) of a bench stopped midway; skipped (finish it "
                        "with `dta bench --resume`, or name the file to read it)")
                elif q.suffix == ".json" or (q.suffix == ".jsonl" and "records" in q.name):
                    files.append(q)
        elif p.exists():
            files.append(p)
            named.add(p)
        else:
            problems.append(f"{p}: no such file or directory")
    for f in files:
        try:
            text = f.read_text()
        except OSError as err:
            problems.append(f"{f}: unreadable ({err})")
            continue
        items = []
        if f.suffix == ".jsonl":
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    items.append((f"{f}:{n}", line))
        else:
            items.append((str(f), text))
        for source, payload in items:
            try:
                data = json.loads(payload)
                other = declared_other(data) if f.suffix == ".json" else None
                if other is not None:
                    if f in named:
                        problems.append(f"{source}: a {other} file, not a result record")
                    continue  # not a record, and says so: nothing to warn about
                record = validate(data, source)
                if measured and not is_measured(record):
                    problems.append(f"{source}: a training record without energy measurement "
                                    "(its bench stopped before measuring it); skipped")
                    continue
                records.append(record)
            except json.JSONDecodeError as err:
                problems.append(f"{source}: not valid JSON ({err.msg} at line {err.lineno})")
            except RecordError as err:
                problems.append(str(err))
    return records, problems

