"""scripts/keep_perf.py: a make perf run kept under results/perf/ with its machine and ratios,
on the JSON pytest-benchmark really writes (a one-benchmark run of the perf conftest)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("keep_perf", ROOT / "scripts" / "keep_perf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def perf_json(tmp_path_factory):
    """pytest-benchmark's JSON of a run with one benchmark that records a profile ratio and
    the machine the way tests/perf does, and the run's printed summary."""
    tmp = tmp_path_factory.mktemp("perf")
    check = tmp / "test_one.py"
    check.write_text(
        "from tests.perf.timing import machine, report\n\n"
        "def test_profile_overhead(benchmark):\n"
        "    benchmark(lambda: None)\n"
        "    benchmark.extra_info.update(model='tiny', profile_ratio=1.125,\n"
        "        spikingjelly_synop_ratio=2.5, neurobench_synops_ratio=4.75, machine=machine())\n"
        "    report('tiny: profile()/plain forward 1.125x')\n")
    out_json = tmp / "perf.json"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
         "-c", str(ROOT / "pyproject.toml"), "--confcutdir", str(ROOT / "tests" / "perf"),
         "-p", "tests.perf.conftest", "--benchmark-enable", "--benchmark-min-rounds=1",
         "--benchmark-max-time=0.01", f"--benchmark-json={out_json}", str(check)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return out_json, run.stdout


def test_the_summary_names_the_machine(perf_json):
    _, stdout = perf_json
    summary = stdout.split("dta-bench performance ratios")[1]
    assert "machine: " in summary and " CPUs, torch " in summary


def test_a_run_is_kept_under_its_machine_and_commit(perf_json, tmp_path, capsys):
    from dta.records import read_records

    src, _ = perf_json
    keep = _script()
    assert keep.main(["--src", str(src), "--out", str(tmp_path), "--label", "ci"]) == 0
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == 1
    kept = json.loads(files[0].read_text())
    original = json.loads(src.read_text())
    assert kept["schema"] == keep.SCHEMA and kept["label"] == "ci"
    assert kept["pytest_benchmark"] == original  # the whole run, as pytest-benchmark wrote it
    info = kept["ratios"]["test_profile_overhead"]
    assert info["profile_ratio"] == 1.125 and kept["machine"] == info["machine"]
    assert files[0].parent.name == keep.slug(kept["machine"])
    commit = original["commit_info"].get("id", "")
    stamp = "".join(c for c in original["datetime"] if c.isdigit() or c == "T")[:15]
    assert files[0].name.endswith(f"-ci-{stamp}.json")
    assert files[0].name.startswith(commit[:7] if commit not in ("", "unknown", "unversioned")
                                    else "nocommit")
    assert "tiny: profile()/plain forward 1.125x" in capsys.readouterr().out
    # kept once: a second keep of the same run writes nothing and says so
    assert keep.main(["--src", str(src), "--out", str(tmp_path), "--label", "ci"]) == 2
    assert "kept already" in capsys.readouterr().err
    assert json.loads(files[0].read_text()) == kept
    # not a result record: a results folder holding it still reads, with nothing to report
    assert read_records([tmp_path]) == ([], [])


def test_a_run_from_before_the_machine_line_lands_in_the_same_folder(perf_json):
    src, _ = perf_json
    keep = _script()
    data = json.loads(src.read_text())
    new = keep.kept(data, "x")["machine"]
    for bench in data["benchmarks"]:
        bench["extra_info"].pop("machine", None)
    old = keep.kept(data, "x")["machine"]  # from pytest-benchmark's cpuinfo
    cpu = data["machine_info"]["cpu"]
    assert old.startswith(cpu["brand_raw"]) and f", {cpu['count']} CPUs" in old
    if "family" in cpu and "model" in cpu:
        assert f"(family {cpu['family']}, model {cpu['model']})" in old
    if new.startswith(cpu["brand_raw"] + " ("):  # /proc/cpuinfo names the CPU as cpuinfo does
        assert keep.slug(old) == keep.slug(new)


def test_bad_input_is_refused_with_what_to_do(tmp_path, capsys):
    keep = _script()
    assert keep.main(["--src", str(tmp_path / "missing.json"), "--out", str(tmp_path)]) == 2
    assert "run `make perf` first" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "dta-bench/record/1"}))
    assert keep.main(["--src", str(other), "--out", str(tmp_path)]) == 2
    assert "not a pytest-benchmark JSON" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        keep.main(["--src", str(other), "--out", str(tmp_path), "--label", "../x"])
    assert not list(tmp_path.rglob("*/*.json"))
