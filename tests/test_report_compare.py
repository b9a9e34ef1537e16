"""Tables from records, the direction-aware compare gate, and the bench end to end."""

import json
from pathlib import Path

import pandas as pd
import pytest

from dta.cli import main
from dta.compare import compare_records, parse_thresholds
from dta.records import SCHEMA, read_records
from dta.report import energy_vs_accuracy, pareto_front, to_latex, to_markdown, update_readme


def rec(method="dta", seed=0, accuracy=0.95, energy=10.0, ac=1000.0, mac=200.0, latency=5.0,
        commit="abc", dataset="digits", T=4):
    return {
        "schema": SCHEMA, "dataset": dataset, "method": method, "model": "ms_resnet18", "T": T,
        "seed": seed, "commit": commit, "params": 1000, "attention_params": 10,
        "accuracy": accuracy, "ops": {"ac": ac, "mac": mac}, "firing": {"rate": 0.1},
        "energy": {"uj": energy, "attention_share": 0.25, "model": "horowitz45-fp32"},
        "latency_ms": latency,
    }


def statuses(table, metric):
    return table[table.metric == metric].status.tolist()


def test_directions_and_thresholds():
    old = [rec("none"), rec("dta")]
    same, failed = compare_records(old, [rec("none"), rec("dta")])
    assert not failed and set(same.status) <= {"ok", "info"}
    # accuracy down 3 points (> 2), energy down 10%: one regression, one improvement
    new = [rec("none"), rec("dta", accuracy=0.92, energy=9.0)]
    table, failed = compare_records(old, new)
    assert failed
    dta = table[table.method == "dta"]
    assert statuses(dta, "accuracy") == ["REGRESSION"] and statuses(dta, "energy_uj") == ["better"]
    # energy up 4% passes (threshold 5%), up 6% fails; ops likewise; accuracy up is fine
    assert not compare_records(old, [rec("none"), rec("dta", energy=10.4, accuracy=0.99)])[1]
    table, failed = compare_records(old, [rec("none"), rec("dta", energy=10.6)])
    assert failed and statuses(table[table.method == "dta"], "energy_uj") == ["REGRESSION"]
    assert compare_records(old, [rec("none"), rec("dta", mac=250.0)])[1]
    # a configurable threshold
    assert not compare_records(old, [rec("none"), rec("dta", energy=10.6)],
                               thresholds=parse_thresholds(["energy_uj=10%"]))[1]
    # latency is noisy: 40% slower passes by default, skipping it removes it entirely
    table, failed = compare_records(old, [rec("none"), rec("dta", latency=7.0)])
    assert not failed
    table, _ = compare_records(old, [rec("none"), rec("dta")], skip=("latency_ms",))
    assert "latency_ms" not in set(table.metric)


def test_missing_and_new_records():
    old = [rec("none"), rec("dta")]
    table, failed = compare_records(old, [rec("none"), rec("gac")])
    assert failed and "missing" in set(table.status) and "new" in set(table.status)
    assert not compare_records(old, [rec("none")], allow_missing=True)[1]


def test_threshold_parsing_errors():
    assert parse_thresholds(["accuracy=0.01", "energy_uj=3%"]) == {"accuracy": 0.01, "energy_uj": 0.03}
    with pytest.raises(ValueError, match="METRIC=VALUE"):
        parse_thresholds(["speed=1"])
    with pytest.raises(ValueError, match="not a number"):
        parse_thresholds(["accuracy=abc"])


def _write(path: Path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")


def test_compare_cli_exit_codes_and_bad_files(tmp_path, capsys):
    _write(tmp_path / "old" / "records.jsonl", [rec("none"), rec("dta")])
    _write(tmp_path / "new" / "records.jsonl", [rec("none"), rec("dta", energy=20.0)])
    (tmp_path / "new" / "junk.json").write_text("[1, 2")
    (tmp_path / "new" / "other.json").write_text(json.dumps({"schema": "someone/else"}))
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "old")]) == 0
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "new")]) == 1
    err = capsys.readouterr().err
    assert "junk.json: not valid JSON" in err and "other.json: not a dta-bench record" in err
    assert "FAILED: 1 regression" in err
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "new"),
                 "--threshold", "energy_uj=200%"]) == 0
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "nothing")]) == 2


