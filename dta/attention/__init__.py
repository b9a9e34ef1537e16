"""Attention methods for the encoding slot: one registry, one constructor contract.

>>> import dta.attention as a
>>> a.list_attention()
['none', 'dta', 'txa', 'tna', 'gac', 'tcja', 'ta', 'ma']
>>> block = a.create_attention("dta", channels=64, T=6)

Every method is an :class:`~dta.attention.base.AttentionBlock`: built with
``channels`` and ``T`` (keyword-only), called as ``block(x, s)`` on the
pre-spike ``x`` and spikes ``s`` (``[T, B, C, H, W]``), returning the tensor
that enters the first stage. ``register_attention`` adds a user's method.
"""

from __future__ import annotations

import warnings

from ..registry import Registry
from .base import PLACEMENTS, AttentionBlock

_ATTENTION: Registry[type[AttentionBlock]] = Registry("attention method")

# T-XA's k=6 and TCJA's k=4 'same' convolutions are faithful to the released code;
# PyTorch warns once that even kernels pad asymmetrically, which is expected here.
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel lengths",
                        category=UserWarning)


def register_attention(name: str):
    """Class decorator: register an :class:`AttentionBlock` subclass under ``name``."""

    def add(cls: type[AttentionBlock]) -> type[AttentionBlock]:
        if not (isinstance(cls, type) and issubclass(cls, AttentionBlock)):
            raise TypeError(f"attention {name!r} must subclass dta.attention.AttentionBlock")
        if cls.placement not in PLACEMENTS:
            raise ValueError(f"attention {name!r}: placement must be one of {PLACEMENTS}")
        _ATTENTION.register(name, cls)
        cls.name = name
        return cls

    return add


def get_attention(name: str) -> type[AttentionBlock]:
    """The class registered under ``name`` (``KeyError`` listing known names)."""
    return _ATTENTION.get(name)


def create_attention(name: str, *, channels: int, T: int) -> AttentionBlock:
    """Build the attention method ``name`` for ``channels`` channels and ``T`` steps."""
    return get_attention(name)(channels=channels, T=T)


def list_attention() -> list[str]:
    """Registered attention method names, in registration order."""
    return _ATTENTION.names()


# Registration order is the order of tables and sweeps.
from . import identity as _identity  # noqa: E402,F401
from . import dta as _dta  # noqa: E402,F401
from . import baselines as _baselines  # noqa: E402,F401

__all__ = [
    "AttentionBlock",
    "create_attention",
    "get_attention",
    "list_attention",
    "register_attention",
]
