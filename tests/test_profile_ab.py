"""scripts/profile_ab.py: the profiler's overhead against an earlier revision's, one process."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_IN_GIT = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                         capture_output=True).returncode == 0
pytestmark = pytest.mark.skipif(not _IN_GIT, reason="needs the repository's git history")


def _script():
    spec = importlib.util.spec_from_file_location("profile_ab", ROOT / "scripts" / "profile_ab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_head_against_itself_counts_the_same_and_writes_both_ratios(tmp_path, capsys):
    out = tmp_path / "ab.json"
    assert _script().main(["--rev", "HEAD", "--rounds", "1", "--networks", "spiking_resnet18",
                           "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == "dta-bench/profile-ab/v1" and len(doc["revision_sha"]) == 40
    (row,) = doc["results"]
    # the revision's dta.measure is a package of its own, counting the same network
    assert row["network"] == "spiking_resnet18" and row["same_counts"] is True
    assert row["profile_ratio"] > 0 and row["revision_profile_ratio"] > 0
    assert "counts identical" in capsys.readouterr().out


def test_the_revision_package_imports_this_trees_helpers(tmp_path):
    old, sha = _script().load_measure("HEAD", tmp_path)
    assert old.__name__ == f"dta_measure_{sha[:10]}" and Path(old.__file__).parent.parent == tmp_path
    from dta.measure import profile

    assert old.profile is not profile  # its own code, not this tree's module again


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    with pytest.raises(SystemExit, match="cannot read revision 'no-such-rev'"):
        _script().main(["--rev", "no-such-rev", "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit):
        _script().main(["--networks", "alexnet"])
    assert "unknown network(s) ['alexnet']" in capsys.readouterr().err
