"""Op counts against numbers computed by hand and by independent brute force."""

import itertools

import pytest
import torch
from spikingjelly.activation_based import base, functional, layer, neuron
from torch import nn

from dta.measure import profile
from dta.neuron import faithful_lif


def brute_force_effective(x, w, stride, padding, groups):
    """Effective ops of a 2-D conv by explicit loops: nonzero input x nonzero weight pairs."""
    n, c_in, h, wd = x.shape
    c_out, c_per_group, kh, kw = w.shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (wd + 2 * padding - kw) // stride + 1
    out_per_group = c_out // groups
    total = 0
    for b, o, i, j in itertools.product(range(n), range(c_out), range(oh), range(ow)):
        g = o // out_per_group
        for c, u, v in itertools.product(range(c_per_group), range(kh), range(kw)):
            y, z = i * stride - padding + u, j * stride - padding + v
            if 0 <= y < h and 0 <= z < wd:
                total += int(x[b, g * c_per_group + c, y, z] != 0 and w[o, c, u, v] != 0)
    return total


class Seq(nn.Module):
    """Wrap a stateless layer so it runs on [T, B, ...] (spikingjelly's idiom)."""

    def __init__(self, *mods):
        super().__init__()
        self.body = layer.SeqToANNContainer(*mods)

    def forward(self, x):
        return self.body(x)


# Single layers have no neurons; profile() rightly warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:.*has no spiking neurons:UserWarning")


def test_conv_padding_counts_border_taps_by_hand():
    # 3x3 all-ones spike input, 3x3 kernel, padding 1: in-bounds taps per output are
    # 4 at the corners, 6 on the edges, 9 at the centre: 4*4 + 4*6 + 9 = 49 ACs.
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    nn.init.constant_(conv.weight, 0.5)
    r = profile(Seq(conv), torch.ones(1, 1, 1, 3, 3))
    assert r.totals["ac"] == 49 and r.totals["mac"] == 0
    assert r.totals["dense_macs"] == 81  # fvcore convention: 9 outputs x 9 taps


def test_conv_stride_and_groups_by_hand():
    conv = nn.Conv2d(1, 1, 3, stride=2, padding=1, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    # stride 2 on 3x3 keeps the four corner outputs: 4 in-bounds taps each.
    assert profile(Seq(conv), torch.ones(1, 1, 1, 3, 3)).totals["ac"] == 16
    grouped = nn.Conv2d(4, 4, 1, groups=4, bias=False)
    nn.init.constant_(grouped.weight, 1.0)
    x = torch.zeros(1, 1, 4, 2, 2)
    x[0, 0, 1, 0, 1] = x[0, 0, 3, 1, 1] = 1  # two spikes, each feeds one output
    assert profile(Seq(grouped), x).totals["ac"] == 2


@pytest.mark.parametrize("stride,padding,groups", [(1, 0, 1), (1, 1, 2), (2, 1, 1), (2, 2, 4), (3, 1, 2)])
def test_conv_matches_brute_force_with_zero_weights(stride, padding, groups):
    torch.manual_seed(stride * 10 + padding)
    conv = nn.Conv2d(4, 8, 3, stride=stride, padding=padding, groups=groups, bias=True)
    with torch.no_grad():
        conv.weight[conv.weight.abs() < 0.1] = 0  # zero weights do not count
    spikes = (torch.rand(2, 3, 4, 7, 6) < 0.3).float()  # [T, B, C, H, W]
    r = profile(Seq(conv), spikes)
    expected = brute_force_effective(spikes.flatten(0, 1), conv.weight, stride, padding, groups)
    assert r.totals["ac"] * 3 == pytest.approx(expected, abs=1e-9)  # per sample x B=3
    real = spikes * torch.rand_like(spikes) * 3  # same nonzero pattern, real values
    rr = profile(Seq(conv), real)
    assert rr.totals["ac"] == 0 and rr.totals["mac"] * 3 == pytest.approx(expected, abs=1e-9)


def test_linear_spike_and_real_inputs_by_hand():
    fc = nn.Linear(4, 3, bias=True)
    with torch.no_grad():
        fc.weight.fill_(0.5)
        fc.weight[0, 0] = 0.0  # input 0 reaches 2 outputs, inputs 1..3 reach 3
    spikes = torch.tensor([[[1.0, 0.0, 1.0, 1.0]]])  # [T=1, B=1, 4]
    r = profile(layer.Linear(4, 3, step_mode="m").requires_grad_(False), spikes)
    # a fresh layer has no zero weights: 3 active inputs x 3 outputs
    assert r.totals["ac"] == 9
    seq = Seq(fc)
    assert profile(seq, spikes).totals["ac"] == 2 + 3 + 3
    real = torch.tensor([[[0.5, 0.0, -2.0, 1.5]]])
    rr = profile(seq, real)
    assert (rr.totals["ac"], rr.totals["mac"], rr.totals["dense_macs"]) == (0, 8, 12)


def test_per_step_split_is_exact_and_sums_to_total():
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    x = torch.zeros(4, 2, 2, 5, 5)
    x[1, 0, 0, 2, 2] = 1  # one interior spike at t=1 in sample 0: 9 taps x 3 outputs
    x[3, 1, 1, 0, 0] = 1  # one corner spike at t=3 in sample 1: 4 taps x 3 outputs
    r = profile(Seq(conv), x)
    per_t = r.layers.groupby("t")["ac"].sum().tolist()
    assert per_t == [0, 27 / 2, 0, 12 / 2]
    assert sum(per_t) == r.totals["ac"]
    assert r.totals["energy_uj"] == pytest.approx(sum(r.totals["energy_uj_per_step"]))


class Arith(nn.Module):
    def forward(self, x):
        s = (x > 0).float()  # a spike tensor made in forward: 'other' (comparison)
        a = x + 1.0  # ac
        b = a * x  # mac (real x real)
        c = torch.sigmoid(b) * s  # other + select
        return c.mean(dim=(3, 4))  # ac (in - out) + mac (out)


def test_elementwise_rule_table_by_hand():
    x = torch.randn(2, 1, 3, 4, 4)  # 96 elements, mean over 16 -> 6 outputs
    r = profile(Arith(), x)
    t = r.totals
    assert (t["ac"], t["mac"], t["other"], t["select"]) == (96 + 90, 96 + 6, 96 + 96, 96)
    assert r.unsupported == {}


class Odd(nn.Module):
    def forward(self, x):
        return torch.cumsum(x, dim=0)


def test_ops_without_a_rule_are_reported_not_zeroed():
    r = profile(Odd(), torch.randn(2, 1, 3))
    assert any("cumsum" in k for k in r.unsupported)
    assert "cumsum" in r.summary()


def test_batchnorm_folding_option():
    net = Seq(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2))
    x = torch.rand(1, 1, 1, 4, 4)
    folded = profile(net, x)
    assert folded.folded_bn == ["body.1"] and folded.totals["mac"] == 2 * 16
    unfolded = profile(net, x, fold_bn=False)
    assert unfolded.folded_bn == [] and unfolded.totals["mac"] == 2 * 16 + 2 * 16
    alone = profile(Seq(nn.BatchNorm2d(1)), x)  # nothing to fold into: one MAC per element
    assert alone.totals["mac"] == 16


