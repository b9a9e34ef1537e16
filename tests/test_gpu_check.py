"""The GPU check: its CPU dry run end to end, the JSON schema, and the report drawn from a JSON."""

import copy
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dta.cli import main as dta_main
from dta.gpu_report import (GPU_CHECK_SCHEMA, GpuCheckError, device_slug, latency_figure,
                            latency_table, to_markdown, validate_gpu_check)

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """The dry run at its tiniest: two methods (gac cannot run at T=1), one compiled, asv for one."""
    tmp = tmp_path_factory.mktemp("gpu-check")
    gpu_results = ROOT / "results" / "gpu"
    before = sorted(gpu_results.iterdir()) if gpu_results.exists() else None
    # the dry run's asv results go to a temporary folder, not into the repository's history
    slug = device_slug(platform.machine() or "cpu")
    asv_machine = ROOT / ".asv" / "results" / f"gpu-check-dry-run-cpu-{slug}"
    asv_before = asv_machine.exists()
    env = {**os.environ, "TMPDIR": str(tmp)}  # the dry run's default output: a new temp folder
    proc = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--methods", "none,gac",
                           "--compile-methods", "none", "--budget-s", "600"],
                          capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)
    after = sorted(gpu_results.iterdir()) if gpu_results.exists() else None
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    written = re.search(r"^written: (\S+\.json), (\S+\.md), (\S+\.png)$", proc.stdout, re.M)
    assert written, proc.stdout[-2000:]
    return {"stdout": proc.stdout, "paths": [Path(p) for p in written.groups()], "tmp": tmp,
            "results_untouched": before == after,
            "asv_history_untouched": asv_before or not asv_machine.exists()}


@pytest.mark.slow
def test_dry_run_end_to_end(dry_run):
    out = dry_run["stdout"]
    assert out.count("DRY RUN") >= 2 and "These numbers say nothing about a GPU" in out
    json_path, md_path, png_path = dry_run["paths"]
    assert dry_run["tmp"] in json_path.parents and dry_run["results_untouched"]
    assert dry_run["asv_history_untouched"]
    assert json_path.name.startswith("dry-run-cpu-") and png_path.stat().st_size > 10_000
    data = validate_gpu_check(json.loads(json_path.read_text(), parse_constant=_no_nan))
    assert data["dry_run"] is True and data["complete"] is True and data["device"] == "cpu"
    assert data["errors"] == []
    cfg = data["config"]
    assert (cfg["width"], cfg["image"], cfg["Ts"], cfg["batches"]) == (4, 8, [1, 2], [1, 4])
    # latency: none at every T and batch; gac skipped at T=1, with its reason
    cells = {(r["method"], r["T"], r["batch"]) for r in data["latency"]}
    assert cells == {("none", 1, 1), ("none", 1, 4), ("none", 2, 1), ("none", 2, 4),
                     ("gac", 2, 1), ("gac", 2, 4)}
    assert all(0 < r["p10_ms"] <= r["median_ms"] <= r["p90_ms"] for r in data["latency"])
    assert any(s["section"] == "latency" and s["method"] == "gac" and "needs T >= 2" in s["reason"]
               for s in data["skipped"])
    # training step: float32 and bf16 + channels_last for both methods, no peak memory on a CPU
    steps = {(r["method"], r["setting"], r["amp"], r["channels_last"]) for r in data["train_step"]}
    assert steps == {(m, s, a, c) for m in ("none", "gac")
                     for s, a, c in (("float32", "off", False), ("bf16+channels_last", "bf16", True))}
    assert all(r["peak_mem_mib"] is None and r["median_ms"] > 0 for r in data["train_step"])
    # compile: forward at both batch sizes and both training steps of the one compiled method
    jobs = {(r["method"], r["what"], r["setting"], r["batch"]) for r in data["compile"]}
    assert jobs == {("none", "forward", "float32, eval", 4), ("none", "forward", "float32, eval", 1),
                    ("none", "train_step", "float32", 4),
                    ("none", "train_step", "bf16+channels_last", 4)}
    assert all(r["eager_ms"] > 0 and r["compiled_ms"] > 0 and r["compile_s"] > 0
               for r in data["compile"])
    assert cfg["compile_backend"] == "aot_eager"
    # asv ran the CUDA benchmark, which skips itself without CUDA
    asv = data["asv"]
    assert asv["status"] == "ok" and "NotImplementedError" in asv["note"]
    assert {r["params"][0] for r in asv["results"]} >= {"none", "gac"}
    assert all(r["seconds"] is None for r in asv["results"])
    md = md_path.read_text()
    assert "DRY RUN" in md and "## Forward latency (ms), batch 4" in md and "| gac " in md


def _no_nan(constant):
    raise AssertionError(f"the JSON holds {constant}: not valid JSON")


