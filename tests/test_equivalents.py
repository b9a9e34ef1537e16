"""The ANN and QNN rows (issue 10, items 3-4): the ReLU network, its quantized twin, the
spike / fixed energy split, the ratio to the ANN and the break-even firing rate."""

import math

import pandas as pd
import pytest
import torch
from torch import nn

from dta.bench import BenchConfig, qnn_records, run_bench, spike_energy_split
from dta.measure import get_energy_model, profile
from dta.models import create_model, repeat_static
from dta.quantize import QuantReLU, quantize_activations
from dta.records import read_records
from dta.report import COMPUTE_MODEL, MEMORY_MODEL, ann_comparison, energy_vs_accuracy
from dta.train import resolve_config


def test_ann_method_is_the_relu_backbone_at_one_step():
    cfg = resolve_config("digits", "ann")
    assert (cfg.attention, cfg.neuron, cfg.T) == ("none", "relu", 1)
    assert resolve_config("digits", "ann", T=1).T == 1
    with pytest.raises(ValueError, match="ann method runs with T=1, got T=4"):
        resolve_config("digits", "ann", T=4)
    with pytest.raises(ValueError, match="unknown neuron 'tanh'"):
        resolve_config("digits", "none", neuron="tanh")


def test_quant_relu_levels_by_hand():
    q = QuantReLU(2, 3.0)  # levels 0, 1, 2, 3
    x = torch.tensor([-1.0, 0.2, 0.6, 1.4, 2.5, 2.9, 7.0])
    assert q(x).tolist() == [0.0, 0.0, 1.0, 1.0, 2.0, 3.0, 3.0]  # 2.5: half to even
    with pytest.raises(ValueError, match="bits must be >= 1"):
        QuantReLU(0, 1.0)


def test_quantize_activations_replaces_every_relu_and_keeps_the_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.ReLU())
    x = torch.randn(64, 4)
    q = quantize_activations(net, 3, x)
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear", "ReLU"]
    assert [type(m).__name__ for m in q] == ["Linear", "QuantReLU", "Linear", "QuantReLU"]
    with torch.no_grad():
        hidden = torch.relu(net[0](x))
    assert q[1].clip == pytest.approx(float(torch.quantile(hidden.flatten(), 0.999)))
    out = q[1](hidden)  # at most 2^3 distinct values
    assert out.unique().numel() <= 8
    with pytest.raises(ValueError, match="no nn.ReLU"):
        quantize_activations(nn.Linear(2, 2), 3, torch.randn(2, 2))


def test_spike_split_is_the_spike_driven_synaptic_energy_by_hand():
    """Under a compute-only model the spike-driven part is the effective ACs x E_AC."""
    torch.manual_seed(0)
    net = create_model("ms_resnet18", attention="none", T=2, num_classes=10, in_channels=1,
                       width=4).eval()
    report = profile(net, repeat_static(torch.rand(4, 1, 8, 8) * 3, 2))
    split = spike_energy_split(report)
    t = report.totals
    for name in (COMPUTE_MODEL, MEMORY_MODEL):
        total = t["energy_uj_by_model"][name]
        assert split[name]["spike_uj"] + split[name]["fixed_uj"] == pytest.approx(total)
        assert split[name]["spike_uj"] > 0
    # horowitz45-fp32: the ACs of spike-driven convs (element-wise additions are fixed)
    driven = report.traffic[report.traffic["synaptic"] & (report.traffic["in_spike"] > 0)]
    e_ac = get_energy_model(COMPUTE_MODEL).price("ac")
    assert split[COMPUTE_MODEL]["spike_uj"] == pytest.approx(driven["ac"].sum() * e_ac / 1e6)


def _record(method, seed, energy, mem, rate=0.2, fixed=None, spike=None):
    r = {"dataset": "d", "method": method, "T": 1 if method == "ann" else 4, "seed": seed,
         "commit": "c", "schema": "dta-bench/record/v1", "model": "m", "params": 1,
         "accuracy": 0.9, "firing": {"rate": rate},
         "energy": {"model": COMPUTE_MODEL, "uj": energy,
                    "by_model": {COMPUTE_MODEL: energy, MEMORY_MODEL: mem}}}
    if fixed is not None:
        r["energy"]["split_by_model"] = {
            COMPUTE_MODEL: {"fixed_uj": fixed[0], "spike_uj": spike[0]},
            MEMORY_MODEL: {"fixed_uj": fixed[1], "spike_uj": spike[1]}}
    return r