def test_neuron_updates_and_firing_by_hand():
    lif = faithful_lif()
    x = torch.tensor([[[1.5, 0.2]], [[0.0, 0.95]], [[2.0, 0.2]]])  # [T=3, B=1, 2]
    # mem: n0 = 1.5 (spike), 0, 2.0 (spike); n1 = 0.2, 1.05 (spike), 0.2 (no input lands
    # exactly on the threshold: the strict-vs-equal rule is tests/test_neuron.py's subject)
    r = profile(lif, x)
    assert r.totals["neuron_updates"] == 6 and r.totals["spikes"] == 3
    assert r.firing["rate"].tolist() == [0.5, 0.5, 0.5]
    assert r.totals["firing_rate"] == 0.5 and r.totals["sparsity"] == 0.5
    assert r.totals["ac"] == r.totals["mac"] == 0  # the neuron's own arithmetic is its update


def test_energy_is_counts_times_prices():
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    net = nn.Sequential(Seq(conv), faithful_lif())
    x = torch.ones(1, 1, 1, 3, 3)
    r = profile(net, x, energy_model="horowitz45-fp32")
    # 49 ACs x 0.9 pJ + 9 neuron updates x 4.6 pJ
    assert r.totals["energy_uj"] == pytest.approx((49 * 0.9 + 9 * 4.6) / 1e6)
    assert r.totals["energy_uj_by_model"]["horowitz45-int8"] == pytest.approx(
        (49 * 0.03 + 9 * 0.23) / 1e6)
    assert r.totals["energy_uj_by_model"]["loihi"] == pytest.approx((49 * 23.6 + 9 * 52) / 1e6)
    per = r.energy("horowitz45-int8")  # per component and step, in pJ
    assert per.energy_pj.sum() == pytest.approx(49 * 0.03 + 9 * 0.23)
    assert set(per.component) == {"encoding", "attention", "backbone", "neurons"}


