"""One function writes the report files: ``dta report`` on a folder ``dta bench`` wrote gives
its files byte for byte, and writes nothing at all unless ``--out`` asks it to."""

import json

from PIL import Image

from dta.bench import BenchConfig, run_bench
from dta.cli import main
from dta.gpu_report import GPU_CHECK_SCHEMA

#: the smallest bench that still has what the tables show: two seeds (intervals), ``ann``
#: (its ``qnn`` row and the x ANN columns), per-epoch and any-time data
TINY = {"epochs": 1, "limit_batches": 2, "width": 4}
#: what `dta bench` writes that is not drawn from the records (the records themselves, and
#: measurements only the bench makes)
BENCH_ONLY = {"records.jsonl", "per_layer.csv", "latency.csv"}


def _gpu_check() -> dict:
    rows = [{"method": m, "T": T, "batch": 1, "median_ms": 1.0 + T, "p10_ms": 0.9 + T,
             "p90_ms": 1.2 + T} for m in ("none", "dta") for T in (1, 2)]
    return {"schema": GPU_CHECK_SCHEMA, "dry_run": True, "device": "cpu", "device_name": "Test CPU",
            "complete": True, "config": {"batches": [1]}, "latency": rows, "train_step": [],
            "compile": [], "asv": {"status": "skipped"}, "skipped": [], "errors": []}


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_report_reproduces_the_bench_files_and_writes_only_when_asked(tmp_path, capsys):
    results = tmp_path / "results"
    run_bench(BenchConfig(methods=("none", "ann"), Ts=(2,), seeds=(0, 1), workers=1,
                          out=str(results), runs=str(tmp_path / "runs"),
                          data_root=str(tmp_path / "data"), latency_T=(2,), latency_batch=(1,),
                          latency_repeats=1, progress=False, measure_samples=8,
                          train_overrides=TINY))
    (results / "gpu").mkdir()
    (results / "gpu" / "test-cpu.json").write_text(json.dumps(_gpu_check()))
    out = results / "digits"
    bench = _files(out)
    assert {"pareto.png", "anytime.png", "training.png", "energy_vs_accuracy.md"} <= set(bench)
    for name in ("pareto.png", "anytime.png", "training.png"):  # nothing that dates a PNG
        assert set(Image.open(out / name).text) == {"Software"}, name
    capsys.readouterr()

    # without --out: the tables on stdout, where --out would write on stderr, no file touched
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    for paths in ([out], [results], [results / "gpu" / "test-cpu.json"]):
        assert main(["report", *map(str, paths)]) == 0
        captured = capsys.readouterr()
        assert "nothing written; --out DIR writes" in captured.err
        assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
    assert main(["report", str(results)]) == 0
    captured = capsys.readouterr()
    assert "| none " in captured.out and "| qnn " in captured.out  # the records' table
    assert "# GPU check: Test CPU" in captured.out
    assert f"--out {results} redraws them there" in captured.err
    assert "test-cpu.md and test-cpu-latency.png into DIR" in captured.err

    # --out elsewhere: every file it writes is the bench's, byte for byte
    again = tmp_path / "again"
    assert main(["report", str(out), "--out", str(again)]) == 0
    written = _files(again)
    assert set(written) == set(bench) - BENCH_ONLY
    for name, data in written.items():
        assert data == bench[name], f"{name} differs from what dta bench wrote"
    # --out the bench's own folder: rewritten, byte for byte the same
    assert main(["report", str(out), "--out", str(out)]) == 0
    assert _files(out) == bench
    # GPU checks are written with --out only, into DIR
    assert main(["report", str(results / "gpu"), "--out", str(tmp_path / "gpu")]) == 0
    assert set(_files(tmp_path / "gpu")) == {"test-cpu.md", "test-cpu-latency.png"}
    assert set(_files(results / "gpu")) == {"test-cpu.json"}
