"""profile() on real models, cross-checks with spikingjelly and fvcore, robustness."""

import json
import warnings

import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron
from spikingjelly.activation_based.op_counter import DispatchCounterMode, SynOpCounter
from torch import nn
from torch.nn.modules import module as nn_module
from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

from dta.attention import list_attention
from dta.measure import (compare_neurobench, get_energy_model, list_energy_models,
                         neurobench_synops, profile)
from dta.measure.dense import dense_reference
from dta.models import create_model, repeat_static

pytestmark = pytest.mark.filterwarnings("ignore:.*has no spiking neurons:UserWarning")


def synop_total(module, x):
    counter = SynOpCounter()
    with DispatchCounterMode([counter]):
        module(x)
    return counter.get_total()


def test_agrees_with_spikingjelly_synop_counter_on_spike_conv_and_linear():
    torch.manual_seed(0)
    conv = layer.Conv2d(4, 8, 3, stride=2, padding=1, groups=2, bias=False, step_mode="m")
    x = (torch.rand(3, 2, 4, 9, 9) < 0.3).float()
    assert profile(conv, x).totals["ac"] * 2 == synop_total(conv, x)  # per sample x B
    fc = layer.Linear(10, 6, step_mode="m")
    s = (torch.rand(3, 2, 10) < 0.4).float()
    assert profile(fc, s).totals["ac"] * 2 == synop_total(fc, s)


def test_zero_weights_are_where_the_definitions_differ():
    # spikingjelly's SynOpCounter counts every weight a spike meets; NeuroBench's
    # effective ACs (ours) skip zero weights. The gap is exactly those uses.
    torch.manual_seed(1)
    fc = layer.Linear(10, 6, step_mode="m")
    with torch.no_grad():
        fc.weight[:, :3] = 0
    s = (torch.rand(3, 2, 10) < 0.4).float()
    gap = synop_total(fc, s) - profile(fc, s).totals["ac"] * 2
    assert gap == s[..., :3].sum().item() * 6


class ReleasedTNA(nn.Module):
    """T-NA as released (in_planes=T*C, kernel_size=7), rebuilt from its description."""

    def __init__(self, dim):
        super().__init__()
        self.encoding = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.GELU())
        self.ltca = nn.Sequential(nn.Conv2d(dim, dim, 5, padding=2, groups=dim),
                                  nn.Conv2d(dim, dim, 1, groups=dim, dilation=3),
                                  nn.Conv2d(dim, dim, 1))
        self.gap = nn.AdaptiveAvgPool2d(1)
        hidden = dim // max(dim // 16, 4)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.ReLU(),
                                 nn.Linear(hidden, dim, bias=False))
        self.decoding = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        u = self.encoding(x)
        g = self.mlp(self.gap(u).flatten(1))[..., None, None]
        return self.decoding(g * self.ltca(u) * u) + x


def test_dense_count_of_tna_equals_fvcore_on_released_module():
    from fvcore.nn import FlopCountAnalysis

    released = ReleasedTNA(6 * 64)
    assert sum(p.numel() for p in released.parameters()) == 466_560
    plain = FlopCountAnalysis(released, torch.rand(1, 384, 32, 32))
    plain.unsupported_ops_warnings(False)
    # 3 pointwise convs 3 x 384*384*1024 + depthwise 5x5 384*25*1024 + dilated 1x1
    # 384*1024 + GAP 384*1024 + MLP 2 x 384*16 = 463,613,952
    assert plain.total() == 463_613_952

    net = create_model("ms_resnet18", attention="dta", T=6, num_classes=10, width=64)
    ref = dense_reference(net, repeat_static(torch.rand(1, 3, 32, 32), 6))
    fvcore_part, missed = ref.module("attention.tna")
    assert fvcore_part == 463_613_952
    # what fvcore misses in T-NA: GELU 384*1024, two products 2 x 384*1024,
    # the shortcut add 384*1024 = 1,572,864, and the GTCA ReLU (16)
    assert missed == 4 * 384 * 1024 + 16
    txa_fvcore, txa_added = ref.module("attention.txa")
    assert txa_fvcore == 0  # plain fvcore counts nothing for T-XA ('same'-padded convs)
    # conv_t 6x64 outputs x 6 x 3 + conv_c 64x6 outputs x 64 x 6 = 154,368, plus elementwise
    assert ref.by_operator["+conv(padding=str)"] == 154_368
    assert txa_added > 154_368
    assert ref.by_operator["+neuron:lif"] > 0 and ref.unsupported == {}


