"""MS-ResNet (membrane-shortcut ResNet) with one attention slot after the stem.

Follows the released DTA-SNN network (https://github.com/MnJnKIM/DTA-SNN,
models/MS_ResNet.py, ``DTA_SNN_18`` / ``DTA_SNN_34``):

* ``ms_resnet18`` (CIFAR10/100, CIFAR10-DVS): 3x3 stem to ``width`` channels +
  BN, the attention slot, stages ``2w x3``, ``4w x3`` (stride 2), ``8w x2``
  (stride 2), final LIF, global average pool, a linear layer per time step.
  With ``width=64``, 10 classes and ``none`` it has 12,502,090 parameters;
  with ``dta`` at T=6, 12,993,336.
* ``ms_resnet34`` (ImageNet): the released ``MS_ResNet_34`` never runs (it
  reads an undefined ``self.GAC`` and, without a max-pool and with a stride-1
  second stage, a 224 input ends at 28x28). We build it as a standard
  ResNet-34 layout: 7x7/2 stem + BN + 3x3/2 max-pool (the slot sees 56x56
  for a 224 input), stages ``w x3``, ``2w x4``, ``4w x6``, ``8w x3`` with
  strides 1, 2, 2, 2, so a 224 input ends at 7x7.

All layers are spikingjelly multi-step layers on ``[T, B, ...]``; neurons are
the faithful LIF of :mod:`dta.neuron`. ``neuron="relu"`` builds the ANN the SNN
would replace (the same layers with a ReLU in every LIF's place; run it at T=1):
the ``ann`` row of ``dta bench``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from spikingjelly.activation_based import layer
from torch import nn

from ..attention import create_attention
from ..neuron import create_neuron
from ..shapes import check_sequence
from . import register_model


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int, padding: int) -> list[nn.Module]:
    return [
        layer.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=False, step_mode="m"),
        layer.BatchNorm2d(out_ch, step_mode="m"),
    ]


class MSBlock(nn.Module):
    """Membrane-shortcut block: ``LIF -> conv3x3 -> BN -> LIF -> conv3x3 -> BN`` + shortcut.

    The shortcut adds the block's real-valued input (membrane potential), through
    a 1x1 conv + BN when the shape changes, as in the released ``BasicBlock_MS``.
    ``[T, B, C_in, H, W] -> [T, B, C_out, H/stride, W/stride]``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, neuron: str = "lif"):
        super().__init__()
        self.lif1 = create_neuron(neuron)
        self.conv1, self.bn1 = _conv_bn(in_channels, out_channels, 3, stride, 1)
        self.lif2 = create_neuron(neuron)
        self.conv2, self.bn2 = _conv_bn(out_channels, out_channels, 3, 1, 1)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(*_conv_bn(in_channels, out_channels, 1, stride, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.conv1(self.lif1(x)))
        out = self.bn2(self.conv2(self.lif2(out)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class MSResNet(nn.Module):
    """MS-ResNet on ``[T, B, in_channels, H, W]`` returning ``[T, B, num_classes]``.

    ``stem``: ``"cifar"`` (3x3/1) or ``"imagenet"`` (7x7/2 + max-pool).
    ``dta_components`` tells :mod:`dta.measure` which modules are the encoding
    layer and the attention block (models never import ``measure``).
    """

    dta_components = {"encoding": ("stem",), "attention": ("attention",)}

    def __init__(
        self,
        *,
        attention: str,
        T: int,
        num_classes: int,
        in_channels: int,
        stem_channels: int,
        stage_channels: Sequence[int],
        stage_blocks: Sequence[int],
        stage_strides: Sequence[int],
        stem: str = "cifar",
        name: str = "ms_resnet",
        neuron: str = "lif",
    ):
        super().__init__()
        if not (len(stage_channels) == len(stage_blocks) == len(stage_strides)):
            raise ValueError("stage_channels, stage_blocks and stage_strides must have equal length")
        for what, value in (("T", T), ("num_classes", num_classes), ("in_channels", in_channels),
                            ("stem_channels", stem_channels)):
            if int(value) < 1:
                raise ValueError(f"{name}: {what} must be >= 1, got {value}")
        self.name = name
        self.neuron = neuron
        self.T = int(T)
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)

        if stem == "cifar":
            self.stem = nn.Sequential(*_conv_bn(in_channels, stem_channels, 3, 1, 1))
        elif stem == "imagenet":
            self.stem = nn.Sequential(
                *_conv_bn(in_channels, stem_channels, 7, 2, 3),
                layer.MaxPool2d(3, 2, 1, step_mode="m"),
            )
        else:
            raise ValueError(f"{name}: stem must be 'cifar' or 'imagenet', got {stem!r}")

        self.attention = create_attention(attention, channels=stem_channels, T=self.T)
        # Only methods that gate spikes need the stem LIF; the others skip it.
        self.stem_lif = create_neuron(neuron) if self.attention.needs_spikes else None

        stages: list[nn.Module] = []
        in_ch = stem_channels
        for out_ch, blocks, stride in zip(stage_channels, stage_blocks, stage_strides):
            stage = [MSBlock(in_ch, out_ch, stride, neuron)]
            stage += [MSBlock(out_ch, out_ch, 1, neuron) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            in_ch = out_ch
        self.stages = nn.Sequential(*stages)
        self.final_lif = create_neuron(neuron)
        self.avgpool = layer.AdaptiveAvgPool2d((1, 1), step_mode="m")
        self.fc = layer.Linear(in_ch, num_classes, step_mode="m")

    @property
    def attention_name(self) -> str:
        return self.attention.name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence(x, where=f"{self.name} input", T=self.T, channels=self.in_channels)
        x = self.stem(x)  # X: pre-spike encoding, [T, B, C, H, W]
        s = self.stem_lif(x) if self.stem_lif is not None else None
        x = self.attention(x, s)
        x = self.final_lif(self.stages(x))
        x = self.avgpool(x).flatten(2)  # [T, B, C]
        return self.fc(x)  # [T, B, num_classes]


def _check_width(name: str, width: int) -> int:
    if int(width) < 1:
        raise ValueError(f"{name}: width must be >= 1, got {width}")
    return int(width)


@register_model("ms_resnet18")
def ms_resnet18(
    *, attention: str = "dta", T: int = 6, num_classes: int = 10, in_channels: int = 3,
    width: int = 64, neuron: str = "lif",
) -> MSResNet:
    """The released CIFAR / CIFAR10-DVS DTA-SNN network (``DTA_SNN_18``)."""
    w = _check_width("ms_resnet18", width)
    return MSResNet(
        attention=attention, T=T, num_classes=num_classes, in_channels=in_channels,
        stem_channels=w, stage_channels=(2 * w, 4 * w, 8 * w), stage_blocks=(3, 3, 2),
        stage_strides=(1, 2, 2), stem="cifar", name="ms_resnet18", neuron=neuron,
    )


@register_model("ms_resnet34")
def ms_resnet34(
    *, attention: str = "dta", T: int = 6, num_classes: int = 1000, in_channels: int = 3,
    width: int = 64, neuron: str = "lif",
) -> MSResNet:
    """ImageNet MS-ResNet-34 (7x7/2 stem + max-pool; ends at 7x7 for a 224 input)."""
    w = _check_width("ms_resnet34", width)
    return MSResNet(
        attention=attention, T=T, num_classes=num_classes, in_channels=in_channels,
        stem_channels=w, stage_channels=(w, 2 * w, 4 * w, 8 * w), stage_blocks=(3, 4, 6, 3),
        stage_strides=(1, 2, 2, 2), stem="imagenet", name="ms_resnet34", neuron=neuron,
    )
