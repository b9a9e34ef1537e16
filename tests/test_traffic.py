"""Memory traffic of the dispatch-level counter against numbers computed by hand."""

import json
import math

import pytest
import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn

from dta.measure import activation_bits, profile, qnn_energy
from dta.measure.traffic import TRAFFIC_FIELDS, canonical_bytes
from dta.models import create_model, repeat_static
from dta.neuron import faithful_lif

pytestmark = pytest.mark.filterwarnings("ignore:.*has no spiking neurons:UserWarning")


class Seq(nn.Module):
    def __init__(self, *mods):
        super().__init__()
        self.body = layer.SeqToANNContainer(*mods)

    def forward(self, x):
        return self.body(x)


def sums(report, layer_name=None, op=None):
    rows = report.traffic
    if layer_name is not None:
        rows = rows[rows.layer == layer_name]
    if op is not None:
        rows = rows[rows.op == op]
    return {k: float(rows[k].sum()) for k in TRAFFIC_FIELDS}


def test_conv_on_spikes_and_neuron_by_hand():
    conv = layer.Conv2d(1, 2, 3, padding=1, bias=True, step_mode="m")
    nn.init.constant_(conv.weight, 1.0)
    x = torch.zeros(3, 1, 1, 3, 3)
    x[1, 0, 0, 1, 1] = 1  # one centre spike at t=1: 9 taps x 2 channels
    r = profile(nn.Sequential(conv, faithful_lif()), x)
    c = r.traffic[r.traffic.op == "convolution"].set_index("t")
    assert c["w_reads"].tolist() == [0, 18, 0]  # a weight per effective AC, per step
    assert c["b_reads"].tolist() == [18] * 3  # one bias per output element
    assert c["in_spike"].tolist() == [9] * 3 and c["in_real"].sum() == 0
    assert c["out_real"].tolist() == [18] * 3
    n = r.traffic[r.traffic.op == "neuron"].set_index("t")
    assert n["s_reads"].tolist() == n["s_writes"].tolist() == [18] * 3  # one each per update
    assert n["in_real"].tolist() == [18] * 3 and n["out_spike"].tolist() == [18] * 3
    # bytes at 32-bit words, spikes 1 bit, per layer and step
    layers = r.layers.set_index(["layer", "t"])
    assert layers.loc[("0", 1), "weight_bytes"] == 18 * 4
    assert layers.loc[("0", 1), "act_read_bytes"] == 9 / 8
    assert layers.loc[("1", 2), "state_bytes"] == 2 * 18 * 4
    assert layers.loc[("1", 2), "act_write_bytes"] == 18 / 8
    assert r.totals["bytes"] == pytest.approx(layers["bytes"].sum())
    assert r.totals["bytes_by_component"]["neurons"] == pytest.approx(
        3 * (2 * 18 * 4 + 18 * 4 + 18 / 8))


def test_real_input_reads_words_and_a_weight_per_effective_mac():
    fc = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        fc.weight.fill_(0.5)
    x = torch.tensor([[[0.5, 0.0, -2.0, 1.5]]])  # 3 nonzero inputs x 3 outputs
    r = profile(Seq(fc), x)
    t = sums(r)
    assert (t["w_reads"], t["b_reads"], t["in_real"], t["out_real"]) == (9, 0, 4, 3)
    assert r.totals["bytes_by_kind"] == {"weight": 36, "bias": 0, "state": 0, "act_read": 16,
                                         "act_write": 12}


class Arith(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(2.0))  # a learnable scale, as T-XA's a and b

    def forward(self, x):
        s = (x > 0).float()  # comparison: writes 1-bit spikes (bool), cast for free
        y = x + self.a * x  # mul: parameter read per output element; add: two real reads
        z = torch.sigmoid(y) * s  # sigmoid: real -> real; select with a spike factor
        return z.mean(dim=(3, 4))