def test_effective_and_dense_agree_for_dense_real_input():
    # A 1x1 conv on a dense real input: every MAC is effective.
    conv = layer.Conv2d(3, 5, 1, bias=False, step_mode="m")
    x = torch.rand(2, 1, 3, 4, 4) + 0.1
    r = profile(conv, x)
    assert r.totals["mac"] == r.totals["dense_macs"] == 2 * 5 * 3 * 16


def test_works_on_spikingjelly_model_zoo():
    from spikingjelly.activation_based import neuron
    from spikingjelly.activation_based.model import spiking_resnet

    net = spiking_resnet.spiking_resnet18(spiking_neuron=neuron.IFNode, num_classes=10)
    functional.set_step_mode(net, "m")
    x = torch.rand(2, 1, 3, 32, 32) * 5  # strong enough to make the untrained net spike
    r = profile(net, x)
    assert r.totals["mac"] > 0 and r.totals["ac"] > 0  # encoding MACs, spike-driven ACs
    assert r.meta["components"]["encoding"] == ["conv1"]
    assert r.totals["neuron_updates"] > 0 and 0 < r.totals["firing_rate"] < 1
    assert r.unsupported == {}
    frame = compare_neurobench(net, x)  # NeuroBench hooks the same Conv/Linear modules
    assert (frame.loc[["Effective_ACs", "Effective_MACs"], "difference"] == 0).all()


