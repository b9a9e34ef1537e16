"""Parameter counts of the released networks, shapes and input checks."""

import pytest
import torch

from dta.attention import create_attention
from dta.models import create_model, repeat_static


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_dta_block_parameter_counts_match_released_code():
    block = create_attention("dta", channels=64, T=6)
    assert n_params(block.tna) == 466_560
    assert n_params(block.txa) == 24_686
    assert n_params(block) == 491_246


def test_gac_block_parameter_count():
    assert n_params(create_attention("gac", channels=64, T=6)) == 131_108


@pytest.mark.parametrize("attention,expected", [("dta", 12_993_336), ("none", 12_502_090)])
def test_ms_resnet18_parameter_counts(attention, expected):
    net = create_model("ms_resnet18", attention=attention, T=6, num_classes=10)
    assert n_params(net) == expected


def test_width_scales_every_stage():
    net = create_model("ms_resnet18", attention="none", T=4, num_classes=10, width=16)
    convs = [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert max(convs) == 128 and min(convs) == 16


def test_ms_resnet34_ends_at_7x7_for_224_input():
    net = create_model("ms_resnet34", attention="none", T=1, num_classes=5, width=4).eval()
    seen = {}
    net.final_lif.register_forward_hook(lambda m, i, o: seen.update(shape=o.shape))
    with torch.no_grad():
        y = net(repeat_static(torch.randn(1, 3, 224, 224), 1))
    assert seen["shape"][-2:] == (7, 7)
    assert y.shape == (1, 1, 5)


def test_dvs_input_has_two_channels_and_output_is_time_first():
    net = create_model("ms_resnet18", attention="dta", T=3, num_classes=10, in_channels=2, width=8)
    assert net(torch.rand(3, 2, 2, 12, 12)).shape == (3, 2, 10)


def test_model_input_errors_name_expected_shapes():
    net = create_model("ms_resnet18", attention="none", T=4, num_classes=10, in_channels=1, width=8)
    with pytest.raises(ValueError, match=r"ms_resnet18 input: expected a 5-D tensor \[T, B, C, H, W\]"):
        net(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\[B, T, \.\.\.\] layout"):
        net(torch.randn(2, 4, 1, 8, 8))
    with pytest.raises(ValueError, match="expected 1 channels"):
        net(torch.randn(4, 2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"repeat_static: expected \[B, C, H, W\]"):
        repeat_static(torch.randn(4, 2, 1, 8, 8), 4)


def test_repeat_static_lives_in_shapes_and_is_re_exported():
    import dta.shapes

    assert repeat_static is dta.shapes.repeat_static
    x = torch.rand(2, 3, 4, 4)
    y = repeat_static(x, 3)
    assert y.shape == (3, 2, 3, 4, 4) and all(torch.equal(y[t], x) for t in range(3))
    with pytest.raises(ValueError, match="T must be >= 1, got 0"):
        repeat_static(x, 0)


def test_relu_backbone_is_the_equivalent_ann():
    """``neuron="relu"``: the same layers and parameters as the ``none`` SNN, ReLU in every
    LIF's place, no spiking neuron left; it runs at T=1 (the ``ann`` row of the bench)."""
    import torch
    from dta.measure import is_neuron
    from dta.models import create_model, repeat_static

    kw = dict(attention="none", num_classes=10, in_channels=1, width=8)
    snn = create_model("ms_resnet18", T=4, **kw)
    ann = create_model("ms_resnet18", T=1, neuron="relu", **kw)
    assert sum(p.numel() for p in ann.parameters()) == sum(p.numel() for p in snn.parameters())
    assert not any(is_neuron(m) for m in ann.modules())
    relus = [n for n, m in ann.named_modules() if isinstance(m, torch.nn.ReLU)]
    lifs = [n for n, m in snn.named_modules() if is_neuron(m)]
    assert relus == lifs and len(relus) == 17
    out = ann(repeat_static(torch.rand(3, 1, 8, 8), 1))
    assert out.shape == (1, 3, 10) and (out != out[0, 0]).any()


def test_unknown_neuron_lists_the_known_ones():
    import pytest
    from dta.models import create_model

    with pytest.raises(ValueError, match="unknown neuron 'tanh'; known: lif, relu"):
        create_model("ms_resnet18", attention="none", T=1, num_classes=10, neuron="tanh")
