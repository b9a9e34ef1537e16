"""DTA: Dual Temporal-channel-wise Attention (T-XA + T-NA), and its two halves.

Minje Kim, Minjun Kim & Xu Yang, "DTA: Dual Temporal-channel-wise Attention for Spiking
Neural Networks", WACV 2025, arXiv:2503.10052. Official code:
https://github.com/MnJnKIM/DTA-SNN (models/TXA.py, models/TNA.py, models/DTA.py).

These modules reproduce the released modules parameter for parameter
(T=6, C=64: T-NA 466,560, T-XA 24,686, DTA 491,246) with two changes that do
not alter the computation: tensors are time-first ``[T, B, C, H, W]`` (the
released code is ``[B, T, ...]``; we transpose at the block boundary), and
T-XA takes ``C`` from the model instead of the released hard-coded 64.
"""

from __future__ import annotations

import torch
from torch import nn

from . import register_attention
from .base import AttentionBlock


class TXA(nn.Module):
    """Temporal-channel cross attention (T-XA).

    ``z = mean_HW(X)`` as ``[B, T, C]``; ``A1 = sigmoid(Conv1d_{T->T, k=3}(z))``
    slides along C, ``A2 = sigmoid(Conv1d_{C->C, k=6}(z^T))`` slides along T (both
    'same'-padded, no bias); with learnable scalars ``a, b`` (init 1) the output is
    ``(X + a*A1) * (X + b*A2)``, shape ``[T, B, C, H, W]``.
    """

    def __init__(self, *, channels: int, T: int, kernel_t: int = 3, kernel_c: int = 6):
        super().__init__()
        self.conv_t = nn.Conv1d(T, T, kernel_t, padding="same", bias=False)
        self.conv_c = nn.Conv1d(channels, channels, kernel_c, padding="same", bias=False)
        self.scale_t = nn.Parameter(torch.tensor(1.0))
        self.scale_c = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.mean(dim=(3, 4)).transpose(0, 1)  # [B, T, C]
        a1 = torch.sigmoid(self.conv_t(z))  # [B, T, C]
        a2 = torch.sigmoid(self.conv_c(z.transpose(1, 2))).transpose(1, 2)  # [B, T, C]
        a1 = a1.transpose(0, 1)[..., None, None]  # [T, B, C, 1, 1]
        a2 = a2.transpose(0, 1)[..., None, None]
        return (x + self.scale_t * a1) * (x + self.scale_c * a2)


class TCA(nn.Module):
    """Temporal-channel aggregation inside T-NA: ``GTCA * LTCA * u`` on ``[B, TC, H, W]``.

    LTCA = conv1x1(dwconv_dilated(dwconv5x5(u))); with the released
    ``kernel_size=7, dilation=3`` the dilated depthwise conv is 1x1. GTCA is a
    bias-free MLP ``TC -> TC // max(TC//16, 4) -> TC`` on GAP(u), no sigmoid.
    """

    def __init__(self, dim: int, kernel_size: int = 7, dilation: int = 3, reduction: int = 16):
        super().__init__()
        d_k = 2 * dilation - 1
        dd_k = kernel_size // dilation + ((kernel_size // dilation) % 2 - 1)
        self.ltca = nn.Sequential(
            nn.Conv2d(dim, dim, d_k, padding=(d_k - 1) // 2, groups=dim),
            nn.Conv2d(dim, dim, dd_k, padding=dilation * (dd_k - 1) // 2, groups=dim,
                      dilation=dilation),
            nn.Conv2d(dim, dim, 1),
        )
        hidden = dim // max(dim // reduction, 4)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.gtca = nn.Sequential(
            nn.Linear(dim, hidden, bias=False),
            nn.ReLU(),
            nn.Linear(hidden, dim, bias=False),
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        g = self.gtca(self.gap(u).flatten(1))[..., None, None]  # [B, TC, 1, 1]
        return g * self.ltca(u) * u


class TNA(nn.Module):
    """Temporal-channel neighbourhood attention (T-NA) on X folded to ``[B, T*C, H, W]``.

    ``u = GELU(conv1x1(X'))``; ``T_NA = conv1x1(TCA(u)) + X'``; unfolded back to
    ``[T, B, C, H, W]``. The fold is T-major (channel ``t*C + c``), as released.
    """

    def __init__(self, *, channels: int, T: int, kernel_size: int = 7):
        super().__init__()
        dim = channels * T
        self.encoding = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.GELU())
        self.tca = TCA(dim, kernel_size)
        self.decoding = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        folded = x.transpose(0, 1).reshape(B, T * C, H, W)
        y = self.decoding(self.tca(self.encoding(folded))) + folded
        return y.reshape(B, T, C, H, W).transpose(0, 1)


@register_attention("dta")
class DTA(AttentionBlock):
    """DTA block: ``sigmoid(T_NA(X) * T_XA(X)) * S`` (Kim et al., WACV 2025; MnJnKIM/DTA-SNN)."""

    placement = "after_lif"
    paper = "Kim, Kim & Yang, DTA: Dual Temporal-channel-wise Attention for SNNs, WACV 2025"
    code = "https://github.com/MnJnKIM/DTA-SNN"

    def __init__(self, *, channels: int, T: int):
        super().__init__(channels=channels, T=T)
        self.tna = TNA(channels=channels, T=T)
        self.txa = TXA(channels=channels, T=T)

    def forward(self, x: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(x, s)
        return torch.sigmoid(self.tna(x) * self.txa(x)) * s


@register_attention("txa")
class TXAOnly(AttentionBlock):
    """DTA ablation with T-XA only: ``sigmoid(T_XA(X)) * S`` (WACV 2025, Table 4)."""

    placement = "after_lif"
    paper = DTA.paper + " (ablation: T-XA only)"
    code = DTA.code

    def __init__(self, *, channels: int, T: int):
        super().__init__(channels=channels, T=T)
        self.txa = TXA(channels=channels, T=T)

    def forward(self, x: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(x, s)
        return torch.sigmoid(self.txa(x)) * s


@register_attention("tna")
class TNAOnly(AttentionBlock):
    """DTA ablation with T-NA only: ``sigmoid(T_NA(X)) * S`` (WACV 2025, Table 4)."""

    placement = "after_lif"
    paper = DTA.paper + " (ablation: T-NA only)"
    code = DTA.code

    def __init__(self, *, channels: int, T: int):
        super().__init__(channels=channels, T=T)
        self.tna = TNA(channels=channels, T=T)

    def forward(self, x: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(x, s)
        return torch.sigmoid(self.tna(x)) * s