def test_energy_vs_accuracy_table_and_pareto():
    records = [rec("none", 0, 0.90, 5.0), rec("none", 1, 0.92, 5.0), rec("dta", 0, 0.95, 8.0),
               rec("gac", 0, 0.93, 9.0)]
    table = energy_vs_accuracy(records)
    assert table.method.tolist() == ["none", "dta", "gac"]
    none = table.iloc[0]
    assert none.seeds == 2 and none.accuracy == pytest.approx(0.91)
    assert none.accuracy_std == pytest.approx(0.01)
    assert pareto_front(table).method.tolist() == ["none", "dta"]  # gac is dominated by dta
    md = to_markdown(table)
    assert "| none" in md and "91.00 ± 1.00" in md and "energy (µJ)" in md
    tex = to_latex(table)
    assert r"\begin{tabular}" in tex and r"$\pm$" in tex and r"energy ($\mu$J)" in tex


def test_readme_section_is_replaced_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench-table:start -->\nold\n<!-- bench-table:end -->\nafter\n")
    assert update_readme(readme, "| a |\n|---|\n| 1 |")
    text = readme.read_text()
    assert "old" not in text and "| 1 |" in text and text.endswith("after\n")
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers")
    assert not update_readme(plain, "x")


def test_report_cli_skips_bad_files(tmp_path, capsys):
    _write(tmp_path / "r" / "records.jsonl", [rec("none"), rec("dta")])
    (tmp_path / "r" / "bad.json").write_text("{}")
    assert main(["report", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "bad.json" in captured.err
    assert (tmp_path / "r" / "energy_vs_accuracy.tex").exists()
    assert (tmp_path / "r" / "pareto.png").stat().st_size > 1000
    assert pd.read_csv(tmp_path / "r" / "energy_vs_accuracy.csv").method.tolist() == ["none", "dta"]


def test_bench_end_to_end_small(tmp_path, capsys):
    from dta.bench import BenchConfig, run_bench

    cfg = BenchConfig(methods=("none", "gac"), out=str(tmp_path / "results"),
                      runs=str(tmp_path / "runs"), data_root=str(tmp_path / "data"),
                      latency_T=(1, 2), latency_batch=(1,), latency_repeats=1, progress=False,
                      measure_samples=8, train_overrides={"epochs": 1, "limit_batches": 3})
    results = run_bench(cfg)
    out = tmp_path / "results" / "digits"
    for name in ("records.jsonl", "energy_vs_accuracy.csv", "energy_vs_accuracy.md",
                 "energy_vs_accuracy.tex", "per_layer.csv", "latency.csv", "pareto.png"):
        assert (out / name).exists(), name
    records, problems = read_records([out])
    assert not problems and [r["method"] for r in records] == ["none", "gac"]
    gac = records[1]
    assert gac["energy"]["attention_share"] > 0 and gac["ops"]["ac"] > 0
    assert set(gac["energy"]["by_model"]) >= {"horowitz45-fp32", "loihi"}
    assert gac["latency_ms"] is not None and gac["measured_on"]["samples"] == 8
    latency = pd.read_csv(out / "latency.csv")
    # the trained T joins the sweep; GAC cannot run at T=1
    assert sorted(latency[latency.method == "gac"]["T"]) == [2, 4]
    assert sorted(latency[latency.method == "none"]["T"]) == [1, 2, 4]
    per_layer = pd.read_csv(out / "per_layer.csv")
    assert {"method", "layer", "t", "ac", "mac", "firing_rate"} <= set(per_layer.columns)
    assert "T=1 skipped" in capsys.readouterr().err
    assert results["digits"][0]["accuracy"] == records[0]["accuracy"]

    # dta measure on the checkpoint the bench left, with real test samples
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
    assert report["totals"]["ac"] == pytest.approx(gac["ops"]["ac"] * 1.0, rel=1e-9)
