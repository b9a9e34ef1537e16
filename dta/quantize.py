"""The QNN row: the trained ANN with its activations quantized to ``b`` bits.

Yan et al. ("Reconsidering the energy efficiency of spiking neural networks",
arXiv 2409.08290) compare a T-step SNN with the quantized ANN whose activations
carry as much information as a spike count in ``0..T``: ``b = ceil(log2(T+1))``
bits. ``dta bench`` measures that network's accuracy by post-training
quantization of the trained ``ann`` (no retraining): every ReLU becomes a
uniform ``b``-bit quantizer on ``[0, clip]`` (``2^b - 1`` levels above 0), with
``clip`` per layer the 99.9th percentile of that ReLU's outputs on a
calibration batch of the *training* split. Its energy is priced from the
ANN's counts at that width (:func:`dta.measure.qnn_energy`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

#: percentile of a ReLU's calibration outputs that becomes its clip value
CLIP_PERCENTILE = 0.999


class QuantReLU(nn.Module):
    """``ReLU`` then uniform quantization to ``bits`` bits on ``[0, clip]``.

    Output levels ``k * clip / (2^bits - 1)``, ``k = 0 .. 2^bits - 1``; any shape.
    """

    def __init__(self, bits: int, clip: float):
        super().__init__()
        if int(bits) < 1:
            raise ValueError(f"QuantReLU: bits must be >= 1, got {bits}")
        if not clip > 0:
            raise ValueError(f"QuantReLU: clip must be > 0, got {clip}")
        self.bits, self.clip = int(bits), float(clip)
        self.levels = 2 ** self.bits - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        step = self.clip / self.levels
        return torch.round(x.clamp(0.0, self.clip) / step) * step

    def extra_repr(self) -> str:
        return f"bits={self.bits}, clip={self.clip:.4g}"


def quantize_activations(model: nn.Module, bits: int, calibration: torch.Tensor, *,
                         percentile: float = CLIP_PERCENTILE) -> nn.Module:
    """A copy of the ReLU network ``model`` whose every ``nn.ReLU`` is a :class:`QuantReLU`.

    ``calibration``: an input batch (``[T, B, ...]`` as the model takes it) that sets
    each layer's clip; ``model`` itself is not modified. Eval mode.
    """
    q = copy.deepcopy(model).eval()
    relus = [(name, m) for name, m in q.named_modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError(f"quantize_activations: {type(model).__name__} has no nn.ReLU to quantize")
    clips: dict[str, float] = {}

    def hook(name):
        def record(module, args, out):
            v = out.detach().flatten().float()
            if v.numel() > 1 << 24:  # torch.quantile's input limit: a strided sample
                v = v[:: v.numel() // (1 << 24) + 1]
            clips[name] = float(torch.quantile(v, percentile))
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in relus]
    try:
        with torch.no_grad():
            q(calibration)
    finally:
        for h in handles:
            h.remove()
    for name, _ in relus:
        parent, _, attr = name.rpartition(".")
        clip = clips.get(name, 0.0)
        setattr(q.get_submodule(parent) if parent else q, attr,
                QuantReLU(bits, clip if clip > 0 else 1.0))  # a dead layer: any clip does
    return q
