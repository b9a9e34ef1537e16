"""The asv suite (bench/): its scratch folder, progress, memory metric, CUDA skip, the
commit page its plugin publishes, and asv.conf.json's pins."""

import html
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench  # noqa: E402
from bench import benchmarks  # noqa: E402


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """tempfile's folder for this test alone, so leftovers of other runs cannot confuse it."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _scratch_left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(benchmarks.SCRATCH_PREFIX))


def test_scratch_dir_is_removed_on_success_and_on_error(own_tmp):
    with benchmarks.scratch_dir() as work:
        assert Path(work).parent == own_tmp and Path(work).name.startswith("dta-asv-")
        (Path(work) / "runs").mkdir()
        (Path(work) / "runs" / "record.json").write_text("{}")
    assert _scratch_left(own_tmp) == []
    with pytest.raises(RuntimeError, match="stop"):
        with benchmarks.scratch_dir() as work:
            (Path(work) / "partial").write_text("x")
            raise RuntimeError("stop")
    assert _scratch_left(own_tmp) == []


class _Small(benchmarks.EmbeddedDefault):
    """EmbeddedDefault's own setup_cache on one method, one epoch."""

    params = (["none"], [1])
    preset_overrides = {"epochs": 1}


@pytest.mark.slow
def test_setup_cache_reports_progress_and_leaves_no_folder(own_tmp, capfd):
    results = _Small().setup_cache()
    err = capfd.readouterr().err
    assert set(results) == {"none-T1"}
    assert set(results["none-T1"]) == {"error_rate", "energy_uj", "acs", "macs",
                                       "firing_rate", "energy_memory_uj"}
    assert 0.0 <= results["none-T1"]["error_rate"] <= 1.0
    assert re.search(r"^dta-asv: _Small: 1/1 training none T=1 on digits \.\.\.$", err, re.M), err
    assert re.search(r"^dta-asv: _Small: 1/1 none T=1 done in \d+ s \(accuracy 0\.\d{3}", err,
                     re.M), err
    assert _scratch_left(own_tmp) == []


def test_setup_cache_that_fails_leaves_no_folder(own_tmp):
    class Broken(_Small):
        params = (["none"], [0])  # T=0: train refuses it

    with pytest.raises(ValueError, match="T must be >= 1"):
        Broken().setup_cache()
    assert _scratch_left(own_tmp) == []


def test_peak_bytes_replays_allocations():
    mib = 1 << 20

    def two_alive():
        a = torch.empty(mib, dtype=torch.uint8)
        b = torch.empty(mib, dtype=torch.uint8)
        del a, b

    def one_at_a_time():
        for _ in range(3):
            a = torch.empty(mib, dtype=torch.uint8)
            del a

    assert 2 * mib <= benchmarks.cpu_forward_peak_bytes(two_alive) < 2 * mib + 4096
    assert mib <= benchmarks.cpu_forward_peak_bytes(one_at_a_time) < mib + 4096


def test_forward_peak_memory_follows_T_and_method_and_repeats(capfd):
    """The forward's own peak, not the process: a few MB, deterministic, growing with T."""
    fwd = benchmarks.Forward()
    peak = {}
    for method in ("none", "dta"):
        for T in (2, 4):
            fwd.setup(method, T)
            runs = [fwd.track_forward_peak_mb(method, T) for _ in range(3)]
            assert runs[0] == runs[1] == runs[2], (method, T, runs)
            peak[method, T] = runs[0]
    assert all(0.5 < mb < 50 for mb in peak.values()), peak  # the torch import alone is ~700 MB
    for method in ("none", "dta"):
        assert 1.2 < peak[method, 4] / peak[method, 2] < 2.0, peak
    assert peak["dta", 4] > peak["none", 4], peak  # DTA's attention maps on top
    assert "profiler_start" not in capfd.readouterr().err  # kineto's per-call lines are dropped


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_steady_allocator_takes_on_linux():
    assert benchmarks.steady_allocator()


