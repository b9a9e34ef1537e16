"""Every registered attention method honours the slot contract."""

import pytest
import torch
from spikingjelly.activation_based import functional

import dta.attention as attention
from dta.models import create_model, list_models, repeat_static
from dta.neuron import faithful_lif

METHODS = attention.list_attention()
T, B, C, H = 4, 2, 8, 6


def test_registry_lists_the_eight_methods_in_order():
    assert METHODS[:8] == ["none", "dta", "txa", "tna", "gac", "tcja", "ta", "ma"]


def test_every_method_cites_paper_and_code():
    for name in METHODS:
        cls = attention.get_attention(name)
        assert cls.paper and cls.code.startswith("https://"), name
        assert cls.__doc__ and len(cls.__doc__) > 40, name


def _slot_inputs():
    x = torch.randn(T, B, C, H, H) * 2
    return x, faithful_lif()(x)


@pytest.mark.parametrize("name", METHODS)
def test_block_shape_and_finite(name):
    block = attention.create_attention(name, channels=C, T=T)
    x, s = _slot_inputs()
    y = block(x, s if block.needs_spikes else None)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", METHODS)
def test_gradients_reach_every_trainable_parameter(name):
    net = create_model("ms_resnet18", attention=name, T=T, num_classes=3, in_channels=1, width=8)
    x = repeat_static(torch.randn(B, 1, 8, 8) * 3, T)
    net(x).mean(0).logsumexp(1).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached {missing}"
    # The attention block and the stem must actually learn. (Deeper layers can sit
    # behind a silent LIF at init: tcja/ma feed stage 1 values below threshold.)
    zero = [n for n, p in net.named_parameters()
            if n.startswith(("attention", "stem")) and not p.grad.abs().sum() > 0]
    assert not zero, f"all-zero gradient for {zero}"
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("name", METHODS)
def test_reset_net_makes_forward_repeatable(name):
    # Train-mode BN normalises with batch statistics, so the net spikes at init.
    net = create_model("ms_resnet18", attention=name, T=T, num_classes=3, in_channels=1, width=8)
    x = repeat_static(torch.randn(B, 1, 8, 8) * 3, T)
    with torch.no_grad():
        y1 = net(x)
        functional.reset_net(net)
        y2 = net(x)
        y3 = net(x)  # without reset the membrane carries over: a different answer
    assert torch.equal(y1, y2)
    assert not torch.equal(y2, y3)


@pytest.mark.parametrize("name", ["dta", "tna", "gac", "txa"])
def test_block_built_for_one_T_rejects_another(name):
    block = attention.create_attention(name, channels=C, T=6)
    x, s = _slot_inputs()
    with pytest.raises(ValueError, match=r"built for T=6.*shape\[0\]=6"):
        block(x, s)


@pytest.mark.parametrize("name", METHODS)
def test_block_rejects_wrong_rank_channels_and_layout(name):
    block = attention.create_attention(name, channels=C, T=T)
    x, s = _slot_inputs()
    with pytest.raises(ValueError, match=r"5-D tensor \[T, B, C, H, W\], received shape \(4, 2, 8, 6\)"):
        block(x[..., 0], s[..., 0])
    with pytest.raises(ValueError, match=r"expected 8 channels"):
        block(x[:, :, :5], s[:, :, :5])
    bt = torch.randn(3, T, C, H, H)  # [B, T, ...] with B=3
    with pytest.raises(ValueError, match=r"\[B, T, \.\.\.\] layout"):
        block(bt, bt)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(KeyError, match="known attention methods: none, dta, txa"):
        attention.create_attention("dtaa", channels=C, T=T)
    with pytest.raises(ValueError, match="known models: ms_resnet18, ms_resnet34"):
        create_model("resnet18", attention="dta", T=T, num_classes=10)
    assert list_models() == ["ms_resnet18", "ms_resnet34"]


def test_duplicate_registration_is_an_error():
    with pytest.raises(ValueError, match="duplicate attention method name 'dta'"):
        @attention.register_attention("dta")
        class Again(attention.AttentionBlock):
            pass


@pytest.mark.parametrize("T,expected", [(4, 22), (6, 32), (10, 52)])
def test_ta_is_the_official_tlayer_parameter_count(T, expected):
    # Tlayer: Linear(T, T//r) + Linear(T//r, T), both with bias; r = max(1, T // 2).
    # spikingjelly's TemporalWiseAttention has 16 at T=4 (bias-free), not this.
    block = attention.create_attention("ta", channels=64, T=T)
    assert sum(p.numel() for p in block.parameters()) == expected


def test_ta_scores_by_average_pooling_with_the_sigmoid_inside():
    block = attention.create_attention("ta", channels=C, T=T).double()
    x = torch.randn(T, B, C, H, H, dtype=torch.double) * 2
    x[:, :, 0] += 5.0  # a large maximum: spikingjelly's variant (max pooling too) would differ
    lin1, lin2 = block.temporal_excitation[0], block.temporal_excitation[2]
    m = x.mean(dim=(2, 3, 4)).T  # [B, T]
    score = torch.sigmoid(torch.relu(m @ lin1.weight.T + lin1.bias) @ lin2.weight.T + lin2.bias)
    expected = x * score.T[:, :, None, None, None]
    assert torch.allclose(block(x), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"reduction must be in 1..T=4"):
        attention.get_attention("ta")(channels=C, T=T, reduction=5)


def test_tcja_names_follow_the_official_tla_and_cla():
    # official TLA: Conv1d(C->C) sliding along T; CLA: Conv1d(T->T) sliding along C
    block = attention.create_attention("tcja", channels=C, T=T)
    assert block.conv_c.weight.shape == (C, C, 4) and block.conv_t.weight.shape == (T, T, 4)
