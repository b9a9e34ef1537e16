"""MS-ResNet backbones with one attention slot, built by name.

>>> from dta.models import create_model, list_models, load_released
>>> list_models()
['ms_resnet18', 'ms_resnet34']
>>> net = create_model("ms_resnet18", attention="dta", T=6, num_classes=10)
>>> load_released(net, "CIFAR10-S0-B64-T6-E250-LR0.1.pth.tar")  # doctest: +SKIP

Input ``[T, B, C, H, W]`` (see :func:`repeat_static`, from :mod:`dta.shapes`, for static images),
output ``[T, B, num_classes]``; the prediction is the mean over T.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..registry import Registry

_MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def register_model(name: str):
    """Decorator: register a keyword-only model builder under ``name``."""
    return _MODELS.register(name)


def create_model(
    name: str, *, attention: str, T: int, num_classes: int, in_channels: int = 3, width: int = 64,
    neuron: str = "lif",
) -> nn.Module:
    """Build model ``name`` with the attention method ``attention`` in its encoding slot.

    ``width`` is the stem width; every stage scales with it (64 is the paper's
    network, 16 the CPU-sized network of the embedded defaults). ``neuron`` is
    ``lif`` (the SNN) or ``relu`` (the equivalent ANN, meant for T=1).
    """
    return _MODELS.get(name)(
        attention=attention, T=T, num_classes=num_classes, in_channels=in_channels, width=width,
        neuron=neuron,
    )


def list_models() -> list[str]:
    """Registered model names."""
    return _MODELS.names()


from ..shapes import repeat_static  # noqa: E402  (a shape helper, re-exported here)
from .ms_resnet import MSBlock, MSResNet  # noqa: E402  (registers builders)
from .released import (  # noqa: E402
    ReleasedCheckpointError,
    ReleasedInfo,
    describe_released,
    load_released,
)

__all__ = ["MSBlock", "MSResNet", "ReleasedCheckpointError", "ReleasedInfo", "create_model",
           "describe_released", "list_models", "load_released", "register_model", "repeat_static"]