class SingleStepNet(nn.Module):
    """A user's model that loops over T with single-step layers."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2, bias=False)
        self.lif = neuron.LIFNode(tau=2.0, step_mode="s")
        nn.init.constant_(self.fc.weight, 1.0)

    def forward(self, x):
        return torch.stack([self.lif(self.fc(x[t])) for t in range(x.shape[0])])


def test_single_step_models_are_split_by_call():
    x = torch.zeros(3, 1, 3)
    x[2, 0] = torch.tensor([1.0, 1.0, 0.0])  # spikes only at t=2: 2 inputs x 2 outputs
    r = profile(SingleStepNet(), x)
    assert r.meta["single_step"]
    assert r.layers[r.layers.layer == "fc"].groupby("t")["ac"].sum().tolist() == [0, 0, 4]
    assert r.totals["neuron_updates"] == 6


# ---------------------------------------------------------------------------------------------
# What profile() keeps between calls, and the leaf layers it counts from their hooks


def _spiking_block(width=4):
    torch.manual_seed(0)
    return nn.Sequential(
        layer.Conv2d(1, width, 3, padding=1, step_mode="m"), layer.BatchNorm2d(width, step_mode="m"),
        faithful_lif(), layer.Conv2d(width, width, 3, stride=2, padding=1, bias=False, step_mode="m"),
        layer.BatchNorm2d(width, step_mode="m"), faithful_lif(), layer.Flatten(step_mode="m"),
        layer.Linear(width * 4 * 4, 3, step_mode="m")).eval()


def _counts(report):
    return {k: report.totals[k] for k in ("ac", "mac", "other", "select", "dense_macs", "spikes",
                                          "bytes", "energy_uj")}


def test_a_weight_changed_between_calls_is_counted_anew():
    net = _spiking_block()
    x = torch.rand(2, 3, 1, 8, 8) * 4
    before = profile(net, x)
    with torch.no_grad():  # in place: the weight's version changes
        net[3].weight[:, :2] = 0
    pruned = profile(net, x)
    assert pruned.totals["ac"] < before.totals["ac"]
    assert _counts(pruned) == _counts(profile(_copy_of(net), x))  # as on a model never seen
    net[3].weight = nn.Parameter(torch.ones_like(net[3].weight))  # a new tensor
    ones = profile(net, x)
    assert _counts(ones) == _counts(profile(_copy_of(net), x))
    net[3].weight.data = torch.zeros_like(net[3].weight)  # new storage under the same tensor
    assert profile(net, x).totals["ac"] == 0


def test_a_layer_counted_from_its_plan_is_counted_anew_when_its_configuration_changes():
    """From the third call a convolution or BatchNorm is counted from the plan kept for it;
    a call with another input shape, weight, attribute or hook goes the full way (and
    counts as a model never seen)."""
    from dta.measure.counter import model_state

    net = _spiking_block()[:6]  # conv, BN, LIF, conv, BN, LIF: any input size
    x = torch.rand(2, 3, 1, 8, 8) * 4
    for _ in range(3):
        first = profile(net, x)
    plans = model_state(net).plans
    assert {p[0] for p in plans.values()} == {"conv", "bn"} and len(plans) == 4
    assert _counts(first) == _counts(profile(_copy_of(net), x))
    wider = torch.rand(2, 3, 1, 10, 10) * 4  # another input shape
    assert _counts(profile(net, wider)) == _counts(profile(_copy_of(net), wider))
    net[3].padding = (0, 0)  # another attribute
    assert _counts(profile(net, x)) == _counts(profile(_copy_of(net), x))
    net[3].stride = (1, 1)
    assert _counts(profile(net, x)) == _counts(profile(_copy_of(net), x))
    seen = []
    net[3].register_forward_pre_hook(lambda m, a: seen.append(1))  # a hook of its own
    assert _counts(profile(net, x)) == _counts(profile(_copy_of(net), x)) and seen
    net[1].bias = None  # a BatchNorm that lost its shift
    assert _counts(profile(net, x)) == _counts(profile(_copy_of(net), x))


def test_a_linear_layer_counted_from_its_plan_counts_as_the_full_way():
    """A linear layer's plan (its [T, B, F] input measured in the pre-hook, the products with
    the fan-out taken at finalize) counts as a model never seen, also after its weight
    changed in place; a {0, 1} weight (every product a select) keeps the full path."""
    from dta.measure.counter import model_state

    net = _spiking_block()
    x = torch.rand(2, 3, 1, 8, 8) * 4
    for _ in range(3):
        r = profile(net, x)
    plan = model_state(net).plans[id(net[7])]
    assert plan[0] == "linear" and plan[6] == -2  # the synaptic form, on the flattened input
    fresh = profile(_copy_of(net), x)
    assert _counts(r) == _counts(fresh) and r.traffic.equals(fresh.traffic)
    with torch.no_grad():
        net[7].weight[:, :5] = 0
    for _ in range(3):
        r = profile(net, x)
    fresh = profile(_copy_of(net), x)
    assert _counts(r) == _counts(fresh) and r.traffic.equals(fresh.traffic)
    with torch.no_grad():
        net[7].weight.copy_((torch.rand_like(net[7].weight) > 0.5).float())
    for _ in range(3):
        r = profile(net, x)
    assert model_state(net).plans[id(net[7])][3] != (net[7].weight._version,
                                                     net[7].weight.data_ptr())
    fresh = profile(_copy_of(net), x)
    assert _counts(r) == _counts(fresh) and r.traffic.equals(fresh.traffic)


@pytest.mark.parametrize("batch", [3, 40])
@pytest.mark.parametrize("kind", ["real", "zeros and ones", "signed zeros", "one real value"])
def test_a_real_input_measured_in_the_pre_hook_is_classified_and_counted_as_the_full_way(
        kind, batch):
    """A convolution counted from its hooks finds a real-valued input binary by comparing it
    with its nonzero indicator (not through the spike test of the operator-level path):
    the same class and counts as a model never seen (whose first call counts at the
    operator level), for reals, for a real tensor holding only 0 and 1 (its products are
    ACs) and with -0.0 (a zero; profile() refuses NaN and inf inputs); one value of 0.5
    among zeros and ones makes the input real, wherever it lies (small and large inputs)."""
    net = _spiking_block()
    torch.manual_seed(1)
    x = torch.rand(2, batch, 1, 8, 8) * 4
    if kind != "real":
        x = (x > 2).float()
    if kind == "signed zeros":
        x[x == 0] = -0.0
    if kind == "one real value":
        x.view(-1)[x.numel() // 2 + 7] = 0.5
    for _ in range(3):  # the third call counts the first convolution from its plan
        r = profile(net, x)
    fresh = profile(_copy_of(net), x)
    assert r.traffic.equals(fresh.traffic)
    first = r.traffic[r.traffic["layer"] == "0"]
    assert (first["ac"].sum() > 0) == (kind in ("zeros and ones", "signed zeros"))
    assert (first["mac"].sum() > 0) == (kind in ("real", "one real value"))


def test_a_plan_follows_the_calls_t_and_batch_and_a_removed_bias():
    """A convolution reading [T*B, ...] splits its rows by this call's T and B (the same
    T*B split otherwise must not reuse the previous split), and a bias set to None after
    plans were made (its old Parameter freed) is counted as gone (review of the plans)."""
    import gc

    torch.manual_seed(0)
    net = nn.Sequential(layer.SeqToANNContainer(nn.Conv2d(1, 4, 3, padding=1)),
                        neuron.LIFNode(step_mode="m"),
                        layer.SeqToANNContainer(nn.Conv2d(4, 4, 3, padding=1))).eval()
    x = torch.rand(2, 4, 1, 8, 8) * 4  # T=2, B=4: the convolutions read [8, ...]
    for _ in range(3):
        profile(net, x)
    for other in (x.reshape(1, 8, 1, 8, 8), x.reshape(4, 2, 1, 8, 8)):  # also [8, ...]
        assert _counts(profile(net, other)) == _counts(profile(_copy_of(net), other))
    block = _spiking_block()
    y = torch.rand(2, 3, 1, 8, 8) * 4
    for _ in range(3):
        profile(block, y)
    block[0].bias = None
    block[7].bias = None
    gc.collect()  # the old bias Parameters are freed: their weak references return None
    r, fresh = profile(block, y), profile(_copy_of(block), y)
    assert _counts(r) == _counts(fresh)
    assert r.traffic.equals(fresh.traffic)  # b_reads, and the linear's operator: mm


def test_counting_under_inference_mode_counts_as_under_no_grad():
    """Inference tensors have no version counter, which the counter reads: profile() and
    the raw counter run the forward outside inference mode, and an inference tensor (an
    input, or the parameters of a model built in inference mode) counts as unchanged."""
    from spikingjelly.activation_based import functional

    from dta.measure.counter import OpCounter

    net = _spiking_block()
    x = torch.rand(2, 3, 1, 8, 8) * 4
    expected = _counts(profile(net, x))
    with torch.inference_mode():
        assert _counts(profile(net, x)) == expected
        inference_x = x.clone()  # an inference tensor
        for _ in range(3):  # full path, then plans
            assert _counts(profile(net, inference_x)) == expected
        built = _spiking_block()  # parameters made in inference mode
        with OpCounter(built, T=2, B=3) as counter:
            built(inference_x)
        raw = counter.finalize()
        functional.reset_net(built)
        assert torch.is_inference_mode_enabled()  # restored on exit
    assert raw.rows["ac"].sum() * 3 == pytest.approx(expected["ac"] * 3)


def test_forget_drops_what_a_write_through_data_hides():
    """A write through ``.data`` bypasses the version counter: the kept fan-outs and plans
    cannot see it (documented); ``forget`` drops them and the next call counts the new
    weights, as on a model never seen."""
    from dta.measure import forget

    net = _spiking_block()
    x = torch.rand(2, 3, 1, 8, 8) * 4
    for _ in range(3):
        before = profile(net, x)
    net[3].weight.data[:, :2] = 0  # no version bump
    assert profile(net, x).totals["ac"] == before.totals["ac"]  # the limitation, pinned
    forget(net)
    pruned = profile(net, x)
    assert pruned.totals["ac"] < before.totals["ac"]
    assert _counts(pruned) == _counts(profile(_copy_of(net), x))
    forget(nn.Linear(2, 2))  # a model never profiled: nothing to drop


def _copy_of(net):
    import copy

    return copy.deepcopy(net)


class _OperatorPathOnly(dict):
    """A recipe table that knows no layer: every layer is counted operator by operator."""

    def get(self, key, default=None):
        return None


def _ms_resnet18(attention):
    def build():
        from dta.models import create_model, repeat_static

        torch.manual_seed(0)
        net = create_model("ms_resnet18", attention=attention, T=3, num_classes=10,
                           in_channels=1, width=8)
        return net, repeat_static(torch.rand(2, 1, 8, 8) * 3, 3)
    return build


def _sj_resnet18():
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.model import spiking_resnet

    torch.manual_seed(0)
    net = spiking_resnet.spiking_resnet18(spiking_neuron=neuron.IFNode, num_classes=10)
    functional.set_step_mode(net, "m")  # conv, BN, max-pool and linear wrappers, IF neurons
    return net, torch.rand(2, 2, 3, 32, 32) * 5


@pytest.mark.parametrize("build", [_ms_resnet18("none"), _ms_resnet18("dta"),
                                   _ms_resnet18("tcja"), _ms_resnet18("ma"), _sj_resnet18],
                         ids=["ms18-none", "ms18-dta", "ms18-tcja", "ms18-ma",
                              "spiking_resnet18"])
def test_layers_counted_from_hooks_equal_the_operator_path(monkeypatch, build):
    from dta.measure import counter

    net, x = build()
    fast = profile(net, x)
    fast = profile(net, x)  # the second call: recipes learned, caches warm
    assert "convolution" in counter._RECIPES.values()  # so the layers were counted from hooks
    monkeypatch.setattr(counter, "_RECIPES", _OperatorPathOnly())
    slow = profile(_copy_of(net), x)
    assert slow.traffic.equals(fast.traffic) and slow.ops.equals(fast.ops)
    assert slow.firing.equals(fast.firing) and slow.to_dict() == fast.to_dict()


def test_the_raw_counter_in_grad_mode_counts_as_under_no_grad():
    """OpCounter used directly, with autograd on (a training-time forward): the same counts
    as under no_grad, and no autograd graph from the counting."""
    from dta.measure.counter import OpCounter

    net, x = _ms_resnet18("dta")()
    net.eval()
    results = []
    for grad in (False, True, True):  # the second grad-mode call: layers counted from hooks
        with torch.set_grad_enabled(grad), OpCounter(net, T=3, B=2) as counter:
            out = net(x)
        assert out.requires_grad == grad
        results.append(counter.finalize())
        functional.reset_net(net)
    assert results[1].traffic == results[0].traffic == results[2].traffic


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("size", [(3, 3), (5, 4)])  # under and over _WIDE_ROWS positions
def test_active_counts_of_a_multi_step_input_read_in_place(binary, per_channel, size):
    """lead=2 reads [T, B, ...] as the [T*B, ...] rows a multi-step layer's operator sees,
    with or without a float32 work tensor for the mask."""
    from dta.measure import rules

    torch.manual_seed(0)
    x = torch.rand(3, 2, 4, *size)
    x = (x < 0.4).float() if binary else torch.where(x < 0.4, 0.0, x - 0.5)
    expected = rules.active_counts(x.flatten(0, 1), 3, binary, None, per_channel)
    for work in (None, torch.full(x.shape, 7.0)):
        got = rules.active_counts(x, 3, binary, work, per_channel, lead=2)
        assert got.dtype == torch.float64 and torch.equal(got, expected)


@pytest.mark.parametrize("build", [_ms_resnet18("dta"), _sj_resnet18],
                         ids=["ms18-dta", "spiking_resnet18"])
def test_products_taken_at_finalize_equal_those_taken_in_the_forward(monkeypatch, build):
    """On the CPU a layer counted from hooks leaves its active counts raw and finalize takes
    the products with the fan-outs on the host; without host fan-outs (another device) the
    forward takes them as tensors. Both give the same report."""
    from dta.measure import counter

    net, x = build()
    deferred = profile(net, x)
    deferred = profile(net, x)  # recipes learned: layers counted from hooks
    calls = []
    original = counter.OpCounter._conv_entry

    def no_host_fanouts(self, *args):
        calls.append(1)
        return (*original(self, *args)[:5], None, None)

    monkeypatch.setattr(counter.OpCounter, "_conv_entry", no_host_fanouts)
    in_forward = profile(_copy_of(net), x)
    assert calls and in_forward.to_dict() == deferred.to_dict()
    assert in_forward.traffic.equals(deferred.traffic)


def test_dense_fanout_in_closed_form_equals_the_adjoint():
    from dta.measure import rules

    torch.manual_seed(0)
    conv_t = {1: torch.nn.functional.conv_transpose1d, 2: torch.nn.functional.conv_transpose2d,
              3: torch.nn.functional.conv_transpose3d}
    for d, (c_in, c_out, groups), k, s, p, dl in itertools.product(
            (1, 2, 3), ((4, 6, 1), (4, 8, 2), (3, 3, 3)), (1, 2, 3), (1, 2), (0, 1), (1, 2)):
        size = 7
        if size + 2 * p < dl * (k - 1) + 1:
            continue
        w = torch.randn(c_out, c_in // groups, *([k] * d))
        x_shape = (2, c_in, *([size] * d))
        closed = rules.conv_fanout(x_shape, w, [s] * d, [p] * d, [dl] * d, False, [0] * d, groups)
        out = [(size + 2 * p - dl * (k - 1) - 1) // s + 1] * d
        adj = [size - ((o - 1) * s - 2 * p + dl * (k - 1) + 1) for o in out]
        ones = torch.ones(1, c_out, *out, dtype=torch.float64)
        adjoint = conv_t[d](ones, (w != 0).double(), None, s, p, adj, groups, dl)[0]
        assert torch.equal(closed.contiguous(), adjoint), (d, c_in, c_out, groups, k, s, p, dl)


class _Rewrites(nn.Module):
    """Spikes that an in-place op rewrites before a convolution reads them."""

    def __init__(self):
        super().__init__()
        self.lif = faithful_lif()
        self.conv = layer.Conv2d(1, 2, 1, bias=False, step_mode="m")

    def forward(self, x):
        s = self.lif(x)
        s.mul_(3)
        return self.conv(s)


def _spikes_emitted(net, x):
    """Spikes each neuron emits in a plain forward (hooks outside profile(): their own ops
    would be counted)."""
    from spikingjelly.activation_based import functional

    seen = []
    hooks = [m.register_forward_hook(lambda m, a, out: seen.append(out.abs().sum().item()))
             for m in net.modules() if type(m).__name__ == "FaithfulLIF"]
    with torch.no_grad():
        net(x)
    functional.reset_net(net)
    for h in hooks:
        h.remove()
    return sum(seen)


class TwoSpikeNode(base.MemoryModule):
    """A multi-spike neuron: emits 0 or 2 (not a {0, 1} spike tensor)."""

    def forward(self, x):
        return (x > 1).to(x.dtype) * 2


class _Graded(nn.Module):
    def __init__(self):
        super().__init__()
        self.node = TwoSpikeNode()
        self.conv = layer.Conv2d(1, 2, 1, bias=False, step_mode="m")

    def forward(self, x):
        return self.conv(self.node(x))


def test_spikes_are_counted_as_the_neuron_emitted_them():
    net, x = _Rewrites().eval(), torch.rand(2, 4, 1, 4, 4) * 3
    r = profile(net, x)
    assert r.totals["spikes"] * 4 == _spikes_emitted(net, x)  # before the in-place * 3
    assert r.totals["mac"] > 0 and r.totals["ac"] == 0  # the conv read 0/3 values: MACs
    net, x = _spiking_block(), torch.rand(2, 4, 1, 8, 8) * 4
    r = profile(net, x)  # here the convolutions count the spikes, exactly
    assert r.totals["spikes"] * 4 == _spikes_emitted(net, x) > 0
    net, x = _Graded().eval(), torch.rand(2, 4, 1, 4, 4) * 3
    r = profile(net, x)  # a convolution reads them, but they are not {0, 1}: unit events
    assert r.totals["spikes"] * 4 == ((x > 1).sum() * 2).item() > 0
    assert r.totals["mac"] > 0 and r.totals["ac"] == 0


def test_a_layer_that_raises_leaves_no_hooks_and_the_next_call_counts():
    from torch.nn.modules import module as nn_module
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    net = _spiking_block()
    x = torch.rand(2, 3, 1, 8, 8) * 4
    good = profile(net, x)
    with pytest.raises(RuntimeError):
        profile(net, torch.rand(2, 3, 2, 8, 8))  # two channels into a one-channel conv
    assert not nn_module._global_forward_pre_hooks and not nn_module._global_forward_hooks
    assert len(_get_current_dispatch_mode_stack()) == 0
    assert profile(net, x).to_dict() == good.to_dict()


def test_the_wrappers_kept_with_a_model_are_reused_removed_and_left_to_one_counter():
    """The forward wrappers of the submodules are made once per module tree, installed for
    each call and removed after it; a counter entered while another counts the same model
    wraps the model per call (through the other's wrappers) and counts the forward as a
    counter alone does (the enclosing one also sees the inner counter's own operations: it
    counts more, as before the wrappers were kept)."""
    from dta.measure.counter import OpCounter, model_state

    net = _spiking_block()
    x = torch.rand(2, 3, 1, 8, 8) * 4
    first = profile(net, x)
    state = model_state(net)
    kept = dict(state.wrappers)
    assert len(kept) == len(list(net.modules())) - 1  # all but the model's own
    assert state.current.counter is None
    assert not any("forward" in m.__dict__ for m in net.modules())
    assert _counts(profile(net, x)) == _counts(first)
    assert all(state.wrappers[k] is f for k, f in kept.items())  # reused

    def raw():
        with torch.no_grad(), OpCounter(net, T=2, B=3) as alone:
            net(x)
        return alone.finalize().rows["ac"].sum()

    with torch.no_grad(), OpCounter(net, T=2, B=3) as outer:
        with OpCounter(net, T=2, B=3) as inner:
            assert state.current.counter is outer
            net(x)
        assert state.current.counter is outer
    assert state.current.counter is None
    assert not any("forward" in m.__dict__ for m in net.modules())
    functional.reset_net(net)
    expected = raw()
    assert inner.finalize().rows["ac"].sum() == expected
    assert outer.finalize().rows["ac"].sum() > expected
    assert _counts(profile(net, x)) == _counts(first)


class _Wide(nn.Module):
    """A linear block whose forward a test replaces at class level, and which compares equal
    to any block of the same width (value equality, as some configuration classes do)."""

    def __init__(self, width=8):
        super().__init__()
        self.width = width
        self.fc = nn.Linear(width, width)
        self.lif = faithful_lif()

    def forward(self, x):
        return self.lif(self.fc(x))

    def __eq__(self, other):
        return isinstance(other, _Wide) and other.width == self.width

    __hash__ = nn.Module.__hash__


def test_the_kept_wrappers_follow_the_class_forward_and_the_tree_its_identity(monkeypatch):
    """A forward replaced at class level between calls is the one counted (the wrappers kept
    with the model look it up at each call), and a submodule replaced by an equal (==) new
    instance rebuilds the module table (children are compared by identity) (review)."""
    torch.manual_seed(0)
    net = nn.Sequential(_Wide(), nn.Linear(8, 3)).eval()
    x = torch.rand(2, 3, 8)
    once = profile(net, x).totals["mac"]
    monkeypatch.setattr(_Wide, "forward", lambda self, x: self.lif(self.fc(self.fc(x))))
    twice = profile(net, x)
    assert twice.totals["mac"] > once
    assert _counts(twice) == _counts(profile(_copy_of(net), x))
    monkeypatch.undo()
    net[0] = _Wide()  # equal to the old block, not the same module: a neuron unknown so far
    r = profile(net, x)
    assert r.firing["layer"].unique().tolist() == ["0.lif"]
    assert _counts(r) == _counts(profile(_copy_of(net), x))


def test_a_model_profiled_in_another_thread_is_refused_and_left_working():
    """profile() on a model another thread is counting raises a clear error before touching
    it; the other thread's count is unaffected and the model runs plainly afterwards."""
    import threading

    inside, release = threading.Event(), threading.Event()

    class Gate(nn.Module):
        def forward(self, x):
            if threading.current_thread().name == "first":
                inside.set()
                release.wait(10)
            return x

    torch.manual_seed(0)
    net = nn.Sequential(Gate(), nn.Linear(8, 8), faithful_lif()).eval()
    x = torch.rand(2, 3, 8)
    expected = _counts(profile(_copy_of(net), x))
    out = {}
    first = threading.Thread(target=lambda: out.update(first=profile(net, x)), name="first")
    first.start()
    try:
        assert inside.wait(10)
        with pytest.raises(RuntimeError, match="another thread"):
            profile(net, x)
    finally:
        release.set()
        first.join(10)
    assert _counts(out["first"]) == expected
    assert not any("forward" in m.__dict__ for m in net.modules())
    with torch.no_grad():
        net(x)
    assert _counts(profile(net, x)) == expected


def test_a_batch_of_zero_samples_is_refused():
    with pytest.raises(ValueError, match="batch size 0"):
        profile(_spiking_block(), torch.rand(2, 0, 1, 8, 8))


def test_what_profile_keeps_does_not_keep_the_model_alive():
    import gc
    import weakref

    net = _spiking_block()
    profile(net, torch.rand(2, 2, 1, 8, 8) * 4)
    ref = weakref.ref(net)
    del net
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("n", [7, 5000, 100_003])
def test_spike_test_is_exact(n):
    from dta.measure import rules

    torch.manual_seed(0)
    spikes = (torch.rand(n) < 0.3).float()
    assert rules.is_binary(spikes) and rules.is_binary(spikes, head=False)
    tiny = torch.tensor(2.0 ** -149)  # the smallest float32 (subnormal)
    for value in (1 - 2.0 ** -24, 1 + 2.0 ** -23, tiny, 0.5, 2.0, -1.0, float("nan"),
                  float("inf")):
        for where in (0, n // 2, n - 1):  # anywhere: a sample of the elements is not enough
            x = spikes.clone()
            x[where] = value
            assert not rules.is_binary(x), (value, where)
    x = spikes.clone()
    x[n // 2] = -0.0  # a zero
    assert rules.is_binary(x)
    assert rules.is_binary(spikes.half()) and not rules.is_binary((spikes * 0.5).bfloat16())


@pytest.mark.parametrize("stride,padding,groups,size", [
    (1, 1, 1, (7, 6)), (2, 1, 2, (7, 6)), (1, 0, 4, (9, 8)), (2, 2, 1, (9, 8)), (3, 1, 2, (9, 9)),
    (1, 1, 2, (3, 4))])
def test_dense_weights_are_counted_per_spatial_position_exactly(monkeypatch, stride, padding,
                                                               groups, size):
    """A weight without zeros feeds every input channel alike: the counter then sums the
    active inputs over channels too (both reduction orders: fewer and more than 16
    positions) and must still match the brute force, for spikes and real inputs."""
    from dta.measure import rules

    torch.manual_seed(stride + 3 * padding + groups)
    conv = nn.Conv2d(4, 8, 3, stride=stride, padding=padding, groups=groups, bias=False)
    seen = []
    original = rules.active_counts

    def spy(x, groups, binary, work=None, per_channel=True, lead=1, raw=False):
        seen.append(per_channel)
        return original(x, groups, binary, work, per_channel, lead, raw)

    monkeypatch.setattr(rules, "active_counts", spy)
    spikes = (torch.rand(2, 3, 4, *size) < 0.3).float()
    expected = brute_force_effective(spikes.flatten(0, 1), conv.weight, stride, padding, groups)
    profile(Seq(conv), spikes)  # learns that the layer is one convolution
    seen.clear()
    r = profile(Seq(conv), spikes)
    assert seen == [False]  # counted from the hooks, channels summed
    assert r.totals["ac"] * 3 == pytest.approx(expected, abs=1e-9)
    real = spikes * (torch.rand_like(spikes) * 3 - 1.5)  # same zeros, real values
    rr = profile(Seq(conv), real)
    assert rr.totals["ac"] == 0 and rr.totals["mac"] * 3 == pytest.approx(expected, abs=1e-9)
    per_step = r.ops.groupby("t")["count"].sum().to_numpy() * 3
    steps = [brute_force_effective(spikes[t], conv.weight, stride, padding, groups)
             for t in range(2)]
    assert per_step.tolist() == pytest.approx(steps, abs=1e-9)


@pytest.mark.parametrize("shape", [(6, 5, 3, 4), (6, 5, 9, 8), (6, 3, 70)])
def test_active_counts_summed_over_channels_equal_the_per_channel_counts(shape):
    from dta.measure import rules

    torch.manual_seed(0)
    spikes = (torch.rand(shape) < 0.4).float()
    real = spikes * torch.randn(shape)
    real[0, 0].view(-1)[0] = float("nan")  # NaN counts as nonzero
    for x, binary in ((spikes, True), (real, False)):
        full = rules.active_counts(x, 3, binary)
        summed = full.reshape(3, shape[1], -1).sum(1)
        assert torch.equal(rules.active_counts(x, 3, binary, per_channel=False), summed)
        work = torch.full(shape, 7.0)  # (stale contents are overwritten)
        assert torch.equal(rules.active_counts(x, 3, binary, work, per_channel=False), summed)


def test_active_counts_stay_exact_past_float32_integers():
    """2**24 + 1 active inputs in one position: not a float32 integer, so the sum is taken
    in float64 (spikes and nonzero masks, per channel or summed over channels)."""
    from dta.measure import rules

    for value, binary in ((1.0, True), (0.5, False)):
        x = torch.full((2 ** 24 + 1, 1, 1), value)
        for per_channel in (True, False):
            assert rules.active_counts(x, 1, binary, per_channel=per_channel).item() == 2 ** 24 + 1


def test_spikes_no_convolution_reads_are_counted_exactly_past_float32_integers():
    """2**24 + 1 spikes in one step that no convolution reads: counted on their own, in
    float64 (float32 cannot hold the count)."""
    lif = faithful_lif()
    r = profile(lif, torch.full((1, 1, 2 ** 24 + 1), 4.0))
    assert r.totals["spikes"] == 2 ** 24 + 1


def test_profile_resets_a_model_a_forward_left_dirty():
    net = _spiking_block()
    x = torch.rand(2, 3, 1, 8, 8) * 4
    clean = profile(_copy_of(net), x)
    with torch.no_grad():
        net(x)  # no reset_net: the neurons keep their membrane potentials
    assert _counts(profile(net, x)) == _counts(clean)
    assert all(m.v == 0.0 for m in net.modules() if hasattr(m, "v"))  # reset after too
    assert _counts(profile(net, x)) == _counts(clean)


def test_a_module_with_its_own_reset_is_reset_before_and_after():
    class Stateful(nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def reset(self):
            self.calls += 1

        def forward(self, x):
            return x

    net = nn.Sequential(_spiking_block(), Stateful())
    profile(net, torch.rand(2, 3, 1, 8, 8) * 4)
    assert net[1].calls == 2  # before and after the forward


def test_a_neuron_swapped_in_after_a_call_is_reset():
    """spikingjelly's reset_net keeps its own list of modules per model; profile() resets
    from the module table of the call, which sees a neuron swapped in later."""
    from spikingjelly.activation_based import functional

    net = _spiking_block()
    x = torch.rand(2, 3, 1, 8, 8) * 4
    functional.reset_net(net)  # spikingjelly builds its list now
    profile(net, x)
    dirty = faithful_lif()
    with torch.no_grad():
        dirty(torch.rand(2, 3, 4, 8, 8) * 4)  # a neuron left mid-sequence
    replaced = net[2]  # still alive (a weak reference in spikingjelly's list stays valid)
    net[2] = dirty
    expected = profile(_copy_of(net).apply(lambda m: m.reset() if hasattr(m, "reset") and
                                           isinstance(m, base.MemoryModule) else None), x)
    assert _counts(profile(net, x)) == _counts(expected)
    assert dirty.v == 0.0  # and left reset


def test_swapped_modules_are_named_anew():
    """Two neurons swapped in place: the same module objects under each other's names. The
    first neuron to run is still called "2" (names follow the tree, not the objects)."""
    net = _spiking_block()
    x = torch.rand(2, 3, 1, 8, 8) * 4
    first = profile(net, x).firing["layer"].drop_duplicates().tolist()
    assert first == ["2", "5"]
    net[2], net[5] = net[5], net[2]
    assert profile(net, x).firing["layer"].drop_duplicates().tolist() == ["2", "5"]
    net.add_module("extra", faithful_lif())  # a new module at the end: a neuron row of its own
    assert profile(net, x).firing["layer"].drop_duplicates().tolist() == ["2", "5", "extra"]
    # a module replaced deeper in the tree (a grandchild): its parent's children changed
    deep = nn.Sequential(nn.Sequential(*list(_spiking_block()[:3])), _spiking_block()[3:6])
    assert profile(deep, x).firing["layer"].drop_duplicates().tolist() == ["0.2", "1.5"]
    deep[0][2] = nn.Identity()  # the first neuron gone: the next conv reads real values
    r = profile(deep, x)
    assert r.firing["layer"].drop_duplicates().tolist() == ["1.5"]
    assert _counts(r) == _counts(profile(_copy_of(deep), x))


class _Gate(nn.Module):
    """An attention-style gate: a real factor times a binary neuron's spikes (in that order)."""

    def __init__(self):
        super().__init__()
        self.lif = faithful_lif()

    def forward(self, x):
        s = self.lif(x)
        return torch.sigmoid(x) * s


def test_a_product_with_known_spikes_scans_no_factor(monkeypatch):
    from dta.measure import rules

    x = torch.rand(2, 3, 4, 5, 5) * 3
    net = _Gate()
    expected = profile(net, x)
    scanned = []
    original = rules.is_binary
    monkeypatch.setattr(rules, "is_binary",
                        lambda t, *a, **k: scanned.append(tuple(t.shape)) or original(t, *a, **k))
    r = profile(net, x)
    assert scanned == []  # the spikes settle it: the sigmoid output is not scanned
    assert r.totals["select"] == expected.totals["select"] == x.numel() / 3
    assert r.traffic.equals(expected.traffic)


def test_deferred_products_are_those_of_each_record_taken_alone():
    """finalize takes the deferred records' products with their fan-outs on the host, in
    float64 whatever the raw sums' dtype, the nonzeros only where asked (_DEFER_NNZ), and
    leaves a record counted in the forward as it is; records without features included."""
    import numpy as np

    from dta.measure.counter import _DEFER, _DEFER_NNZ, OpCounter

    rng = np.random.default_rng(0)
    shapes = [(3, 5), (3, 0), (1, 7), (4, 2), (2, 0)]
    records = []
    for i, (g, f) in enumerate(shapes):
        dtype = torch.float64 if i == 2 else torch.float32  # raw sums past 2**24 are float64
        active = torch.from_numpy(rng.integers(0, 50, (g, f)).astype(np.float64)).to(dtype)
        records.append(((active, rng.integers(1, 9, f).astype(np.float64)),
                        _DEFER_NNZ if i % 2 == 0 else _DEFER))
    done = (np.ones(2), None)  # a record counted in the forward stays as it is
    out = OpCounter._deferred_products([done, *records])
    assert out[0] is done
    for ((active, fan), nz), (ops, nnz) in zip(records, out[1:]):
        a = active.numpy().astype(np.float64)
        assert ops.tolist() == (a @ fan).tolist()
        assert (nnz is None) == (nz is _DEFER)
        assert nnz is None or nnz.tolist() == a.sum(1).tolist()


def test_count_rows_come_from_finalize_only():
    """A CountResult without rows has empty columns; one whose rows were not filled by
    OpCounter.finalize() says so rather than reading as zeros."""
    import numpy as np

    from dta.measure.counter import ROW_COLUMNS, CountResult

    empty = CountResult(T=2, B=1)
    assert set(empty.rows) == set(ROW_COLUMNS) and empty.rows["ac"].size == 0
    with pytest.raises(ValueError, match="finalize"):
        CountResult(T=2, B=1, row_event=np.zeros(2, dtype=np.int64),
                    row_t=np.arange(2)).rows


class _FunctionZoo(nn.Module):
    """Every kind of call the counter's front counts itself (sums and products with tensors
    and numbers, in place too, sigmoid, GELU, ReLU, means, views and basic indexing) next
    to calls it leaves to the dispatch mode (in-place product, keyword arguments, advanced
    indexing, a mean with keepdim, division, softmax), on spikes and on real tensors."""

    def __init__(self):
        super().__init__()
        self.conv = Seq(nn.Conv2d(1, 4, 3, padding=1))
        self.lif = faithful_lif()
        self.scale = nn.Parameter(torch.tensor(0.5))
        self.act = nn.GELU()
        self.relu = nn.ReLU()

    def forward(self, x):
        s = self.lif(self.conv(x))  # [T, B, 4, 8, 8] spikes
        t = s.transpose(0, 1).reshape(s.shape[1], -1)  # views of the spikes (pending)
        y = self.conv(x)  # real
        a = torch.sigmoid(y) * s + 1.0  # product with spikes, sum with a number
        a = 2.0 * a + y  # reflected product, sum of tensors
        a += s  # in place
        b = self.act(y.mean(dim=(3, 4)))[..., None, None]  # mean (keyword dim), GELU, index
        c = self.relu(y.mean(1)).unsqueeze(2) * self.scale  # mean (positional), ReLU, param
        d = torch.add(a, b, alpha=2)  # keyword argument: operator path
        d.mul_(0.5)  # in-place product: operator path
        e = y[:, :, [0, 1]].mean(2, keepdim=True)  # advanced index, keepdim: operator path
        f = torch.softmax(y.flatten(2), -1) / 3  # no front rule: operator path
        return d.sum() + e.sum() + f.sum() + c.sum() + t.float().sum() + torch.mul(a, a).sum()


@pytest.mark.parametrize("build", [lambda: (_FunctionZoo(), torch.rand(3, 2, 1, 8, 8) * 3),
                                   _ms_resnet18("dta"), _ms_resnet18("gac"), _sj_resnet18],
                         ids=["function-zoo", "ms18-dta", "ms18-gac", "spiking_resnet18"])
def test_the_function_front_counts_as_the_dispatch_mode(monkeypatch, build):
    """The torch-function front gives the records the dispatch mode alone gives: every
    table, the totals and the unsupported list."""
    from dta.measure import counter

    torch.manual_seed(0)
    net, x = build()
    seen = []
    original = counter.OpCounter._front_count
    monkeypatch.setattr(counter.OpCounter, "_front_count",
                        lambda self, func, *a: seen.append(func) or original(self, func, *a))
    profile(net, x)
    front = profile(net, x)
    assert seen  # the front counted calls itself
    monkeypatch.setattr(counter, "_top_front", None)  # (as on a torch without the front)
    alone = profile(_copy_of(net), x)
    assert alone.traffic.equals(front.traffic) and alone.ops.equals(front.ops)
    assert alone.firing.equals(front.firing) and alone.to_dict() == front.to_dict()


def test_the_front_leaves_the_mode_stacks_as_it_found_them():
    """After a call, also one that raised, no mode of the counter's is left on either stack;
    a torch-function mode of the caller's still sees the model's calls."""
    from torch.overrides import TorchFunctionMode

    class Seen(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.calls += 1
            return func(*args, **(kwargs or {}))

    net, x = _FunctionZoo(), torch.rand(3, 2, 1, 8, 8) * 3
    depth = (torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack())
    expected = profile(net, x)
    with Seen() as outer:
        r = profile(net, x)
    assert outer.calls > 0 and r.to_dict() == expected.to_dict()
    assert (torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack()) == depth

    class Raises(nn.Module):
        def forward(self, x):
            y = x * 2
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        profile(Raises(), x)
    assert (torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack()) == depth
    assert profile(net, x).to_dict() == expected.to_dict()