def _example() -> dict:
    """A small valid GPU check, as the script writes it."""
    def lat(method, T, batch, ms):
        return {"method": method, "T": T, "batch": batch, "median_ms": ms, "p10_ms": 0.9 * ms,
                "p90_ms": 1.2 * ms, "compiled": False}

    return {
        "schema": GPU_CHECK_SCHEMA, "dry_run": False, "device": "cuda:0",
        "device_name": "Example GPU 80GB", "complete": True, "commit": "abc",
        "config": {"width": 64, "image": 32, "in_channels": 3, "classes": 10,
                   "batches": [1, 64], "train_T": 6, "train_batch": 64,
                   "compile_backend": "inductor"},
        "latency": [lat(m, T, b, (1 + T) * (2 if m == "dta" else 1) * (10 if b == 64 else 1))
                    for m in ("none", "dta") for T in (1, 2, 4) for b in (1, 64)],
        "train_step": [{"method": "none", "setting": "float32", "amp": "off",
                        "channels_last": False, "compiled": False, "T": 6, "batch": 64,
                        "median_ms": 50.0, "p10_ms": 49.0, "p90_ms": 52.0,
                        "peak_mem_mib": 3000.0, "samples_per_s": 1280.0}],
        "compile": [{"method": "none", "what": "forward", "setting": "float32, eval", "T": 6,
                     "batch": 64, "eager_ms": 20.0, "compiled_ms": 10.0, "speedup": 2.0,
                     "compile_s": 40.0}],
        "asv": {"status": "ok", "results": [{"benchmark": "benchmarks.ForwardCUDA.time_forward",
                                             "params": ["none", "4"], "seconds": 0.004}]},
        "skipped": [{"section": "compile", "method": "gac", "reason": "time budget"}],
        "errors": [],
    }


def test_schema_accepts_the_example_and_names_what_is_wrong():
    validate_gpu_check(_example())
    for mutate, message in [
        (lambda d: d.update(schema="dta-bench/record/v1"), "not a GPU check"),
        (lambda d: d.pop("dry_run"), "field 'dry_run' must be bool"),
        (lambda d: d["latency"][3].pop("median_ms"), r"latency\[3\] lacks median_ms"),
        (lambda d: d["train_step"][0].pop("peak_mem_mib"), "train_step.0. lacks peak_mem_mib"),
    ]:
        bad = copy.deepcopy(_example())
        mutate(bad)
        with pytest.raises(GpuCheckError, match=message):
            validate_gpu_check(bad, "x.json")
    assert device_slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"


def test_latency_figure_draws_each_method_against_T_per_batch():
    data = _example()
    fig = latency_figure(data)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["batch 1", "batch 64"]
    for ax, batch in zip(axes, (1, 64)):
        lines = {bars.get_label(): bars.lines[0] for bars in ax.containers}  # errorbar: data line
        assert set(lines) == {"none", "dta"}
        for method, line in lines.items():
            want = [r["median_ms"] for r in data["latency"]
                    if r["method"] == method and r["batch"] == batch]
            assert list(line.get_xdata()) == [1, 2, 4] and list(line.get_ydata()) == want
    import matplotlib.pyplot as plt

    plt.close(fig)
    table = latency_table(data, 64)
    assert list(table.columns) == ["method", "T=1", "T=2", "T=4"]
    assert table.iloc[1]["T=2"] == "60.00 [54.00-72.00]"  # dta, T=2, batch 64: 3*2*10 ms
    md = to_markdown(data)
    assert "DRY RUN" not in md and "| none     | forward" in md and "time budget" in md


def test_dta_report_draws_gpu_checks_given_or_found(tmp_path, capsys):
    folder = tmp_path / "results" / "gpu"
    folder.mkdir(parents=True)
    (folder / "example-gpu.json").write_text(json.dumps(_example()))
    assert dta_main(["report", str(tmp_path / "results")]) == 0  # found in a folder: printed
    captured = capsys.readouterr()
    assert "GPU check" in captured.err and "not a dta-bench record" not in captured.err
    assert "Example GPU 80GB" in captured.out and "nothing written" in captured.err
    assert [p.name for p in folder.iterdir()] == ["example-gpu.json"]  # written only with --out
    assert dta_main(["report", str(tmp_path / "results"), "--out", str(folder)]) == 0
    assert (folder / "example-gpu-latency.png").stat().st_size > 10_000
    assert "Example GPU 80GB" in (folder / "example-gpu.md").read_text()
    out = tmp_path / "elsewhere"
    assert dta_main(["report", str(folder / "example-gpu.json"), "--out", str(out)]) == 0
    assert (out / "example-gpu-latency.png").exists()
    broken = _example()
    del broken["latency"][0]["p90_ms"]
    (folder / "example-gpu.json").write_text(json.dumps(broken))
    assert dta_main(["report", str(folder / "example-gpu.json")]) == 2  # nothing valid to report
    assert "latency[0] lacks p90_ms" in capsys.readouterr().err
