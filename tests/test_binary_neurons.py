"""The counter trusts {0, 1} outputs of neurons that fire by a comparison (issue 12).

A convolution reading such a neuron's untouched output skips the exact {0, 1}
scan of its input; these tests pin which neurons are trusted and that the counts
are the same as with the scan.
"""

import math

import pandas as pd
import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from spikingjelly.activation_based.model import spiking_resnet
from torch import nn

from dta.measure import counter, profile
from dta.models import create_model, repeat_static
from dta.neuron import FaithfulLIF


@pytest.mark.parametrize("make", [
    FaithfulLIF,
    lambda: FaithfulLIF(step_mode="s"),
    lambda: neuron.IFNode(step_mode="m"),
    lambda: neuron.LIFNode(tau=2.0, step_mode="m", surrogate_function=surrogate.ATan()),
    lambda: neuron.ParametricLIFNode(step_mode="m", surrogate_function=surrogate.Sigmoid()),
], ids=["faithful-m", "faithful-s", "if", "lif-atan", "plif-sigmoid"])
def test_trusted(make):
    assert counter.emits_binary_spikes(make())


# Inputs that end exactly on the threshold, far above and below it, signed zeros, subnormals,
# infinities and NaN, over several steps: whatever comes in, a trusted neuron emits 0 or 1.
_EDGES = torch.tensor([-math.inf, -1e30, -1.0, -1e-45, -0.0, 0.0, 1e-45, 0.5, 1.0, 2.0, 1e30,
                       math.inf, math.nan])


@pytest.mark.parametrize("step_mode", ["m", "s"])
@pytest.mark.parametrize("make", [
    FaithfulLIF,
    lambda **kw: neuron.IFNode(**kw),
    lambda **kw: neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), **kw),
    lambda **kw: neuron.ParametricLIFNode(surrogate_function=surrogate.Sigmoid(), **kw),
], ids=["faithful", "if", "lif-atan", "plif-sigmoid"])
def test_trusted_neurons_emit_only_0_and_1(make, step_mode):
    torch.manual_seed(0)
    x = torch.cat([_EDGES.repeat(4, 2, 1), torch.randn(4, 2, 64) * 3], dim=-1)  # [T, B, N]
    node = make(step_mode=step_mode)
    assert counter.emits_binary_spikes(node)
    with torch.no_grad():
        out = node(x) if step_mode == "m" else torch.stack([node(x[t]) for t in range(4)])
    assert out.shape == x.shape and ((out == 0) | (out == 1)).all()
    assert out.sum() > 0  # it fired: the check is not over an all-zero output


class _ScaledLIF(neuron.LIFNode):  # a subclass may fire differently: not trusted
    pass


def _hooked():
    m = FaithfulLIF()
    m.register_forward_hook(lambda mod, args, out: out * 2)
    return m


@pytest.mark.parametrize("make", [
    lambda: neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(spiking=False)),
    lambda: neuron.IFNode(surrogate_function=surrogate.MultiLevelSpikeCount(max_spike_count=3)),
    lambda: _ScaledLIF(tau=2.0),
    _hooked,
    lambda: nn.ReLU(),
], ids=["non-spiking-surrogate", "multi-level", "subclass", "forward-hook", "relu"])
def test_not_trusted(make):
    assert not counter.emits_binary_spikes(make())


def _counts(net, x, monkeypatch, trust: bool):
    """Totals and the per-row traffic table of one profile, with or without the shortcut."""
    if not trust:
        monkeypatch.setattr(counter, "emits_binary_spikes", lambda module: False)
    report = profile(net, x)
    monkeypatch.undo()
    return report.totals, report.traffic


def _skipped_scans(net, x, monkeypatch) -> int:
    """How many convolution inputs skipped the exact scan (known spikes, not scanned)."""
    scans = []
    real = counter.rules.is_binary
    monkeypatch.setattr(counter.rules, "is_binary",
                        lambda t, head=True, work=None: scans.append(head) or real(t, head, work))
    profile(net, x)
    monkeypatch.undo()
    return scans.count(False)


@pytest.mark.parametrize("network", ["ms_resnet18+dta", "spiking_resnet18"])
def test_counts_equal_with_and_without_trust(network, monkeypatch):
    torch.manual_seed(0)
    if network == "spiking_resnet18":
        net = spiking_resnet.spiking_resnet18(spiking_neuron=neuron.IFNode, num_classes=10)
        functional.set_step_mode(net, "m")
        x = torch.rand(2, 2, 3, 16, 16) * 5
    else:
        net = create_model("ms_resnet18", attention="dta", T=4, num_classes=10, in_channels=1,
                           width=8)
        x = repeat_static(torch.rand(4, 1, 8, 8), 4)
    net.eval()
    trusted, trusted_rows = _counts(net, x, monkeypatch, trust=True)
    scanned, scanned_rows = _counts(net, x, monkeypatch, trust=False)
    assert trusted == scanned
    pd.testing.assert_frame_equal(trusted_rows, scanned_rows, check_exact=True)
    assert trusted["ac"] > 0  # spike inputs were found: the comparison has teeth
    # with trust, known-spike inputs are not scanned at all
    monkeypatch.setattr(counter, "emits_binary_spikes", lambda module: False)
    assert _skipped_scans(net, x, monkeypatch) > 0
    assert _skipped_scans(net, x, monkeypatch) == 0


class _InPlace(nn.Module):
    """conv -> LIF -> in-place scaling of the spikes -> conv: the second conv reads reals."""

    def __init__(self, scale: float):
        super().__init__()
        self.conv1 = layer.Conv2d(1, 4, 3, padding=1, step_mode="m")
        self.lif = FaithfulLIF()
        self.conv2 = layer.Conv2d(4, 4, 3, padding=1, step_mode="m")
        self.scale = scale

    def forward(self, x):
        s = self.lif(self.conv1(x) * 4)
        s.mul_(self.scale)  # a new version of the spike storage
        return self.conv2(s)


def test_in_place_write_after_the_neuron_is_scanned(monkeypatch):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 1, 6, 6)
    halved = profile(_InPlace(0.5).eval(), x)
    assert halved.totals["ac"] == 0  # 0.5-valued inputs: MACs, not ACs
    assert halved.totals["mac"] > 0
    # scaled by 1 the values stay {0, 1}: the scan (run because the version moved) finds spikes
    assert profile(_InPlace(1.0).eval(), x).totals["ac"] > 0


def test_in_place_product_on_the_spikes_is_not_a_select():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.lif = FaithfulLIF()

        def forward(self, x):
            s = self.lif(x)
            s.mul_(torch.full_like(s, 0.5))  # the product's input is the spike storage itself
            return s * x  # reads reals now

    r = profile(Gate().eval(), torch.full((2, 1, 4), 2.0))
    muls = r.traffic[r.traffic.op.isin(["mul", "mul_"])]
    assert len(muls) >= 2
    # inside the in-place product the spike storage's version is not bumped yet, so the
    # shortcut must not vouch for it: as without the shortcut, the operands are classified
    # after the op ran, and both products are MACs, neither a select
    assert (muls["select"] == 0).all() and (muls["mac"] > 0).all()
