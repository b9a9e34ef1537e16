"""The faithful LIF reproduces the released DTA-SNN neuron exactly (issue 9, item 1)."""

import pytest
import torch
from released_reference import ZIF, lif_tb
from spikingjelly.activation_based import functional, monitor, neuron, surrogate

from dta.measure import is_neuron
from dta.neuron import FAITHFUL_LIF_KWARGS, FaithfulLIF, faithful_lif, lif_multistep

DTYPES = [torch.float32, torch.float64, torch.float16]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def spikes(x, step_mode="m"):
    """Our LIF on ``[T, ...]``, in multi-step or as T single-step calls."""
    lif = faithful_lif(step_mode)
    out = lif(x) if step_mode == "m" else torch.stack([lif(xt) for xt in x])
    functional.reset_net(lif)
    return out


@pytest.mark.parametrize("step_mode", ["m", "s"])
def test_constant_threshold_input_fires_every_other_step(step_mode):
    x = torch.ones(6, 1)
    assert spikes(x, step_mode)[:, 0].tolist() == [0, 1, 0, 1, 0, 1]
    assert lif_tb(x)[:, 0].tolist() == [0, 1, 0, 1, 0, 1]


EXACT_SEQUENCES = [
    [1.0, 0.0, 0.0, 0.0],  # lands on the threshold, decays: never fires
    [0.5, 0.75, 0.0, 1.5],  # 0.25 + 0.75 = 1.0 exactly, then 0.5 + 1.5 = 2 fires
    [1.0, 0.5, 0.75, 0.625],  # 1.0, 1.0, 1.25 (fire), 0.625
    [2.0, 1.0, 1.0, 1.0],  # fires, then 1.0, 1.5 (fire), 1.0
    [0.0, 1.0, 0.5, 0.0],  # 1.0, 1.0, 0.5
    [1.0 + 2 ** -23, 1.0, 1.0 - 2 ** -24, 1.5],  # one ulp either side
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("step_mode", ["m", "s"])
def test_exact_threshold_sequences_match_released(step_mode, dtype):
    x = torch.tensor(EXACT_SEQUENCES, dtype=dtype).T  # [T=4, sequences]
    assert torch.equal(spikes(x, step_mode), lif_tb(x))
    # and spikingjelly's own LIFNode (>=) does not, on the same inputs:
    sj = neuron.LIFNode(surrogate_function=surrogate.PiecewiseQuadratic(alpha=1.0), step_mode="m",
                        **FAITHFUL_LIF_KWARGS)
    if dtype != torch.float16:  # spikingjelly's CPU kernels run float32/float64 only
        assert not torch.equal(sj(x.float()), lif_tb(x.float()))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("step_mode", ["m", "s"])
def test_random_inputs_give_identical_spikes_and_gradients(step_mode, dtype, device):
    for seed in range(3):
        torch.manual_seed(seed)
        x = (torch.randn(8, 4, 3, 5, 5, dtype=torch.float64) * 1.5).to(dtype).to(device)
        x.requires_grad_(True)
        x_ref = x.detach().clone().requires_grad_(True)
        s, s_ref = spikes(x, step_mode), lif_tb(x_ref)
        assert s.dtype == dtype and 0.05 < s.float().mean().item() < 0.6
        assert torch.equal(s, s_ref)
        g = torch.randn(s.shape, dtype=torch.float64).to(dtype).to(device)
        (s * g).sum().backward()
        (s_ref * g).sum().backward()
        # Bit for bit: the backward rounds in the order autograd does on the released loop.
        assert torch.equal(x.grad, x_ref.grad), (x.grad - x_ref.grad).abs().max()


def test_state_carries_across_calls_without_reset_with_gradients():
    """Two multi-step calls without reset = one call over both halves (values and grads)."""
    torch.manual_seed(0)
    x = (torch.randn(8, 3, 7) * 1.5).requires_grad_(True)
    lif = faithful_lif()
    s = torch.cat([lif(x[:4]), lif(x[4:])])
    x_ref = x.detach().clone().requires_grad_(True)
    s_ref = lif_tb(x_ref)
    assert torch.equal(s, s_ref)
    g = torch.randn_like(s)
    (s * g).sum().backward()
    (s_ref * g).sum().backward()
    assert torch.equal(x.grad, x_ref.grad)
    functional.reset_net(lif)
    assert lif.v == 0.0  # reset_net restores the float initial state


def test_membrane_output_gradient_matches_released():
    """Gradients that reach the final membrane (``v`` as an output) follow the recurrence."""
    torch.manual_seed(1)
    x = (torch.randn(5, 16) * 1.5).requires_grad_(True)
    s, v, _ = lif_multistep(x, torch.zeros(16), 1.0)
    loss = (s * torch.arange(5.0)[:, None]).sum() + (v * 3).sum()
    loss.backward()
    x_ref = x.detach().clone().requires_grad_(True)
    mem, out = torch.zeros(16), []
    for t in range(5):
        mem = 0.5 * mem + x_ref[t]
        spike = ZIF.apply(mem - 1.0)
        mem = (1 - spike) * mem
        out.append(spike)
    ref_loss = (torch.stack(out) * torch.arange(5.0)[:, None]).sum() + (mem * 3).sum()
    ref_loss.backward()
    assert torch.equal(x.grad, x_ref.grad)


def test_store_v_seq_and_monitors_and_counters_see_a_spikingjelly_neuron():
    lif = FaithfulLIF(store_v_seq=True)
    x = torch.tensor([[1.0], [1.0], [0.25]])
    assert lif(x)[:, 0].tolist() == [0, 1, 0]
    assert lif.v_seq[:, 0].tolist() == [1.0, 0.0, 0.25]
    assert isinstance(lif, neuron.LIFNode) and is_neuron(lif)
    net = torch.nn.Sequential(faithful_lif())
    mon = monitor.OutputMonitor(net, FaithfulLIF)
    net(torch.ones(4, 2))
    assert [r[:, 0].tolist() for r in mon.records] == [[0, 1, 0, 1]]
    mon.remove_hooks()


def test_surrogate_is_the_released_triangle():
    u = torch.tensor([-1.5, -1.0, -0.25, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    s = faithful_lif("s").surrogate_function(u)
    assert s.tolist() == [0, 0, 0, 0, 1, 1, 1]  # strictly above: 0 -> 0
    s.sum().backward()
    assert u.grad.tolist() == [0, 0, 0.75, 1, 0.5, 0, 0]


def _elementwise_calls(fn) -> int:
    """Element-wise ATen kernels launched by ``fn`` (torch.profiler; copies/views excluded)."""
    from torch.profiler import ProfilerActivity, profile

    skip = ("empty", "view", "select", "slice", "stack", "as_strided", "unsqueeze", "transpose",
            "detach", "zeros", "ones", "fill", "copy_", "to", "_to_copy", "clone", "unbind",
            "expand", "reshape", "t", "contiguous", "lift_fresh", "alias", "resolve", "sum",
            "result_type", "item", "_local_scalar_dense", "is_nonzero", "empty_like", "full",
            "zeros_like", "ones_like", "full_like", "new_empty", "scalar_tensor", "cat")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    names = [e.name for e in prof.events() if e.name.startswith("aten::")]
    # Count only the leaves the user-facing ops dispatch to once (out= variants included).
    leaf = [n[6:] for n in names]
    return sum(1 for n in leaf if n.rstrip("_") not in skip and not n.startswith("_"))


@pytest.mark.parametrize("T", [4, 6])
def test_issues_no_more_elementwise_kernels_per_step_than_released(T):
    torch.manual_seed(0)
    x = torch.randn(T, 64, 16, 8, 8) * 1.5

    def ours_fwd_bwd():
        xx = x.clone().requires_grad_(True)
        s = faithful_lif()(xx)
        s.sum().backward()

    def released_fwd_bwd():
        xx = x.clone().requires_grad_(True)
        lif_tb(xx).sum().backward()

    ours, released = _elementwise_calls(ours_fwd_bwd), _elementwise_calls(released_fwd_bwd)
    assert ours <= released, (ours, released)


@pytest.mark.parametrize("channels_last", [False, True])
def test_custom_op_passes_torch_opcheck(channels_last):
    """Schema, fake (meta) implementation, strides and autograd registration agree."""
    x = torch.randn(3, 2, 4, 5, 5) * 1.5
    if channels_last:  # a strided input: the outputs are still contiguous, as the fake says
        x = (torch.randn(3, 2, 5, 5, 4) * 1.5).permute(0, 1, 4, 2, 3)
        assert not x.is_contiguous()
    x.requires_grad_(True)
    torch.library.opcheck(lif_multistep, (x, torch.zeros(2, 4, 5, 5), 1.0))
