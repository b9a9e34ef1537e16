"""The faithful LIF reproduces the released DTA-SNN neuron exactly."""

import torch

from dta.neuron import faithful_lif


class _ReleasedSpike(torch.autograd.Function):
    """The released code's Heaviside (strictly greater) with the triangular surrogate."""

    @staticmethod
    def forward(ctx, v_minus_threshold):
        ctx.save_for_backward(v_minus_threshold)
        return (v_minus_threshold > 0).float()

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * (1 - u.abs()).clamp(min=0)


def released_lif(x):
    mem = torch.zeros_like(x[0])
    spikes = []
    for t in range(x.shape[0]):
        mem = 0.5 * mem + x[t]
        spike = _ReleasedSpike.apply(mem - 1.0)
        mem = (1 - spike) * mem
        spikes.append(spike)
    return torch.stack(spikes)


def test_spikes_and_surrogate_gradients_match_released_recurrence():
    for seed in range(3):
        torch.manual_seed(seed)
        x = (torch.randn(8, 4, 3, 5, 5) * 1.5).requires_grad_(True)
        x_ref = x.detach().clone().requires_grad_(True)
        lif = faithful_lif()
        s = lif(x)
        s_ref = released_lif(x_ref)
        assert 0.05 < s.mean().item() < 0.6  # a real mix of spikes and silence
        assert torch.equal(s, s_ref)
        g = torch.randn_like(s)
        (s * g).sum().backward()
        (s_ref * g).sum().backward()
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=0, atol=1e-6)


def test_equality_edge_case_is_the_documented_difference():
    # mem == threshold exactly: spikingjelly fires (>=), the released code does not (>).
    x = torch.tensor([[1.0], [0.6]])
    assert faithful_lif()(x)[:, 0].tolist() == [1.0, 0.0]
    assert released_lif(x)[:, 0].tolist() == [0.0, 1.0]