def test_ratio_and_break_even_rate_by_hand():
    ann = _record("ann", 0, 10.0, 100.0, rate=0.0)
    snn = _record("none", 0, 16.0, 150.0, rate=0.3, fixed=(4.0, 120.0), spike=(12.0, 30.0))
    vs = ann_comparison(snn, ann)
    assert vs[COMPUTE_MODEL]["ratio"] == pytest.approx(1.6)
    # E(r) = 4 + 12 r / 0.3 equals 10 at r = 0.3 * (10 - 4) / 12 = 0.15
    assert vs[COMPUTE_MODEL]["breakeven_rate"] == pytest.approx(0.15)
    # memory-aware: the fixed 120 already exceeds the ANN's 100: negative (never)
    assert vs[MEMORY_MODEL]["ratio"] == pytest.approx(1.5)
    assert vs[MEMORY_MODEL]["breakeven_rate"] == pytest.approx(0.3 * (100 - 120) / 30)
    table = energy_vs_accuracy([ann, snn, _record("ann", 1, 10.0, 100.0, 0.0),
                                _record("none", 1, 18.0, 160.0, 0.3, (4.0, 120.0), (14.0, 40.0))])
    row = table[table.method == "none"].iloc[0]
    assert row.energy_x_ann == pytest.approx((1.6 + 1.8) / 2)
    assert row.breakeven_rate == pytest.approx((0.15 + 0.3 * 6 / 14) / 2)
    assert table[table.method == "ann"].energy_x_ann.iloc[0] == pytest.approx(1.0)
    assert math.isnan(table[table.method == "ann"].breakeven_rate.iloc[0])
    from dta.report import to_markdown
    assert "never" in to_markdown(table)


def test_bench_adds_ann_and_qnn_rows(tmp_path):
    cfg = BenchConfig(methods=("none", "ann"), Ts=(2, 3), seeds=(0,), workers=1,
                      out=str(tmp_path / "results"), runs=str(tmp_path / "runs"),
                      data_root=str(tmp_path / "data"), latency_T=(1, 2), latency_batch=(1,),
                      latency_repeats=1, progress=False, measure_samples=8,
                      train_overrides={"epochs": 1, "limit_batches": 2, "width": 4})
    run_bench(cfg)
    out = tmp_path / "results" / "digits"
    records, problems = read_records([out])
    assert not problems
    assert [(r["method"], r["T"]) for r in records] == [
        ("none", 2), ("none", 3), ("ann", 1), ("qnn", 2), ("qnn", 3)]
    ann = records[2]
    assert ann["config"]["neuron"] == "relu" and ann["ops"]["neuron_updates"] == 0
    qnn2, qnn3 = records[3:]
    assert qnn2["quantization"]["activation_bits"] == 2 and qnn3["quantization"]["activation_bits"] == 2
    assert qnn2["ops"] == ann["ops"] and 0.0 <= qnn2["accuracy"] <= 1.0
    # priced from the ANN's counts at 2 bits: cheaper than the 32-bit ANN in every model
    for name, value in qnn2["energy"]["by_model"].items():
        assert value < ann["energy"]["by_model"][name], name
    assert qnn_records({**ann, "qnn": []}) == []
    table = pd.read_csv(out / "energy_vs_accuracy.csv")
    assert table.method.tolist() == ["none", "none", "ann", "qnn", "qnn"]
    assert {"energy_x_ann", "breakeven_rate", "compute_mem_uj", "memory_mem_uj",
            "energy_mem_x_ann", "breakeven_mem_rate"} <= set(table.columns)
    assert table[table.method == "none"].energy_x_ann.notna().all()
    latency = pd.read_csv(out / "latency.csv")
    assert latency[latency.method == "ann"]["T"].unique().tolist() == [1]