def test_no_process_memory_benchmark_left():
    from asv_runner.discovery import disc_benchmarks

    found = {b.name: b for b in disc_benchmarks(str(ROOT / "bench"))}
    assert "benchmarks.Forward.time_forward" in found
    assert "benchmarks.Forward.track_forward_peak_mb" in found
    assert not [name for name in found if ".peakmem_" in name or ".mem_" in name]
    for name in ("time_forward", "time_profile"):
        timing = found[f"benchmarks.Forward.{name}"]
        assert timing.rounds >= 2 and timing.number == 1  # rounds interleave between commits


def test_profile_benchmark_counts_the_forward_it_times():
    fwd = benchmarks.Forward()
    fwd.setup("dta", 2)
    fwd.time_profile("dta", 2)  # runs: the timed call is the public API on the timed net
    from dta.measure import profile

    report = profile(fwd.model, fwd.x)
    assert report.meta["T"] == 2 and report.totals["ac"] > 0 and report.unsupported == {}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the skip on a machine without CUDA")
def test_cuda_benchmarks_say_why_they_are_skipped():
    for cls in (benchmarks.ForwardCUDA, benchmarks.ForwardMemoryCUDA):
        with pytest.raises(NotImplementedError, match="no CUDA GPU on this machine"):
            cls().setup("none", 4)
    assert "n/a without a GPU" in benchmarks.ForwardCUDA.time_forward.pretty_name
    assert "n/a without a GPU" in benchmarks.ForwardMemoryCUDA.track_forward_peak_mb.pretty_name


def _git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_commit_page_has_an_anchor_per_linked_commit(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git("init", "-q", cwd=repo)
    hashes = []
    for i, message in enumerate(["first <commit>", "second & last"]):
        (repo / "f.txt").write_text(str(i))
        _git("add", "f.txt", cwd=repo)
        _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message, cwd=repo)
        hashes.append(_git("rev-parse", "HEAD", cwd=repo))
    from asv.config import Config

    conf = Config()  # what asv publish hands its publishers: html_dir, repo, hash_length
    conf.html_dir, conf.repo, conf.hash_length = str(tmp_path / "html"), str(repo), 8
    os.mkdir(conf.html_dir)
    bench.CommitPages.publish(conf, None, None, None, {hashes[0]: 0, hashes[1]: 1})
    page = (tmp_path / "html" / bench.PAGE).read_text()
    for full in hashes:
        assert f'id="{full[:8]}"' in page and f'id="{full}"' in page  # dashboard, feed
    assert html.escape("first <commit>") in page and "second &amp; last" in page
    assert page.index(hashes[1][:8]) < page.index(hashes[0][:8])  # newest first
    assert "<script" not in page


def test_every_benchmark_has_a_pinned_version():
    """A benchmark without ``.version`` is keyed by a hash of its source: any refactor of it
    would start its history anew (the module docstring and README promise pinned versions)."""
    import inspect

    found, unpinned = [], []
    for cls_name, cls in inspect.getmembers(benchmarks, inspect.isclass):
        if cls.__module__ != benchmarks.__name__:
            continue
        for name, fn in vars(cls).items():
            if callable(fn) and name.startswith(("time_", "track_", "peakmem_", "mem_")):
                found.append(f"{cls_name}.{name}")
                if not isinstance(getattr(fn, "version", None), str):
                    unpinned.append(f"{cls_name}.{name}")
    assert len(found) >= 10, found  # the suite's benchmarks were found
    assert unpinned == [], f"benchmarks without a pinned .version: {unpinned}"


def test_asv_conf_pins_what_pyproject_pins():
    from asv.util import load_json

    conf = load_json(str(ROOT / "asv.conf.json"), js_comments=True)
    assert "project_url" not in conf  # no public repository: no link to another project
    assert conf["show_commit_url"] == f"{bench.PAGE}#" and ".bench" in conf["plugins"]
    req = conf["matrix"]["req"]
    pins = {}
    for line in req:
        m = re.fullmatch(r"pip\+([\w.-]+)==(\S+)", line)
        pins.update({m[1]: m[2]} if m else {line: req[line]})
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    tools = {"asv", "virtualenv"}  # run asv; the benchmarks do not import them
    for dep in project["dependencies"]:
        name, version = dep.split("==")
        if name not in tools:
            assert pins.get(name) == version, f"asv.conf.json: pin {name}=={version}"
