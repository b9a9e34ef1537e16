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
    """The released CIFAR10-DVS training augmentation for event frames ``[T, C, H, W]``.

    As the released code's ``get_train_aug`` + ``SNNAugmentWide``: a random
    horizontal flip (p=0.5), then one operation drawn uniformly (TrivialAugment,
    Müller & Hutter, ICCV 2021) from identity, shear-x (up to 0.3 rad),
    translate-x / -y (up to 5 px), rotate (up to 30 degrees) and cutout
    (``RandomErasing``: 0.1 % to 11 % of the area, square, zeros), with a
    magnitude from 31 bins and a random sign, nearest-neighbour interpolation.
    Every time step gets the same transform, so the motion stays coherent.
    Randomness comes from torch's global generator.
    """

    OPS = ("identity", "shear_x", "translate_x", "translate_y", "rotate", "cutout")
    BINS = 31

    def __init__(self, flip_p: float = 0.5):
        from torchvision.transforms import RandomErasing

        self.flip_p = flip_p
        self.erase = RandomErasing(p=1.0, scale=(0.001, 0.11), ratio=(1.0, 1.0), value=0)

    def _magnitude(self, high: float) -> float:
        m = torch.linspace(-high, high, self.BINS).abs()[int(torch.randint(self.BINS, ()))].item()
        return -m if int(torch.randint(2, ())) else m

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as TF

        if torch.rand(()).item() < self.flip_p:
            frames = frames.flip(-1)
        op = self.OPS[int(torch.randint(len(self.OPS), ()))]
        nearest = InterpolationMode.NEAREST
        if op == "identity":
            return frames
        if op == "cutout":
            return self.erase(frames)
        if op == "shear_x":
            return TF.affine(frames, angle=0.0, translate=[0, 0], scale=1.0,
                             shear=[math.degrees(self._magnitude(0.3)), 0.0], interpolation=nearest)
        if op == "rotate":
            return TF.rotate(frames, self._magnitude(30.0), interpolation=nearest)
        shift = int(self._magnitude(5.0))
        translate = [shift, 0] if op == "translate_x" else [0, shift]
        return TF.affine(frames, angle=0.0, translate=translate, scale=1.0, shear=[0.0, 0.0],
                         interpolation=nearest)


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
