"""The faithful LIF is at least as fast as the released loop (issue 12, item 2).

Ratios ours / released recurrence, measured interleaved in one run (``make perf``):
the neuron alone (forward, and backward) at T=4 and T=6 on a layer of the
embedded default and one of the full-size CIFAR network, and one training step
of ``ms_resnet18`` + ``dta`` against the same network whose LIF layers run the
released loop (``released_reference.ReleasedLIF``). With ``--benchmark-disable``
(the normal test run) each runs once as a smoke test.
"""

import time

import pytest
import torch
from released_reference import ReleasedLIF, lif_tb
from spikingjelly.activation_based import functional

from dta.models import create_model, repeat_static
from dta.neuron import FaithfulLIF, faithful_lif

from .timing import paired_times, report

MAX_NEURON_RATIO = 1.0  # ours / released, forward and backward
MAX_STEP_RATIO = 1.0  # target: training step with our LIF / with the released loop
# asserted: the neuron is ~5 % of a step, so the step ratio (0.88-0.93 measured in quiet runs)
# drowns in load noise (1.77 seen once at load 5); the neuron-only ratios above keep <= 1.0
CI_STEP_RATIO = 1.15
LAYERS = {"default": (64, 32, 8, 8), "cifar": (8, 128, 32, 32)}  # [B, C, H, W] of a stage-1 LIF


def _timed_forward(lif_fn, x):
    def run():
        xx = x.detach().requires_grad_(True)
        t0 = time.perf_counter()
        lif_fn(xx)
        return time.perf_counter() - t0
    return run


def _timed_backward(lif_fn, x):
    def run():
        xx = x.detach().requires_grad_(True)
        s = lif_fn(xx)
        g = torch.ones_like(s)
        t0 = time.perf_counter()
        s.backward(g)
        return time.perf_counter() - t0
    return run


def _ours(x):
    return faithful_lif()(x)  # a fresh layer: no state carried between calls


@pytest.mark.parametrize("layer", sorted(LAYERS))
@pytest.mark.parametrize("T", [4, 6])
def test_lif_forward_and_backward_vs_released(benchmark, T, layer):
    torch.manual_seed(0)
    x = torch.randn(T, *LAYERS[layer]) * 1.5
    benchmark.pedantic(_timed_backward(_ours, x), rounds=3, warmup_rounds=1)
    if benchmark.disabled:
        return
    fwd = paired_times(_timed_forward(_ours, x), _timed_forward(lif_tb, x), rounds=15)
    bwd = paired_times(_timed_backward(_ours, x), _timed_backward(lif_tb, x), rounds=15)
    benchmark.extra_info.update(T=T, layer=layer, shape=list(x.shape), forward_ratio=fwd,
                                backward_ratio=bwd, max_ratio=MAX_NEURON_RATIO)
    report(f"LIF ours/released T={T} {layer} {tuple(x.shape)}: forward {fwd:.2f}x, "
          f"backward {bwd:.2f}x")
    assert fwd <= MAX_NEURON_RATIO and bwd <= MAX_NEURON_RATIO, (fwd, bwd)


def _with_released_lif(net):
    for name, m in list(net.named_modules()):
        if isinstance(m, FaithfulLIF):
            parent, _, attr = name.rpartition(".")
            setattr(net.get_submodule(parent) if parent else net, attr, ReleasedLIF())
    return net


STEPS = {  # name: (T, batch, width, in_channels, size)
    "default": (4, 64, 16, 1, 8),  # the embedded default (digits preset)
    "cifar": (6, 8, 64, 3, 32),  # the paper's CIFAR network, batch 8
}


@pytest.mark.parametrize("case", sorted(STEPS))
def test_training_step_vs_released_neuron(benchmark, case):
    T, batch, width, ch, size = STEPS[case]
    torch.manual_seed(0)
    ours = create_model("ms_resnet18", attention="dta", T=T, num_classes=10, in_channels=ch,
                        width=width)
    released = _with_released_lif(create_model("ms_resnet18", attention="dta", T=T, num_classes=10,
                                               in_channels=ch, width=width))
    released.load_state_dict(ours.state_dict())
    x = repeat_static(torch.rand(batch, ch, size, size), T)
    y = torch.randint(0, 10, (batch,))

    def step(net, opt):
        def run():
            t0 = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(net(x).mean(0), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            functional.reset_net(net)
            return time.perf_counter() - t0
        return run

    ours_step = step(ours.train(), torch.optim.SGD(ours.parameters(), lr=0.01))
    released_step = step(released.train(), torch.optim.SGD(released.parameters(), lr=0.01))
    benchmark.pedantic(ours_step, rounds=2 if case == "default" else 1, warmup_rounds=1)
    if benchmark.disabled:
        return
    ratio = paired_times(ours_step, released_step, rounds=9 if case == "default" else 3)
    benchmark.extra_info.update(case=case, T=T, batch=batch, width=width, size=size,
                                step_ratio=ratio, max_ratio=MAX_STEP_RATIO,
                                meets_target=ratio <= MAX_STEP_RATIO)
    report(f"training step ours/released-LIF ({case}: T={T}, batch {batch}, width {width}, "
          f"{size}x{size}): {ratio:.3f}x")
    assert ratio <= CI_STEP_RATIO, ratio