def test_model_without_neurons_reports_macs_and_warns():
    net = nn.Sequential(layer.Conv2d(3, 4, 3, padding=1, step_mode="m"),
                        layer.Linear(4 * 8 * 8, 2, step_mode="m"))
    net[1].forward = lambda x, f=net[1].forward: f(x.flatten(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = profile(net, torch.randn(2, 1, 3, 8, 8))
    assert any("no spiking neurons" in str(w.message) for w in caught)
    assert r.totals["ac"] == 0 and r.totals["mac"] > 0 and r.totals["neuron_updates"] == 0


def test_bad_inputs_are_clear_errors():
    net = create_model("ms_resnet18", attention="none", T=4, num_classes=10, in_channels=1, width=8)
    x = repeat_static(torch.rand(2, 1, 8, 8), 4).clone()
    x[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        profile(net, x)
    with pytest.raises(ValueError, match=r"\[B, T, \.\.\.\] layout"):
        profile(net, torch.rand(3, 4, 1, 8, 8))
    with pytest.raises(ValueError, match=r"time-first tensor \[T, B, \.\.\.\]"):
        profile(net, torch.rand(1, 8))
    with pytest.raises(KeyError, match="known energy models: horowitz45-fp32"):
        profile(net, repeat_static(torch.rand(2, 1, 8, 8), 4), energy_model="nope")


class Boom(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = layer.Conv2d(1, 1, 1, step_mode="m")

    def forward(self, x):
        self.conv(x)
        raise RuntimeError("boom")


def test_hooks_and_mode_are_removed_when_forward_raises():
    before_pre = len(nn_module._global_forward_pre_hooks)
    before_post = len(nn_module._global_forward_hooks)
    net = Boom()
    with pytest.raises(RuntimeError, match="boom"):
        profile(net, torch.rand(1, 1, 1, 2, 2))
    assert len(nn_module._global_forward_pre_hooks) == before_pre
    assert len(nn_module._global_forward_hooks) == before_post
    assert len(_get_current_dispatch_mode_stack()) == 0
    # the per-call forward wrappers are gone too
    assert not any("forward" in m.__dict__ for m in net.modules())


def test_the_counters_forward_wrappers_leave_the_modules_as_they_were():
    from dta.measure.counter import OpCounter, emits_binary_spikes, own_forward

    net = nn.Sequential(layer.Conv2d(1, 2, 3, padding=1, step_mode="m"),
                        neuron.LIFNode(tau=2.0, step_mode="m"),
                        layer.Linear(2 * 4 * 4, 2, step_mode="m"))
    patched = net[2].forward = lambda x, f=net[2].forward: f(x.flatten(2))
    x = torch.rand(2, 1, 1, 4, 4) * 4
    with OpCounter(net, T=2, B=1):
        # wrapped for the call; the instance forward a module has of its own is seen through
        assert all("forward" in m.__dict__ for m in net.modules())
        assert own_forward(net[1]) is None and own_forward(net[2]) is patched
        assert emits_binary_spikes(net[1])
    r = profile(net, x)
    assert r.unsupported == {} and r.totals["mac"] > 0 and r.totals["neuron_updates"] > 0
    assert net[2].__dict__["forward"] is patched
    assert not any("forward" in m.__dict__ for m in (net, net[0], net[1]))
    net[1].forward = lambda x, f=net[1].forward: f(x)
    assert not emits_binary_spikes(net[1])  # a forward of its own: not trusted


def test_measuring_twice_gives_identical_counts_and_json_round_trips(tmp_path):
    net = create_model("ms_resnet18", attention="dta", T=4, num_classes=10, in_channels=1, width=8)
    x = repeat_static(torch.rand(4, 1, 8, 8), 4)
    a, b = profile(net, x), profile(net, x)
    assert a.to_dict() == b.to_dict()
    path = tmp_path / "r.json"
    a.to_json(path)
    loaded = json.loads(path.read_text())
    assert loaded["totals"]["ac"] == a.totals["ac"]
    assert {r["component"] for r in loaded["per_step"]} == {"encoding", "attention", "backbone", "neurons"}
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temp file


def test_dta_attention_energy_is_split_out():
    net = create_model("ms_resnet18", attention="dta", T=4, num_classes=10, in_channels=1, width=8)
    r = profile(net, repeat_static(torch.rand(4, 1, 8, 8), 4))
    by = r.totals["energy_uj_by_component"]
    assert by["attention"] > 0 and by["encoding"] > 0 and by["neurons"] > 0
    assert r.totals["attention_share"] == pytest.approx(by["attention"] / r.totals["energy_uj"])
    assert set(r.totals["energy_uj_by_model"]) == set(list_energy_models())
    # the attention block of DTA is real-valued arithmetic: its MACs dominate its ACs
    attn = r.totals["by_component"]["attention"]
    assert attn["mac"] > attn["ac"]


@pytest.mark.parametrize("energy_model,neuron", [("horowitz45-fp32", "lif"),
                                                  ("step45-fp32", "lif"),
                                                  ("lemaire2022", "relu")])
def test_the_totals_agree_with_the_tables(energy_model, neuron):
    """Every energy, share and rate of ``totals`` (summed from the linear map of the counts)
    is what the report's tables (priced row by row) give; the ANN has no firing."""
    torch.manual_seed(0)
    T = 1 if neuron == "relu" else 4
    net = create_model("ms_resnet18", attention="dta" if neuron == "lif" else "none", T=T,
                       num_classes=10, in_channels=1, width=8, neuron=neuron)
    r = profile(net, repeat_static(torch.rand(3, 1, 8, 8) * 3, T), energy_model=energy_model)
    t = r.totals
    frame = r.energy(energy_model)
    memory = not get_energy_model(energy_model).compute_only
    per_comp = frame.groupby("component")["energy_pj"].sum() / 1e6
    for c, v in t["energy_uj_by_component"].items():
        assert v == pytest.approx(per_comp.get(c, 0.0), rel=1e-12, abs=1e-15)
    compute = frame.groupby("component")["compute_pj"].sum() / 1e6
    for c, v in t["compute_uj_by_component"].items():
        assert v == pytest.approx(compute.get(c, 0.0), rel=1e-12, abs=1e-15)
    per_t = frame.groupby("t")[["compute_pj", "energy_pj"]].sum() / 1e6
    assert t["compute_uj_per_step"] == pytest.approx(per_t["compute_pj"].tolist(), rel=1e-12)
    assert t["energy_uj_per_step"] == pytest.approx(per_t["energy_pj"].tolist(), rel=1e-12)
    if memory:
        mem_t = frame.groupby("t")["memory_pj"].sum() / 1e6
        assert t["memory_uj_per_step"] == pytest.approx(mem_t.tolist(), rel=1e-12)
        assert t["memory_share"] == pytest.approx(t["memory_uj"] / t["energy_uj"], rel=1e-12)
        assert t["memory_uj_by_component"] is not None
    else:
        assert t["memory_uj_per_step"] is None and t["memory_uj"] is None
        assert t["memory_uj_by_component"] is None and t["memory_share"] is None
    assert t["energy_uj"] == pytest.approx(frame["energy_pj"].sum() / 1e6, rel=1e-12)
    assert t["attention_share"] == pytest.approx(
        t["energy_uj_by_component"]["attention"] / t["energy_uj"], rel=1e-12, abs=1e-15)
    assert t["energy_uj_by_model"][energy_model] == t["energy_uj"]
    assert t["compute_only_models"] == [n for n in list_energy_models()
                                        if get_energy_model(n).compute_only]
    firing = r.firing
    if neuron == "lif":
        by_t = firing.groupby("t")[["spikes", "neurons"]].sum()
        assert t["firing_rate_per_step"] == pytest.approx(
            (by_t["spikes"] / by_t["neurons"]).tolist(), rel=1e-12)
        assert t["firing_rate"] == pytest.approx(t["spikes"] / t["neuron_updates"])
    else:
        assert firing.empty and t["firing_rate_per_step"] == [0.0] * T
        assert t["firing_rate"] == 0.0 and t["sparsity"] == 1.0
    assert t["bytes"] == pytest.approx(sum(t["bytes_by_kind"].values()), rel=1e-12)
    assert t["bytes"] == pytest.approx(sum(t["bytes_by_component"].values()), rel=1e-12)


def test_energy_models_cite_sources():
    for name in list_energy_models():
        em = get_energy_model(name)
        assert em.source and em.e_mac > 0 and em.e_ac > 0
    assert get_energy_model("horowitz45-fp32").e_mac == 4.6
    assert get_energy_model("horowitz45-fp16").e_ac == 0.4
    assert get_energy_model("horowitz45-int8").e_mac == 0.23


# --- NeuroBench: the definition of effective ACs/MACs this package implements ---

def _firing_net(attention):
    """A width-8 MS-ResNet whose BatchNorm scale (2) makes the untrained net fire."""
    torch.manual_seed(0)
    net = create_model("ms_resnet18", attention=attention, T=4, num_classes=10, in_channels=1,
                       width=8)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.constant_(m.weight, 2.0)
    return net


def test_agrees_with_neurobench_on_a_spikingjelly_conv_net():
    torch.manual_seed(0)
    net = nn.Sequential(
        layer.Conv2d(1, 8, 3, padding=1, step_mode="m"), layer.BatchNorm2d(8, step_mode="m"),
        neuron.LIFNode(tau=2.0, step_mode="m"),
        layer.Conv2d(8, 16, 3, stride=2, padding=1, step_mode="m"),
        layer.BatchNorm2d(16, step_mode="m"), neuron.LIFNode(tau=2.0, step_mode="m"),
        layer.Flatten(step_mode="m"), layer.Linear(16 * 4 * 4, 10, step_mode="m"),
        neuron.LIFNode(tau=2.0, step_mode="m"))
    x = torch.rand(4, 3, 1, 8, 8) * 3
    frame = compare_neurobench(net, x)
    assert frame.loc["Effective_ACs", "neurobench"] > 0  # spike-driven layers fired
    assert frame.loc["Effective_MACs", "neurobench"] > 0  # the encoding layer
    for q in ("Effective_ACs", "Effective_MACs"):
        assert frame.loc[q, "dta"] == pytest.approx(frame.loc[q, "neurobench"], rel=1e-12, abs=0)


@pytest.mark.parametrize("attention", list_attention())
def test_agrees_with_neurobench_on_every_attention_method(attention):
    net = _firing_net(attention)
    frame = compare_neurobench(net, repeat_static(torch.rand(3, 1, 8, 8), 4))
    for q in ("Effective_ACs", "Effective_MACs"):
        assert frame.loc[q, "dta"] == pytest.approx(frame.loc[q, "neurobench"], rel=1e-12, abs=0)
    assert frame.loc["Effective_MACs", "neurobench"] > 0


def test_dense_differs_from_neurobench_by_the_padding_taps_only():
    torch.manual_seed(0)
    conv = layer.Conv2d(2, 3, 3, padding=1, bias=False, step_mode="m")
    x = torch.rand(2, 1, 2, 5, 5) + 0.1  # dense real input: every tap on the image is effective
    frame = compare_neurobench(conv, x)
    T, cin, cout, n = 2, 2, 3, 5
    every_tap = T * cout * n * n * cin * 9  # fvcore's dense count
    on_image = T * cout * cin * (3 * n - 2) ** 2  # 3n-2 taps per row land inside the image
    assert frame.loc["Dense", "dta"] == every_tap
    assert frame.loc["Dense", "neurobench"] == on_image
    assert frame.loc["Effective_MACs", "dta"] == frame.loc["Effective_MACs", "neurobench"] == on_image
    unpadded = layer.Conv2d(2, 3, 3, bias=False, step_mode="m")
    frame = compare_neurobench(unpadded, x)
    assert frame.loc["Dense", "difference"] == 0


def test_neurobench_crosscheck_leaves_the_model_as_it_was():
    net = _firing_net("dta").train()
    x = repeat_static(torch.rand(2, 1, 8, 8), 4)
    before = [len(m._forward_pre_hooks) + len(m._forward_hooks) for m in net.modules()]
    neurobench_synops(net, x)
    assert net.training
    assert [len(m._forward_pre_hooks) + len(m._forward_hooks) for m in net.modules()] == before
    with pytest.raises(ValueError, match=r"\[B, T, \.\.\.\] layout"):
        neurobench_synops(net, torch.rand(3, 4, 1, 8, 8))
