"""The no-attention baseline of the encoding slot."""

from __future__ import annotations

import torch

from . import register_attention
from .base import AttentionBlock


@register_attention("none")
class NoAttention(AttentionBlock):
    """No attention: the stem output ``X`` enters stage 1 unchanged.

    This is the released DTA-SNN code's path with ``DTA_ON=False``
    (https://github.com/MnJnKIM/DTA-SNN, models/MS_ResNet.py).
    """

    placement = "identity"
    paper = "MS-ResNet backbone without attention (Hu et al., IEEE TNNLS 2024)"
    code = "https://github.com/MnJnKIM/DTA-SNN"

    def forward(self, x: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(x, s)
        return x