def test_elementwise_rules_by_hand():
    x = torch.randn(2, 1, 3, 4, 4)  # 96 elements, mean over 16 -> 6 outputs
    r = profile(Arith(), x)
    by = {op: sums(r, op=op) for op in ("gt", "mul", "add", "sigmoid", "mean")}
    assert by["gt"]["in_real"] == 96 and by["gt"]["out_spike"] == 96
    muls = by["mul"]  # a*x: 96 weight reads + 96 real reads; sigmoid*s: 96 real + 96 spikes
    assert muls["w_reads"] == 96 and muls["in_real"] == 2 * 96 and muls["in_spike"] == 96
    assert muls["out_real"] == 2 * 96
    assert by["add"]["in_real"] == 2 * 96 and by["add"]["out_real"] == 96
    assert by["sigmoid"]["in_real"] == 96 and by["sigmoid"]["out_real"] == 96
    assert by["mean"]["in_real"] == 96 and by["mean"]["out_real"] == 6
    assert r.unsupported == {}
    assert r.totals["bytes_by_kind"]["weight"] == 96 * 4


def test_every_counted_op_moves_data():
    class Ops(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(3)

        def forward(self, x):
            y = x.flatten(0, 1)
            outs = [y - 1, y * 2.0, y / 3.0, torch.gelu(y) if hasattr(torch, "gelu") else
                    nn.functional.gelu(y), y.sum(), y.amax(dim=1),
                    nn.functional.avg_pool2d(y, 2), nn.functional.max_pool2d(y, 2),
                    nn.functional.adaptive_avg_pool2d(y, 1), self.bn(y), torch.relu(y),
                    torch.mm(y.flatten(1), y.flatten(1).t())]
            return sum(o.sum() for o in outs)

    r = profile(Ops(), torch.randn(1, 2, 3, 4, 4))  # per sample: 48-element tensors
    rows = r.traffic
    moved = rows[[c for c in TRAFFIC_FIELDS if c.startswith(("in_", "out_"))]].sum(axis=1)
    assert (moved.groupby(rows.op).sum() > 0).all(), rows.groupby("op")[list(TRAFFIC_FIELDS)].sum()
    assert r.unsupported == {}
    # an unfolded BatchNorm reads its scale and shift per element; a matrix product of two
    # activations reads both operands and no weights
    bn = sums(r, op="native_batch_norm")
    assert bn["w_reads"] == 2 * 48 and bn["in_real"] == 48 and bn["out_real"] == 48
    mm = sums(r, op="mm")
    assert mm["w_reads"] == 0 and mm["in_real"] == 2 * 48


def test_max_pool_counts_its_kernel_comparisons():
    x = torch.randn(1, 1, 1, 6, 6)
    r = profile(Seq(nn.MaxPool2d(3, stride=2, padding=1)), x)  # 3x3 output, 8 comparisons each
    assert r.totals["other"] == 9 * 8


def test_batchnorm_folding_moves_only_the_folded_shift():
    x = torch.rand(1, 1, 1, 4, 4)
    no_bias = profile(Seq(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2)), x)
    assert sums(no_bias, op="native_batch_norm") == {**dict.fromkeys(TRAFFIC_FIELDS, 0.0),
                                                     "b_reads": 32.0}
    with_bias = profile(Seq(nn.Conv2d(1, 2, 1, bias=True), nn.BatchNorm2d(2)), x)
    assert sums(with_bias)["b_reads"] == 32  # the conv's own bias; the fold adds none
    unfolded = profile(Seq(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2)), x, fold_bn=False)
    assert sums(unfolded, op="native_batch_norm")["w_reads"] == 2 * 32


def test_unsupported_ops_move_nothing_and_are_listed():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, dim=0)

    r = profile(Odd(), torch.randn(2, 1, 3))
    assert any("cumsum" in k for k in r.unsupported)
    assert r.totals["bytes"] == 0


