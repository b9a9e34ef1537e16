"""The one contract every attention method in the encoding slot follows.

The encoding slot of an MS-ResNet is::

    X = BN(conv(input))        # pre-spike, [T, B, C, H, W]
    S = LIF(X)                 # spikes,    [T, B, C, H, W] (computed only if needed)
    Y = block(X, S)            # the tensor that enters the first stage

Each method sits where its official code puts it; ``placement`` says where:

================  ===========  ==============================================
method            placement    Y
================  ===========  ==============================================
``none``          identity     X (the released code's DTA-off path)
``dta``           after_lif    sigmoid(T_NA(X) * T_XA(X)) * S
``txa``           after_lif    sigmoid(T_XA(X)) * S
``tna``           after_lif    sigmoid(T_NA(X)) * S
``gac``           after_lif    sigmoid(TA(X) * SCA(X)) * S
``tcja``          after_lif    S * sigmoid(TLA(S) * CLA(S))
``ta``            before_lif   X * Tlayer(X) (TA-SNN), spiked by stage 1
``ma``            before_lif   MultiDimensionalAttention(X), spiked by stage 1
================  ===========  ==============================================

``after_lif`` blocks receive ``S``; the others receive ``s=None`` and the
model skips the stem LIF, so no neuron updates are spent on unused spikes.
Every MS block starts with its own LIF, so whatever Y is, stage 1 spikes it.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ..shapes import check_sequence

PLACEMENTS = ("identity", "before_lif", "after_lif")


class AttentionBlock(nn.Module):
    """Base class of the encoding-slot attention methods.

    Subclasses are built as ``cls(channels=C, T=T)`` (keyword-only) and implement
    ``forward(x, s) -> y`` with ``x``, ``s`` and ``y`` of shape ``[T, B, C, H, W]``.
    """

    name: ClassVar[str] = ""
    placement: ClassVar[str] = "identity"
    #: Citation of the method's paper and official code (shown by ``dta models``).
    paper: ClassVar[str] = ""
    code: ClassVar[str] = ""

    def __init__(self, *, channels: int, T: int):
        super().__init__()
        if int(channels) < 1:
            raise ValueError(f"{type(self).__name__}: channels must be >= 1, got {channels}")
        if int(T) < 1:
            raise ValueError(f"{type(self).__name__}: T must be >= 1, got {T}")
        self.channels = int(channels)
        self.T = int(T)

    @property
    def needs_spikes(self) -> bool:
        return self.placement == "after_lif"

    def check_inputs(self, x: torch.Tensor, s: torch.Tensor | None) -> None:
        where = f"{self.name or type(self).__name__} attention"
        check_sequence(x, where=f"{where} (pre-spike X)", T=self.T, channels=self.channels)
        if self.needs_spikes:
            if s is None:
                raise ValueError(f"{where}: placed after the LIF, it needs the spikes S, got None")
            if s.shape != x.shape:
                raise ValueError(
                    f"{where}: spikes S must have the shape of X {tuple(x.shape)}, "
                    f"received {tuple(s.shape)}"
                )

    def forward(self, x: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"channels={self.channels}, T={self.T}, placement={self.placement}"
