"""``dta bench`` end to end on tiny runs: worker processes, seeds, a list of T, any-time and
per-epoch tables, a run stopped midway, and ``--resume``."""

import json

import pandas as pd
import pytest

from dta.bench import BenchConfig, run_bench
from dta.cli import main
from dta.records import read_records

TINY = {"epochs": 2, "limit_batches": 2, "width": 4}


def _cfg(tmp_path, **kw):
    values = dict(out=str(tmp_path / "results"), runs=str(tmp_path / "runs"),
                  data_root=str(tmp_path / "data"), latency_T=(1, 2), latency_batch=(1,),
                  latency_repeats=1, progress=False, measure_samples=8, train_overrides=TINY)
    values.update(kw)
    return BenchConfig(**values)


def test_bench_two_workers_seeds_and_T_list(tmp_path, capsys):
    cfg = _cfg(tmp_path, methods=("none", "gac"), Ts=(2, 3), seeds=(0, 1), workers=2)
    results = run_bench(cfg)
    out = tmp_path / "results" / "digits"
    for name in ("records.jsonl", "energy_vs_accuracy.csv", "energy_vs_accuracy.md",
                 "energy_vs_accuracy.tex", "per_layer.csv", "latency.csv", "pareto.png",
                 "anytime.csv", "anytime.png", "training.csv", "training.png"):
        assert (out / name).exists(), name
    assert not (out / "records.partial.jsonl").exists()  # the bench ended
    err = capsys.readouterr().err
    assert "2 worker process(es) of 1 thread(s)" in err
    records, problems = read_records([out])
    assert not problems and len(records) == 8
    assert [(r["T"], r["seed"], r["method"]) for r in records] == [
        (T, s, m) for T in (2, 3) for s in (0, 1) for m in ("none", "gac")]  # job order
    assert {r["environment"]["torch_threads"] for r in records} == {1}  # one thread per worker
    assert results["digits"][0]["accuracy"] == records[0]["accuracy"]

    table = pd.read_csv(out / "energy_vs_accuracy.csv")
    assert table[["method", "T"]].values.tolist() == [["none", 2], ["gac", 2], ["none", 3], ["gac", 3]]
    assert (table.seeds == 2).all()
    assert {"accuracy_ci_low", "accuracy_ci_high", "energy_uj_ci_low", "energy_uj_ci_high",
            "accuracy_vs_none", "energy_uj_vs_none_ci_high"} <= set(table.columns)
    assert (table.accuracy_ci_low <= table.accuracy).all()
    gac = table[table.method == "gac"].iloc[0]
    assert gac.energy_uj_vs_none > 0 and gac.paired_seeds == 2

    anytime = pd.read_csv(out / "anytime.csv")
    for r in records:  # t = 1..T per run; at t = T the run's accuracy and energy
        rows = anytime[(anytime.method == r["method"]) & (anytime["T"] == r["T"])
                       & (anytime.seed == r["seed"])]
        assert rows.t.tolist() == list(range(1, r["T"] + 1))
        assert rows.accuracy.iloc[-1] == pytest.approx(r["accuracy"])
        assert rows.energy_uj.iloc[-1] == pytest.approx(r["energy"]["uj"])
        assert rows.energy_uj.is_monotonic_increasing and rows.acs.is_monotonic_increasing
    training = pd.read_csv(out / "training.csv")
    assert len(training) == 8 * 2 and training.epoch.tolist()[:2] == [1, 2]
    assert (training.firing_rate > 0).all() and (training.acs > 0).all()
    assert (training.step_s > 0).all() and (training.probe_s > 0).all()
    assert (training[training.method == "gac"].attention_share > 0).all()
    latency = pd.read_csv(out / "latency.csv")
    assert sorted(set(latency[latency.method == "gac"]["T"])) == [2, 3]  # GAC cannot run at T=1
    assert sorted(set(latency[latency.method == "none"]["T"])) == [1, 2, 3]

    # dta report redraws everything from the records, including per-epoch firing and ACs
    (out / "training.png").unlink()
    assert main(["report", str(out), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "training.png").stat().st_size > 1000
    assert (tmp_path / "again" / "anytime.csv").read_text() == (out / "anytime.csv").read_text()


def test_a_stopped_bench_keeps_its_records_and_resume_skips_them(tmp_path, capsys):
    # GAC cannot be built at T=1: the second run fails after the first finished
    with pytest.raises(ValueError, match="T >= 2|T>=2|at least 2"):
        run_bench(_cfg(tmp_path, methods=("none", "gac"), Ts=(1,), seeds=(0,), workers=1))
    err = capsys.readouterr().err
    assert "failed" in err and "after 1 of 2 runs" in err and "--resume" in err
    out = tmp_path / "results" / "digits"
    partial = out / "records.partial.jsonl"
    assert not (out / "records.jsonl").exists()
    # a folder search reports the partial file and skips it; named, it is read
    records, problems = read_records([out])
    assert not records and len(problems) == 1 and "of a bench stopped midway" in problems[0]
    records, problems = read_records([partial])
    assert not problems and [r["method"] for r in records] == ["none"]
    assert main(["report", str(out)]) == 2
    assert "stopped midway; skipped" in capsys.readouterr().err

    # the finished run is not trained again with --resume
    ckpt = tmp_path / "runs" / "digits" / "none-T1-s0" / "last.pt"
    before = ckpt.stat().st_mtime_ns
    results = run_bench(_cfg(tmp_path, methods=("none",), Ts=(1,), seeds=(0,), workers=1,
                             resume=True))
    assert "1 of 1 runs already finished" in capsys.readouterr().err
    assert ckpt.stat().st_mtime_ns == before
    assert results["digits"][0]["accuracy"] == records[0]["accuracy"]
    assert (out / "records.jsonl").exists() and not partial.exists()
    # other settings are other runs: not skipped
    run_bench(_cfg(tmp_path, methods=("none",), Ts=(1,), seeds=(0,), workers=1, resume=True,
                   train_overrides={**TINY, "epochs": 1}))
    err = capsys.readouterr().err
    assert "0 of 1 runs already finished" in err
    assert "trained again (trained with another configuration): none-T1-s0" in err
    assert ckpt.stat().st_mtime_ns != before


def test_a_run_failing_in_a_worker_stops_the_bench_with_its_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="T >= 2|T>=2|at least 2"):
        run_bench(_cfg(tmp_path, methods=("gac",), Ts=(1,), seeds=(0, 1), workers=2))
    assert "failed" in capsys.readouterr().err
    assert not (tmp_path / "results" / "digits" / "records.jsonl").exists()


