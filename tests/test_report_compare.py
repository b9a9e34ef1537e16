"""Tables with intervals from records, old records, and the direction- and noise-aware compare gate."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from dta.cli import main
from dta.compare import NothingToCompare, compare, compare_records, format_table, parse_thresholds
from dta.records import SCHEMA, TRAINING_SCHEMA, declared_other, read_records, validate
from dta.report import (FIGURES, energy_vs_accuracy, pareto_front, t_interval, to_latex,
                        to_markdown, update_readme, write_tables)

#: Two records exactly as ``dta bench`` wrote them at commit 3c67dfe (one seed, schema v1,
#: before per-epoch data, any-time data and intervals existed); long lists trimmed.
OLD_RECORDS = [json.loads(line) for line in (
    '{"T": 4, "accuracy": 0.9833333333333333, "attention_params": 0, "best_accuracy": 0.9833333333333333, "commit": "3c67dfec3db1854aaedb6417190d99ed4204f489", "config": {"T": 4, "attention": "none", "augment": false, "batch_size": 64, "cutmix_alpha": 0.0, "cutmix_prob": 0.0, "data_root": "data", "dataset": "digits", "device": "auto", "download": false, "epochs": 4, "label_smoothing": 0.0, "limit_batches": 0, "log_every": 10, "lr": 0.1, "mixup_alpha": 0.0, "model": "ms_resnet18", "momentum": 0.9, "num_workers": 0, "out": "runs/bench/digits/none-T4-s0", "overwrite": true, "preset": "digits", "progress": false, "resume": false, "seed": 0, "threads": 0, "weight_decay": 5e-05, "width": 16}, "dataset": "digits", "energy": {"attention_share": 0.0, "by_component": {"attention": 0.0, "backbone": 7.226090875, "encoding": 0.07774, "neurons": 0.39567359999999996}, "by_model": {"horowitz45-fp16": 3.1502107625, "horowitz45-fp32": 7.699504475, "horowitz45-int8": 0.29492279125000004, "loihi": 148.05601072500005}, "model": "horowitz45-fp32", "per_step": [1.75778380625, 2.0138259499999998, 1.9324763062499999, 1.9954184124999998], "uj": 7.699504475}, "environment": {"cpu_count": 2, "cuda": null, "python": "3.11.7", "spikingjelly": "2.0.0", "torch": "2.14.1+cu130", "torch_threads": 2}, "firing": {"per_step": [0.21, 0.26, 0.25, 0.27], "rate": 0.2517, "sparsity": 0.7483}, "latency_ms": 23.6, "measured_on": {"samples": 64, "split": "test"}, "method": "none", "model": "ms_resnet18", "ops": {"ac": 6003496.0, "dense_macs": 35389440.0, "fold_bn": true, "mac": 413192.0, "neuron_updates": 90112.0, "other": 0.0, "select": 0.0}, "params": 784378, "schema": "dta-bench/record/v1", "seed": 0, "train": {"device": "cpu", "epochs": 4, "final_loss": 0.04, "samples_per_s": 140.1, "seconds": 40.2, "world_size": 1}, "width": 16}',
    '{"T": 4, "accuracy": 0.9861111111111112, "attention_params": 17906, "best_accuracy": 0.9861111111111112, "commit": "3c67dfec3db1854aaedb6417190d99ed4204f489", "config": {"T": 4, "attention": "dta", "augment": false, "batch_size": 64, "cutmix_alpha": 0.0, "cutmix_prob": 0.0, "data_root": "data", "dataset": "digits", "device": "auto", "download": false, "epochs": 4, "label_smoothing": 0.0, "limit_batches": 0, "log_every": 10, "lr": 0.1, "mixup_alpha": 0.0, "model": "ms_resnet18", "momentum": 0.9, "num_workers": 0, "out": "runs/bench/digits/dta-T4-s0", "overwrite": true, "preset": "digits", "progress": false, "resume": false, "seed": 0, "threads": 0, "weight_decay": 5e-05, "width": 16}, "dataset": "digits", "energy": {"attention_share": 0.37872518161887264, "attention_share_by_model": {"horowitz45-fp16": 0.3257608363352733, "horowitz45-fp32": 0.37872518161887264, "horowitz45-int8": 0.4454412652533916, "loihi": 0.03284361390907287}, "by_component": {"attention": 4.1365956, "backbone": 6.29356946875, "encoding": 0.07774, "neurons": 0.4145152}, "by_model": {"horowitz45-fp16": 4.147391734375001, "horowitz45-fp32": 10.92242026875, "horowitz45-int8": 0.4636402509375, "loihi": 140.01461631875}, "model": "horowitz45-fp32", "per_step": [2.6114543375, 2.81004215, 2.6926834562499997, 2.808240325], "uj": 10.92242026875}, "environment": {"cpu_count": 2, "cuda": null, "platform": "Linux-6.18.44-fc-v782-x86_64-with-glibc2.36", "processor": "x86_64", "python": "3.11.7", "spikingjelly": "2.0.0", "torch": "2.14.1+cu130", "torch_threads": 2}, "firing": {"per_layer": {"final_lif": 0.34247589111328125, "stages.0.0.lif1": 0.10886383056640625}, "per_step": [0.2113827792080966, 0.2462830977006392, 0.22274225408380682, 0.2470120516690341], "rate": 0.23185504566539417, "sparsity": 0.7681449543346058}, "latency_ms": 25.299939999968046, "measured_on": {"samples": 64, "split": "test"}, "method": "dta", "model": "ms_resnet18", "ops": {"ac": 5498717.5, "dense_macs": 35546880.0, "fold_bn": true, "mac": 1200155.15625, "neuron_updates": 90112.0, "other": 8336.0, "select": 4096.0}, "params": 802284, "schema": "dta-bench/record/v1", "seed": 0, "train": {"device": "cpu", "epochs": 4, "final_loss": 0.03414132645147579, "samples_per_s": 138.26632263118088, "seconds": 41.696935027004656, "world_size": 1}, "width": 16}',
)]


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


#: ``results/bench/training.json`` as scripts/bench_training.py writes it (values trimmed)
TRAINING = {"schema": TRAINING_SCHEMA, "commit": "6baa786+dirty",
            "environment": {"python": "3.11.7"},
            "throughput": [{"model": "ms_resnet18", "samples_per_s": 146.4}],
            "accuracy_bar": {"bar": 0.9, "passed": True, "accuracy": {"dta": 0.986}}}


def test_compare_cli_exit_codes_and_bad_files(tmp_path, capsys):
    _write(tmp_path / "old" / "records.jsonl", [rec("none"), rec("dta")])
    _write(tmp_path / "new" / "records.jsonl", [rec("none"), rec("dta", energy=20.0)])
    (tmp_path / "new" / "junk.json").write_text("[1, 2")
    stripped = {k: v for k, v in rec("gac").items() if k != "schema"}
    (tmp_path / "new" / "stripped.json").write_text(json.dumps(stripped))
    (tmp_path / "new" / "v9.json").write_text(json.dumps(rec("gac") | {"schema": "dta-bench/record/v9"}))
    # JSON that says it is something else is not a record, and not a problem
    (tmp_path / "new" / "other.json").write_text(json.dumps({"schema": "someone/else"}))
    (tmp_path / "new" / "gpu.json").write_text(json.dumps({"schema": "dta-bench/gpu-check/v1"}))
    (tmp_path / "new" / "bench").mkdir()
    (tmp_path / "new" / "bench" / "training.json").write_text(json.dumps(TRAINING))
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "old")]) == 0
    assert "compared 2 (dataset, method, T) group(s): 2 record pair(s)" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "new")]) == 1
    err = capsys.readouterr().err
    assert "junk.json: not valid JSON" in err and "stripped.json: not a dta-bench record" in err
    assert "v9.json: not a dta-bench record (schema 'dta-bench/record/v9'" in err
    assert "other.json" not in err and "gpu.json" not in err and "training" not in err
    assert "FAILED: 1 regression" in err
    # named explicitly, a file of another schema is said to be one
    assert main(["compare", str(tmp_path / "new" / "bench" / "training.json"),
                 str(tmp_path / "old")]) == 2
    err = capsys.readouterr().err
    assert f"training.json: a {TRAINING_SCHEMA} file, not a result record" in err
    assert "no valid records in OLD" in err
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "new"),
                 "--threshold", "energy_uj=200%"]) == 0
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "nothing")]) == 2


def test_student_t_interval_by_hand():
    # n = 3, mean 2, s = 1: half-width t(0.975, 2) / sqrt(3) = 4.302653 / 1.732051 = 2.484138
    mean, low, high = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and low == pytest.approx(2 - 2.484138, abs=1e-6)
    assert high == pytest.approx(2 + 2.484138, abs=1e-6)
    assert t_interval([5.0])[0] == 5.0 and all(map(math.isnan, t_interval([5.0])[1:]))
    assert all(map(math.isnan, t_interval([])))


def test_energy_vs_accuracy_intervals_and_paired_differences():
    none = [0.90, 0.95, 0.99]
    records = [rec("none", s, a, 5.0 + s) for s, a in enumerate(none)]
    # dta: one point better than none on every seed: the seeds vary a lot, the pairs do not
    records += [rec("dta", s, a + 0.01, 8.0 + s) for s, a in enumerate(none)]
    # gac: up, down, equal: the paired interval contains 0
    records += [rec("gac", s, a + d, 9.0) for s, (a, d) in enumerate(zip(none, (0.02, -0.01, 0.0)))]
    table = energy_vs_accuracy(records).set_index("method")
    assert table.loc["none", "seeds"] == 3 and table.loc["none", "accuracy"] == pytest.approx(0.9466667)
    mean, low, high = t_interval(none)
    assert (table.loc["none", "accuracy_ci_low"], table.loc["none", "accuracy_ci_high"]) == \
        pytest.approx((low, high))
    assert table.loc["dta", "accuracy_vs_none"] == pytest.approx(0.01)
    assert table.loc["dta", "accuracy_vs_none_ci_high"] == pytest.approx(0.01)  # no spread
    assert table.loc["dta", "accuracy_vs_none_significant"] is True
    assert table.loc["gac", "accuracy_vs_none_significant"] is False
    assert table.loc["dta", "energy_uj_vs_none"] == pytest.approx(3.0)
    assert math.isnan(table.loc["none", "accuracy_vs_none"]) and table.loc["dta", "paired_seeds"] == 3
    for f in FIGURES:  # every figure: mean and interval columns
        assert {f.name, f"{f.name}_ci_low", f"{f.name}_ci_high"} <= set(table.columns)
    md = to_markdown(table.reset_index())
    dta_row = next(line for line in md.splitlines() if line.startswith("| dta"))
    gac_row = next(line for line in md.splitlines() if line.startswith("| gac"))
    assert "+1.00 ± 0.00 |" in dta_row and "n.s." not in dta_row
    assert "n.s." in gac_row and "±" in gac_row
    assert "Student-t 95% interval" in md and "n.s.: the interval contains 0" in md
    tex = to_latex(table.reset_index())
    assert r"\begin{tabular}" in tex and r"$\pm$" in tex and r"energy ($\mu$J)" in tex
    assert r"$\Delta$ accuracy (pp) vs none" in tex and "n.s." in tex


def test_one_more_energy_figure_is_one_line(monkeypatch):
    import dta.report as report

    loihi = report.Figure("loihi_uj", ("energy", "by_model", "loihi"), "energy, uJ (loihi)",
                          "loihi (µJ)", interval=True, paired=True)
    monkeypatch.setattr(report, "FIGURES", [*report.FIGURES, loihi])
    records = []
    for s, uj in enumerate((100.0, 110.0, 120.0)):
        for method, extra in (("none", 0.0), ("dta", 5.0)):
            r = rec(method, s)
            r["energy"]["by_model"] = {"loihi": uj + extra}
            records.append(r)
    table = report.energy_vs_accuracy(records).set_index("method")
    assert table.loc["none", "loihi_uj"] == 110.0 and table.loc["dta", "loihi_uj_vs_none"] == 5.0
    assert table.loc["none", "loihi_uj_ci_high"] == pytest.approx(110 + 4.302653 * 10 / math.sqrt(3))
    md = report.to_markdown(table.reset_index())
    assert "loihi (µJ)" in md and "115.000 ± 24.841" in md and "Δ loihi (µJ) vs none" in md


def test_single_seed_table_says_it_has_no_interval_and_pareto():
    records = [rec("none", 0, 0.90, 5.0), rec("dta", 0, 0.95, 8.0), rec("gac", 0, 0.93, 9.0)]
    table = energy_vs_accuracy(records)
    assert table.method.tolist() == ["none", "dta", "gac"] and set(table.seeds) == {1}
    assert table["accuracy_ci_low"].isna().all() and table["accuracy_vs_none_ci_low"].isna().all()
    assert pareto_front(table).method.tolist() == ["none", "dta"]  # gac is dominated by dta
    md = to_markdown(table)
    rows = md.split("\n\n")[0]
    assert "1 seed per row: no interval" in md and "±" not in rows and "n.s." not in rows
    assert " +5.00 |" in next(line for line in rows.splitlines() if line.startswith("| dta"))


def test_old_single_seed_records_still_load_tabulate_and_compare(tmp_path):
    for r in OLD_RECORDS:
        validate(r)
    _write(tmp_path / "old" / "records.jsonl", OLD_RECORDS)
    records, problems = read_records([tmp_path / "old"], measured=True)
    assert not problems and len(records) == 2
    paths = write_tables(records, tmp_path / "out")
    assert set(paths) == {"csv", "md", "tex", "png"}  # no any-time or per-epoch data in them
    table = pd.read_csv(paths["csv"])
    assert table.seeds.tolist() == [1, 1] and table.accuracy.tolist() == [r["accuracy"] for r in records]
    # an old record against itself, and against a new three-seed run of the same methods
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "old")]) == 0
    new = [dict(r, seed=s, commit="new") for r in OLD_RECORDS for s in (0, 1, 2)]
    table, failed = compare_records(OLD_RECORDS, new)
    assert not failed and set(table[table.metric == "accuracy"].seeds) == {"0"}  # over seed 0
    assert set(table.status) == {"ok", "info", "new"}


def test_compare_is_noise_aware():
    """Several seeds on both sides: a change beyond the threshold is a regression only when
    the two sides' 95 % intervals do not overlap."""
    old = [rec("dta", s, a, commit="old") for s, a in enumerate((0.950, 0.951, 0.949))]
    old += [rec("gac", s, a, commit="old") for s, a in enumerate((0.95, 0.99, 0.91))]
    # dta: -5 points, tight seeds: flagged; gac: -2.7 points (> 2) but seeds spread +-4: noise
    new = [rec("dta", s, a, commit="new") for s, a in enumerate((0.900, 0.901, 0.899))]
    new += [rec("gac", s, a, commit="new") for s, a in enumerate((0.89, 0.97, 0.91))]
    table, failed = compare_records(old, new)
    assert failed
    acc = table[table.metric == "accuracy"].set_index("method")
    assert acc.loc["dta", "status"] == "REGRESSION" and acc.loc["gac", "status"] == "within noise"
    assert acc.loc["gac", "change"] == pytest.approx(-0.0267, abs=1e-4)
    assert acc.loc["gac", "old_low"] < acc.loc["gac", "new_high"]
    assert acc.loc["dta", "seeds"] == "0,1,2"
    assert not compare_records([r for r in old if r["method"] == "gac"],
                               [r for r in new if r["method"] == "gac"])[1]
    text = format_table(table)
    assert "within noise" in text and "REGRESSION" in text and "[0.9" in text
    # one seed on a side: no interval, the threshold alone decides (the old rule)
    one = [r for r in new if r["method"] == "gac" and r["seed"] == 0]
    table, failed = compare_records([r for r in old if r["method"] == "gac"], one,
                                    allow_missing=True)
    assert failed and statuses(table, "accuracy") == ["REGRESSION"]


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
    unmeasured = {k: v for k, v in rec("gac").items() if k not in ("ops", "firing", "energy")}
    (tmp_path / "r" / "run").mkdir()
    (tmp_path / "r" / "run" / "record.json").write_text(json.dumps(unmeasured))
    assert main(["report", str(tmp_path / "r"), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "bad.json" in captured.err
    assert "record.json: a training record without energy measurement" in captured.err
    assert (tmp_path / "out" / "energy_vs_accuracy.tex").exists()
    assert (tmp_path / "out" / "pareto.png").stat().st_size > 1000
    assert pd.read_csv(tmp_path / "out" / "energy_vs_accuracy.csv").method.tolist() == ["none", "dta"]
    assert not (tmp_path / "r" / "energy_vs_accuracy.csv").exists()  # only into --out


def test_compare_of_nothing_in_common_fails_naming_both_sides(tmp_path, capsys):
    """Two datasets share no record: exit 2 with what each side holds, not missing+new rows,
    and --allow-missing does not make a gate that compared nothing pass."""
    digits = [rec(m, s) for m in ("none", "dta") for s in (0, 1)]
    dvs = [rec(m, s, dataset="dvs-digits", T=8) for m in ("none", "dta") for s in (0, 1)]
    with pytest.raises(NothingToCompare) as err:
        compare(digits, dvs, labels=("OLD (a)", "NEW (b)"))
    text = str(err.value)
    assert ("OLD (a) holds 4 record(s): dataset digits; methods none,dta; T 4; seeds 0,1"
            in text)
    assert "NEW (b) holds 4 record(s): dataset dvs-digits; methods none,dta; T 8; seeds 0,1" in text
    assert "the same dataset" in text
    with pytest.raises(NothingToCompare, match="share no method at the same T"):
        compare_records(digits, [rec("gac"), rec("dta", T=2)], allow_missing=True)
    _write(tmp_path / "digits" / "records.jsonl", digits)
    _write(tmp_path / "dvs" / "records.jsonl", dvs)
    for extra in ([], ["--allow-missing"]):
        assert main(["compare", str(tmp_path / "digits"), str(tmp_path / "dvs"), *extra]) == 2
        captured = capsys.readouterr()
        assert "REGRESSION" not in captured.out and "missing" not in captured.out
        line, = captured.err.strip().splitlines()  # one line
        assert line.startswith("dta compare: error: nothing to compare")
        assert f"OLD ({tmp_path / 'digits'}) holds 4 record(s): dataset digits" in line
        assert f"NEW ({tmp_path / 'dvs'}) holds 4 record(s): dataset dvs-digits" in line


def test_compare_says_what_it_compared():
    old = [rec(m, s) for m in ("none", "dta", "gac") for s in (0, 1, 2)]
    new = [rec(m, s) for m in ("none", "dta") for s in (0, 1)]  # gac gone, seed 2 gone
    new += [rec("tna", 0), rec("ta", 5, T=2)]
    result = compare(old, new, allow_missing=True)
    assert not result.failed
    assert (result.groups, result.pairs, result.unpaired, result.missing, result.added) == \
        (2, 4, 0, 5, 2)
    assert result.summary() == ("compared 2 (dataset, method, T) group(s): 4 record pair(s) of "
                                "the same seed; 5 record(s) of OLD missing in NEW; 2 record(s) "
                                "only in NEW")
    assert compare(old, new).failed
    # a group whose sides share no seed is compared mean against mean, and counted so
    result = compare([rec("dta", 0)], [rec("dta", 1)], allow_missing=True)
    assert (result.groups, result.pairs, result.unpaired) == (1, 0, 1)
    assert "1 group(s) with no seed in common" in result.summary()


def test_committed_results_hold_only_records_or_files_that_say_what_they_are():
    """Every JSON under results/ (results/bench/training.json, the GPU checks) is a record or
    declares another schema, so `dta compare results ...` warns about none of them."""
    root = Path(__file__).resolve().parents[1] / "results"
    files = sorted(root.rglob("*.json"))
    assert any(f.name == "training.json" for f in files)
    for f in files:
        data = json.loads(f.read_text())
        assert declared_other(data) is not None or validate(data, str(f))
    records, problems = read_records([root])
    assert records and not problems