def test_in_place_writes_forget_that_a_tensor_held_spikes():
    class InPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.lif = faithful_lif()

        def forward(self, x):
            s = self.lif(x)
            a = s + 1.0  # reads 1-bit spikes
            s.mul_(0.5)  # now real values in the same storage
            return a + s  # reads two reals

    r = profile(InPlace(), torch.full((1, 1, 4), 2.0))
    adds = r.traffic[r.traffic.op == "add"].reset_index()
    assert adds.loc[0, "in_spike"] == 4 and adds.loc[0, "in_real"] == 0
    assert adds.loc[1, "in_spike"] == 0 and adds.loc[1, "in_real"] == 8


def test_single_step_model_traffic_is_split_by_call():
    class SingleStep(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2, bias=False)
            self.lif = neuron.LIFNode(tau=2.0, step_mode="s")
            nn.init.constant_(self.fc.weight, 1.0)

        def forward(self, x):
            return torch.stack([self.lif(self.fc(x[t])) for t in range(x.shape[0])])

    x = torch.zeros(3, 1, 3)
    x[2, 0] = torch.tensor([1.0, 1.0, 0.0])
    r = profile(SingleStep(), x)
    fc = r.traffic[r.traffic.layer == "fc"].groupby("t")
    assert fc["w_reads"].sum().tolist() == [0, 0, 4]
    assert fc["in_spike"].sum().tolist() == [3, 3, 3]
    lif = r.traffic[r.traffic.layer == "lif"].groupby("t")
    assert lif["s_reads"].sum().tolist() == [2, 2, 2]


def test_bytes_follow_the_word_width():
    r = profile(Seq(nn.Linear(4, 3, bias=False)), torch.rand(1, 1, 4) + 0.1)
    assert canonical_bytes(r.traffic, 8)["weight_bytes"].sum() == 12
    assert canonical_bytes(r.traffic, 32)["weight_bytes"].sum() == 48
    fp16 = profile(Seq(nn.Linear(4, 3, bias=False)), torch.rand(1, 1, 4) + 0.1,
                   energy_model="horowitz45-fp16")
    assert fp16.meta["word_bits"] == 16 and fp16.totals["bytes_by_kind"]["weight"] == 24
    with pytest.raises(ValueError, match="word width must be a positive integer"):
        canonical_bytes(r.traffic, 0)


def test_per_step_bytes_sum_to_the_totals_and_json_carries_them(tmp_path):
    net = create_model("ms_resnet18", attention="dta", T=4, num_classes=10, in_channels=1, width=8)
    r = profile(net, repeat_static(torch.rand(2, 1, 8, 8), 4), energy_model="step45-fp32")
    assert r.per_step["bytes"].sum() == pytest.approx(r.totals["bytes"])
    assert sum(r.totals["bytes_by_kind"].values()) == pytest.approx(r.totals["bytes"])
    assert r.totals["bytes_by_component"]["attention"] > 0
    assert r.totals["memory_uj"] > r.totals["compute_uj"] > 0
    loaded = json.loads(r.to_json(tmp_path / "r.json"))
    assert loaded["totals"]["bytes"] == r.totals["bytes"]
    assert loaded["layers"][0]["bytes"] is not None
    assert loaded["totals"]["memory_uj_by_model"]["horowitz45-fp32"] is None
    assert "bytes moved" in r.summary()


# --- the QNN equivalent (Yan et al., arXiv 2409.08290) ---

def relu_net():
    """Conv 1->2 (3x3, pad 1, weights 1, bias 0) -> ReLU -> Linear 18->3 (weights 0.5, no
    bias: weights of exactly 1 would make the product a spike-weight AC)."""
    conv = layer.Conv2d(1, 2, 3, padding=1, step_mode="m")
    nn.init.constant_(conv.weight, 1.0)
    nn.init.constant_(conv.bias, 0.0)
    fc = layer.Linear(18, 3, bias=False, step_mode="m")
    nn.init.constant_(fc.weight, 0.5)
    net = nn.Sequential(conv, layer.SeqToANNContainer(nn.ReLU()), layer.Flatten(step_mode="m"), fc)
    return net.requires_grad_(False)


def test_activation_bits():
    assert [activation_bits(T) for T in (1, 2, 3, 4, 7, 8)] == [1, 2, 2, 3, 3, 4]
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="T must be a positive integer"):
            activation_bits(bad)


