"""Augmentation: per-sample event-frame TrivialAugment, per-batch CutMix and Mixup.

The released DTA-SNN code draws CutMix once per *epoch* and throws Mixup's
soft labels away; here both are drawn per *batch* and always return soft
targets, which the trainer's soft-label cross-entropy consumes. Randomness
comes from torch's global generator, which the trainer re-seeds from
(seed, epoch) at the start of every epoch, so a resumed run draws the same.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class EventTrivialAugment:
    """TrivialAugment-style augmentation for event frames ``[T, C, H, W]``.

    One operation drawn uniformly per sample, with a magnitude drawn uniformly
    from its range (Müller & Hutter, TrivialAugment, ICCV 2021), applied
    identically to every time step so the motion stays coherent: identity,
    horizontal flip, translation (x or y, up to 1/4 of the width), rotation
    (up to 30 degrees), shear (x or y, up to 0.3) or a cutout (up to half the side).
    """

    OPS = ("identity", "flip", "translate_x", "translate_y", "rotate", "shear_x", "shear_y",
           "cutout")

    @staticmethod
    def _uniform(low: float, high: float) -> float:
        return low + (high - low) * torch.rand(()).item()

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        op = self.OPS[int(torch.randint(len(self.OPS), ()))]
        if op == "identity":
            return frames
        if op == "flip":
            return frames.flip(-1)
        if op == "cutout":
            h, w = frames.shape[-2:]
            size = max(1, int(self._uniform(0.0, 0.5) * min(h, w)))
            cy, cx = int(self._uniform(0, h)), int(self._uniform(0, w))
            out = frames.clone()
            out[..., max(0, cy - size // 2):cy + size // 2 + 1,
                max(0, cx - size // 2):cx + size // 2 + 1] = 0
            return out
        theta = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        m = self._uniform(-1.0, 1.0)
        if op == "translate_x":
            theta[0, 2] = m * 0.5  # normalised coordinates span 2: 0.5 = 1/4 of the width
        elif op == "translate_y":
            theta[1, 2] = m * 0.5
        elif op == "rotate":
            a = math.radians(30 * m)
            theta[:, :2] = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        elif op == "shear_x":
            theta[0, 1] = 0.3 * m
        elif op == "shear_y":
            theta[1, 0] = 0.3 * m
        grid = F.affine_grid(theta[None].expand(frames.shape[0], 2, 3), list(frames.shape),
                             align_corners=False)
        return F.grid_sample(frames, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False)


def one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """Soft targets ``[B, num_classes]`` with optional label smoothing."""
    target = F.one_hot(labels, num_classes).float()
    if smoothing:
        target = target * (1 - smoothing) + smoothing / num_classes
    return target


def _beta(alpha: float) -> float:
    return float(torch.distributions.Beta(alpha, alpha).sample().item()) if alpha > 0 else 1.0


def mixup(x: torch.Tensor, target: torch.Tensor, alpha: float):
    """Mixup on a batch (batch dimension 0): convex mix of inputs and soft targets."""
    lam = _beta(alpha)
    perm = torch.randperm(x.shape[0])
    return lam * x + (1 - lam) * x[perm], lam * target + (1 - lam) * target[perm]


def cutmix(x: torch.Tensor, target: torch.Tensor, alpha: float):
    """CutMix on a batch (batch dimension 0; last two dims spatial), drawn per batch.

    The pasted box is the same for every time step; targets mix by pasted area.
    """
    lam = _beta(alpha)
    perm = torch.randperm(x.shape[0])
    h, w = x.shape[-2:]
    cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    mixed = x.clone()
    mixed[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
    area = (y1 - y0) * (x1 - x0) / (h * w)
    return mixed, (1 - area) * target + area * target[perm]
