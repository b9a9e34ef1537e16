"""The profiler's overhead against an earlier revision's, in one process (a benchmark script).

    python scripts/profile_ab.py --rev HEAD~1 [--rounds 35] [--networks ms_resnet18+dta,...]
                                 [--out .benchmarks/profile_ab.json]

Separate runs of ``make perf`` on this shared machine differ by 2-3 % in the
``profile()`` / plain-forward ratio, more than most single changes to the
counter move it. This script loads ``dta/measure`` as it was at ``--rev`` (read
with ``git show``, imported as its own package next to this tree's; it uses
this tree's models, neuron and helpers) and times, on the networks of
``tests/perf`` (one thread, the allocator held steady), a plain forward, this
tree's ``dta.measure.profile`` and the revision's, in the interleaved blocks of
``tests/perf/timing.interleaved_ratios``: both ratios see the same machine load,
so their difference repeats more closely than separate runs do. It still moves
with the machine's load: repeated comparisons of one change here differed by up to
0.02 (once, on a loaded machine, by 0.14), so repeat a comparison, with more
``--rounds``, before trusting a difference of about 0.01.

It also checks that both profilers give the same counts (``report.traffic``
exactly, the totals to 1e-12 relative) and says so; a difference is reported, not
an error, since a change may mean to alter them. Writes one JSON file (atomically)
and prints a summary.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCHEMA = "dta-bench/profile-ab/v1"


def load_measure(rev: str, into: Path):
    """``dta.measure`` at ``rev`` as a package of its own under ``into``; its imports from
    the rest of ``dta`` (``from ..x import``) point at this tree's."""
    try:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                             check=True, capture_output=True, text=True).stdout.strip()
        listing = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", sha,
                                  "dta/measure/"], check=True, capture_output=True,
                                 text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise SystemExit(f"profile_ab: cannot read revision {rev!r} of {ROOT}: {detail.strip()}\n"
                         "give a commit of this repository, e.g. --rev HEAD~1") from exc
    files = [p for p in listing if p.endswith(".py")]
    if "dta/measure/__init__.py" not in files:
        raise SystemExit(f"profile_ab: revision {rev} ({sha[:10]}) has no dta/measure package")
    name = f"dta_measure_{sha[:10]}"
    pkg = into / name
    pkg.mkdir(parents=True)
    for path in files:
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{sha}:{path}"], check=True,
                              capture_output=True, text=True).stdout
        text = re.sub(r"^(\s*)from \.\.(\w)", r"\1from dta.\2", text, flags=re.M)
        text = re.sub(r"^(\s*)from \.\. import", r"\1from dta import", text, flags=re.M)
        (pkg / Path(path).name).write_text(text)
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]  # an earlier load (from another folder): import this one
    sys.path.insert(0, str(into))
    importlib.invalidate_caches()
    return importlib.import_module(name), sha


def _close(a, b, rel: float) -> bool:
    """Equal nested totals, floats to ``rel`` relative (other values exactly)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(
            _close(a[k], b[k], rel) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(
            _close(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-300)
    return a == b


def same_counts(a, b) -> bool:
    """The same count rows (``traffic``, exactly) and totals to 1e-12 relative: the same
    energies summed in another order differ in their last bits."""
    return a.traffic.equals(b.traffic) and _close(a.totals, b.totals, 1e-12)


def main(argv=None) -> int:
    import torch

    from dta.io import atomic_write_text
    from dta.measure import profile
    from dta.records import git_commit
    from tests.perf.test_perf import NETWORKS, plain_forward
    from tests.perf.timing import interleaved_ratios

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="HEAD", help="the revision to compare with (HEAD)")
    parser.add_argument("--rounds", type=int, default=35, help="interleaved pairs per ratio")
    parser.add_argument("--networks", default=",".join(sorted(NETWORKS)),
                        help=f"comma-separated, of: {', '.join(sorted(NETWORKS))}")
    parser.add_argument("--out", default=str(ROOT / ".benchmarks" / "profile_ab.json"))
    args = parser.parse_args(argv)
    names = [n for n in args.networks.split(",") if n]
    unknown = sorted(set(names) - set(NETWORKS))
    if unknown or not names:
        parser.error(f"unknown network(s) {unknown or names}: choose from {sorted(NETWORKS)}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    with tempfile.TemporaryDirectory(prefix="profile-ab-") as tmp:
        old, sha = load_measure(args.rev, Path(tmp))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        results = []
        try:
            for name in names:
                net, x = NETWORKS[name]()
                net.eval()
                equal = same_counts(profile(net, x), old.profile(net, x))
                r = interleaved_ratios(lambda: plain_forward(net, x), {
                    "this tree": lambda: profile(net, x),
                    "revision": lambda: old.profile(net, x)}, rounds=args.rounds)
                results.append({"network": name, "profile_ratio": r["this tree"],
                                "revision_profile_ratio": r["revision"],
                                "difference": r["this tree"] - r["revision"],
                                "same_counts": equal})
                print(f"{name}: profile()/plain forward {r['this tree']:.3f}x here, "
                      f"{r['revision']:.3f}x at {args.rev} ({sha[:10]}): "
                      f"{r['this tree'] - r['revision']:+.3f}; counts "
                      + ("identical" if equal else "DIFFER"), flush=True)
        finally:
            torch.set_num_threads(threads)
    doc = {"schema": SCHEMA, "commit": git_commit(), "revision": args.rev, "revision_sha": sha,
           "rounds": args.rounds, "threads": 1, "results": results}
    atomic_write_text(args.out, json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
