"""Keep a ``make perf`` run with the results, so the figures the README cites can be checked.

    python scripts/keep_perf.py [--src .benchmarks/perf.json] [--label make-perf]
                                [--out results/perf]

``make perf`` writes pytest-benchmark's JSON to ``.benchmarks/perf.json`` (not tracked,
overwritten by the next run). This script copies it, whole, to
``results/perf/<machine>/<commit>-<label>-<run's UTC time>.json`` (atomically; an existing
file is never replaced), inside an object that
declares its schema (``dta-bench/perf/1``, so ``dta compare`` and ``dta report`` skip it
as not a result record) and lifts out what the README quotes: the CPU the run measured on,
the commit (and whether the tree had uncommitted changes), the date, and each check's
ratios (its ``extra_info``). It prints the ratios of the profiler check. To keep the run
of ``.ci/run`` from its clean clone: ``--src <clone>/.benchmarks/perf.json --label ci``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dta.io import atomic_write_text  # noqa: E402

SCHEMA = "dta-bench/perf/1"


class PerfFileError(ValueError):
    """The source is not a pytest-benchmark JSON of ``make perf``."""


def slug(text: str) -> str:
    """A folder name from a machine description (its CPU part, before ``, N CPUs``), lower
    case, other characters as hyphens: ``AMD EPYC (family 25, model 17), 2 CPUs, torch
    2.14.1`` -> ``amd-epyc-family-25-model-17``."""
    cpu = re.split(r", \d+ (?:cores|CPUs)", text)[0]
    return re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-") or "unknown-machine"


def load(src: Path) -> dict:
    try:
        data = json.loads(src.read_text())
    except FileNotFoundError:
        raise PerfFileError(f"{src}: no such file; run `make perf` first (it writes it)") from None
    except ValueError as err:
        raise PerfFileError(f"{src}: not valid JSON ({err})") from None
    if not (isinstance(data, dict) and isinstance(data.get("benchmarks"), list)
            and isinstance(data.get("machine_info"), dict)):
        raise PerfFileError(f"{src}: not a pytest-benchmark JSON (no 'benchmarks' list and "
                            "'machine_info'); give the file `make perf` writes")
    return data


def kept(data: dict, label: str) -> dict:
    """The object written: the run's identity and ratios, and the pytest-benchmark JSON."""
    ratios = {b["name"]: b.get("extra_info", {}) for b in data["benchmarks"]}
    machine = next((info["machine"] for info in ratios.values() if "machine" in info), None)
    if machine is None:  # runs before the checks named the CPU: the same form from cpuinfo
        cpu = data["machine_info"].get("cpu", {})
        machine = cpu.get("brand_raw") or "unknown CPU"
        if "family" in cpu and "model" in cpu:
            machine += f" (family {cpu['family']}, model {cpu['model']})"
        machine += f", {cpu.get('count', '?')} CPUs"
    commit = data.get("commit_info") or {}
    return {"schema": SCHEMA, "label": label, "machine": machine,
            "commit": commit.get("id"), "dirty": commit.get("dirty"),
            "datetime": data.get("datetime"), "ratios": ratios, "pytest_benchmark": data}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default=str(ROOT / ".benchmarks" / "perf.json"))
    parser.add_argument("--label", default="make-perf",
                        help="what ran it (make-perf, ci, ...): part of the file name")
    parser.add_argument("--out", default=str(ROOT / "results" / "perf"))
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.label):
        parser.error(f"--label {args.label!r}: use letters, digits, '.', '_' and '-' only")
    try:
        data = load(Path(args.src))
    except PerfFileError as err:
        print(f"keep_perf: {err}", file=sys.stderr)
        return 2
    obj = kept(data, args.label)
    commit = obj["commit"] if isinstance(obj["commit"], str) else ""
    # (pytest-benchmark writes 'unversioned' or 'unknown' outside git; its dirty flag is
    # git describe's, which does not see untracked files)
    commit = commit[:7] if re.fullmatch(r"[0-9a-f]{7,40}", commit) else "nocommit"
    commit += "-dirty" if obj["dirty"] else ""
    when = re.sub(r"[^0-9T]", "", str(obj["datetime"] or ""))[:15] or "undated"
    path = Path(args.out) / slug(obj["machine"]) / f"{commit}-{args.label}-{when}.json"
    if path.exists():
        print(f"keep_perf: {path} exists (this run is kept already); nothing written",
              file=sys.stderr)
        return 2
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")
    print(f"kept {args.src} as {path}")
    print(f"  machine: {obj['machine']}")
    for name, info in obj["ratios"].items():
        if "profile_ratio" in info:
            print(f"  {info.get('model', name)}: profile()/plain forward "
                  f"{info['profile_ratio']:.3f}x, SynOpCounter "
                  f"{info.get('spikingjelly_synop_ratio', float('nan')):.2f}x, NeuroBench "
                  f"{info.get('neurobench_synops_ratio', float('nan')):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