def test_measure_a_bench_checkpoint_with_real_samples(tmp_path, capsys):
    run_bench(_cfg(tmp_path, methods=("gac",), Ts=(4,), seeds=(0,), workers=1,
                   train_overrides={"epochs": 1, "limit_batches": 3}))
    gac = json.loads((tmp_path / "runs" / "digits" / "gac-T4-s0" / "record.json").read_text())
    assert gac["energy"]["attention_share"] > 0 and gac["ops"]["ac"] > 0  # the run's own record
    assert set(gac["energy"]["by_model"]) >= {"horowitz45-fp32", "loihi"}
    ckpt = tmp_path / "runs" / "digits" / "gac-T4-s0" / "last.pt"
    assert main(["measure", "--checkpoint", str(ckpt), "--data-root", str(tmp_path / "data"),
                 "--batch-size", "8", "--json", str(tmp_path / "m.json"), "--neurobench"]) == 0
    text = capsys.readouterr().out
    assert "input: first 8 test samples of digits" in text and "attention.sca.0" in text
    # the trained network's counts beside NeuroBench's: effective ops agree exactly
    rows = {line.split()[0]: line.split() for line in text.splitlines()
            if line.startswith(("Effective_ACs", "Effective_MACs"))}
    assert rows["Effective_ACs"][-1] == rows["Effective_MACs"][-1] == "0.0"
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["totals"]["ac"] == pytest.approx(gac["ops"]["ac"], rel=1e-9)
