"""The SNN attention methods DTA competes with, in the same encoding slot.

Each class cites its paper and official code; each sits where that code puts
it relative to the LIF (see :mod:`dta.attention.base` for the placement table).
What each follows: ``gac`` bollossom/GAC ``TA`` + ``SCA``; ``tcja`` ridgerchu/TCJA
``TCJA``; ``ta`` BICLab/TA-SNN ``Tlayer``; ``ma`` spikingjelly's
``MultiDimensionalAttention`` (not compared with MA-SNN's own code).
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import layer
from torch import nn

from . import register_attention
from .base import AttentionBlock


class _GACTemporal(nn.Module):
    """GAC's TA: a shared bias-free 1x1 Conv3d MLP over T on avg- and max-pooled X."""

    def __init__(self, T: int, ratio: int = 2):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool3d(1)
        self.max_pool = nn.AdaptiveMaxPool3d(1)
        self.mlp = nn.Sequential(
            nn.Conv3d(T, T // ratio, 1, bias=False),
            nn.ReLU(),
            nn.Conv3d(T // ratio, T, 1, bias=False),
        )

    def forward(self, xb: torch.Tensor) -> torch.Tensor:  # [B, T, C, H, W] -> [B, T, 1, 1, 1]
        return self.mlp(self.avg_pool(xb)) + self.mlp(self.max_pool(xb))


@register_attention("gac")
class GAC(AttentionBlock):
    """Gated Attention Coding: ``sigmoid(TA(X) * SCA(X)) * S``.

    Qiu et al., "Gated Attention Coding for Training High-performance and
    Efficient Spiking Neural Networks", AAAI 2024; official code
    https://github.com/bollossom/GAC (models/GAU.py: ``TA(T, ratio=2)`` and
    ``SCA(in_planes, kerenel_size=4)``), the codebase DTA-SNN forked.
    SCA is two bias-free 4x4 'same' convs with a ReLU between, per frame.
    131,108 parameters at T=6, C=64.
    """

    placement = "after_lif"
    paper = "Qiu et al., Gated Attention Coding for Training High-performance and Efficient SNNs, AAAI 2024"
    code = "https://github.com/bollossom/GAC"

    def __init__(self, *, channels: int, T: int, kernel_size: int = 4):
        super().__init__(channels=channels, T=T)
        if T < 2:
            raise ValueError(f"gac attention: its TA reduces T by 2 and needs T >= 2, got T={T}")
        self.ta = _GACTemporal(T)
        self.sca = layer.SeqToANNContainer(
            nn.Conv2d(channels, channels, kernel_size, padding="same", bias=False),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size, padding="same", bias=False),
        )

    def forward(self, x: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(x, s)
        ta = self.ta(x.transpose(0, 1)).transpose(0, 1)  # [T, B, 1, 1, 1]
        return torch.sigmoid(ta * self.sca(x)) * s


@register_attention("tcja")
class TCJA(AttentionBlock):
    """Temporal-Channel Joint Attention on the spikes: ``S * sigmoid(TLA(S) * CLA(S))``.

    Zhu et al., "TCJA-SNN: Temporal-Channel Joint Attention for Spiking Neural
    Networks", IEEE TNNLS 2024; official code https://github.com/ridgerchu/TCJA
    (src/layers.py ``TCJA``; equal to it with copied weights). Its networks place
    ``TCJA(4, 4, T, C)`` after the LIF of a conv-BN-LIF unit, so it gates spikes
    with attention computed from spikes. On ``z = mean_HW(S)`` ``[B, T, C]``, both
    bias-free and 'same'-padded, named as in the official ``TLA`` / ``CLA`` classes:
    TLA (temporal-wise local attention) is ``Conv1d(C->C, k=4)`` sliding along T
    (``conv_c``); CLA (channel-wise local attention) is ``Conv1d(T->T, k=4)``
    sliding along C (``conv_t``).
    """

    placement = "after_lif"
    paper = "Zhu et al., TCJA-SNN: Temporal-Channel Joint Attention for SNNs, IEEE TNNLS 2024"
    code = "https://github.com/ridgerchu/TCJA"

    def __init__(self, *, channels: int, T: int, kernel_size_t: int = 4, kernel_size_c: int = 4):
        super().__init__(channels=channels, T=T)
        self.conv_t = nn.Conv1d(T, T, kernel_size_t, padding="same", bias=False)  # CLA
        self.conv_c = nn.Conv1d(channels, channels, kernel_size_c, padding="same", bias=False)  # TLA

    def forward(self, x: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(x, s)
        z = s.mean(dim=(3, 4)).transpose(0, 1)  # [B, T, C]
        cla = self.conv_t(z)  # [B, T, C]
        tla = self.conv_c(z.transpose(1, 2)).transpose(1, 2)  # [B, T, C]
        gate = torch.sigmoid(tla * cla).transpose(0, 1)[..., None, None]  # [T, B, C, 1, 1]
        return s * gate


def small_t_reduction(T: int) -> int:
    """Temporal reduction ``max(1, T // 2)``: a hidden width of 2 for every T >= 4.

    The papers' r=16 assumes T >= 16 (TA-SNN uses it for DVS128 Gesture at
    T=60); TA-SNN's own CIFAR10-DVS setting, T=10 with r=5, is this rule.
    spikingjelly asserts ``T >= reduction``.
    """
    return max(1, T // 2)


@register_attention("ta")
class TemporalWise(AttentionBlock):
    """TA-SNN temporal-wise attention on X, before the LIF: ``X * Tlayer(X)``.

    Yao et al., "Temporal-wise Attention Spiking Neural Networks for Event
    Streams Classification", ICCV 2021; official code
    https://github.com/BICLab/TA-SNN (module/TA.py ``Tlayer``, placed
    conv -> BN -> Tlayer -> LIF in ``ConvAttLIF``). As ``Tlayer``: the score
    of step t is ``sigmoid(W2 relu(W1 m + b1) + b2)_t`` with ``m = mean_{C,H,W}(X)``
    ``[B, T]``, ``W1: T -> T // r`` and ``W2: T // r -> T`` Linear layers with
    bias (``temporal_excitation``, official names); output ``[T, B, C, H, W]``.
    Reduction ``r = max(1, T // 2)`` (:func:`small_t_reduction`) so it runs at
    small T: hidden width 2 for T >= 4, 22 parameters at T=4, 32 at T=6.

    spikingjelly's ``layer.TemporalWiseAttention`` differs: it pools by average
    *and* max over (C, H, W), passes both through one bias-free MLP, and applies
    the sigmoid to the sum (16 parameters at T=4, r=2). It is not registered here.
    """

    placement = "before_lif"
    paper = "Yao et al., Temporal-wise Attention SNNs for Event Streams Classification, ICCV 2021"
    code = "https://github.com/BICLab/TA-SNN"

    def __init__(self, *, channels: int, T: int, reduction: int | None = None):
        super().__init__(channels=channels, T=T)
        r = small_t_reduction(T) if reduction is None else int(reduction)
        if not 1 <= r <= T:
            raise ValueError(f"ta attention: reduction must be in 1..T={T} (hidden width "
                             f"T // reduction >= 1), got {reduction}")
        hidden = T // r
        self.temporal_excitation = nn.Sequential(
            nn.Linear(T, hidden), nn.ReLU(), nn.Linear(hidden, T), nn.Sigmoid())

    def forward(self, x: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(x, s)
        m = x.mean(dim=(2, 3, 4)).transpose(0, 1)  # [B, T]: average pooling only
        score = self.temporal_excitation(m).transpose(0, 1)  # [T, B]
        return x * score[..., None, None, None]


@register_attention("ma")
class MultiDimensional(AttentionBlock):
    """MA-SNN multi-dimensional (temporal, channel, spatial) attention on X, before the LIF.

    Yao et al., "Attention Spiking Neural Networks", IEEE TPAMI 2023; official
    code https://github.com/MA-SNN/MA-SNN. Built from spikingjelly's
    ``layer.MultiDimensionalAttention`` with temporal reduction ``max(1, T // 2)``
    and channel reduction ``max(1, min(16, C // 4))`` (16 at C=64, as in the paper).
    """

    placement = "before_lif"
    paper = "Yao et al., Attention Spiking Neural Networks, IEEE TPAMI 2023"
    code = "https://github.com/MA-SNN/MA-SNN"

    def __init__(self, *, channels: int, T: int):
        super().__init__(channels=channels, T=T)
        self.mda = layer.MultiDimensionalAttention(
            T,
            channels,
            reduction_t=small_t_reduction(T),
            reduction_c=max(1, min(16, channels // 4)),
            kernel_size=3,
        )

    def forward(self, x: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(x, s)
        return self.mda(x)