def test_qnn_energy_by_hand():
    x = torch.zeros(1, 1, 1, 3, 3)
    x[0, 0, 0, 1, 1] = 2.0  # one nonzero pixel: 9 taps x 2 channels = 18 MACs
    r = profile(relu_net(), x)
    q = qnn_energy(r, 4, energy_model="step45-fp32")
    b = 3  # ceil(log2(5))
    assert q["activation_bits"] == b
    # compute: encoding 18 full MACs; ReLU 18 'other'; linear: 18 nonzero activations x 3
    # = 54 b-bit MACs at min(3 x 0.9, 4.6) = 2.7 pJ
    compute = 18 * 4.6 + 18 * 4.6 + 54 * 2.7
    assert q["compute_uj"] * 1e6 == pytest.approx(compute)
    assert q["compute_uj_by_model"]["horowitz45-fp32"] * 1e6 == pytest.approx(compute)
    assert q["compute_uj_by_model"]["horowitz45-int8"] * 1e6 == pytest.approx(
        18 * 0.23 + 18 * 0.23 + 54 * min(3 * 0.03, 0.23))
    # memory bits: conv reads 9 real, 18 weights, 18 biases, writes 18 real; ReLU reads 18
    # real, writes 18 at 3 bits; linear reads 18 at 3 bits, 54 weights, writes 3 real
    bits = ((9 + 18 + 18 + 18) * 32 + 18 * 32 + 18 * b + 18 * b + 54 * 32 + 3 * 32)
    assert q["bytes"] == pytest.approx(bits / 8)
    assert q["memory_uj"] * 1e6 == pytest.approx(bits * 3.12)
    assert q["energy_uj"] == pytest.approx(q["compute_uj"] + q["memory_uj"])
    assert q["memory_uj_by_model"]["horowitz45-fp32"] is None
    # the ANN itself (32-bit activations, full MACs) costs more
    ann = r.totals
    assert ann["energy_uj_by_model"]["step45-fp32"] > q["energy_uj"]
    assert ann["bytes"] - q["bytes"] == pytest.approx(2 * 18 * (32 - b) / 8)


def test_qnn_energy_lemaire_prices_low_bit_macs_as_additions():
    x = torch.zeros(1, 1, 1, 3, 3)
    x[0, 0, 0, 1, 1] = 2.0
    r = profile(relu_net(), x)
    full = r.totals["compute_uj_by_model"]["lemaire2022"] * 1e6
    q = qnn_energy(r, 1, energy_model="lemaire2022")  # 1 bit
    # the linear layer's dense 18 x 3 MACs on activations: (3.1 + 0.1) -> 1 x 0.1 pJ each
    assert full - q["compute_uj"] * 1e6 == pytest.approx(54 * (3.2 - 0.1))


def test_qnn_energy_rejects_what_is_not_a_relu_network():
    x = torch.rand(1, 1, 1, 3, 3)
    r = profile(relu_net(), x)
    with pytest.raises(ValueError, match="T must be a positive integer"):
        qnn_energy(r, 0)
    with pytest.raises(KeyError, match="known energy models"):
        qnn_energy(r, 4, energy_model="nope")
    snn = profile(nn.Sequential(layer.Linear(3, 2, step_mode="m"), faithful_lif()),
                  torch.rand(1, 1, 3))
    with pytest.raises(ValueError, match="spiking-neuron updates"):
        qnn_energy(snn, 4)
    two_steps = profile(relu_net(), torch.rand(2, 1, 1, 3, 3))
    with pytest.raises(ValueError, match="T=2"):
        qnn_energy(two_steps, 4)
    no_relu = profile(layer.Linear(3, 2, step_mode="m"), torch.rand(1, 1, 3))
    with pytest.raises(ValueError, match="no activation-function outputs"):
        qnn_energy(no_relu, 4)
    with pytest.raises(TypeError, match="ProfileReport"):
        qnn_energy(r.totals, 4)
    assert math.isfinite(qnn_energy(r, 4)["energy_uj"])
