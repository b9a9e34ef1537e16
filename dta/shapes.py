"""Shape and layout checks shared by attention blocks, models and measurement.

Every tensor in dta-bench is time-first ``[T, B, ...]``; :func:`repeat_static`
turns a static image batch into that layout. A wrong rank, a
``[B, T, ...]`` layout, a T other than the one a block was built for, or a
wrong channel count is a ``ValueError`` that names what was expected and what
was received.
"""

from __future__ import annotations

import torch


def check_sequence(
    x: torch.Tensor,
    *,
    where: str,
    ndim: int = 5,
    T: int | None = None,
    channels: int | None = None,
    layout: str = "[T, B, C, H, W]",
) -> None:
    """Validate a time-first tensor; raise ``ValueError`` with a fix-it message."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor {layout}, got {type(x).__name__}")
    if x.dim() != ndim:
        raise ValueError(
            f"{where}: expected a {ndim}-D tensor {layout}, received shape {tuple(x.shape)} "
            f"({x.dim()}-D)"
        )
    if T is not None and x.shape[0] != T:
        hint = ""
        if x.shape[1] == T:
            hint = (
                f"; dimension 1 equals T={T}, so this looks like the [B, T, ...] layout: "
                "use x.transpose(0, 1) to make it time-first"
            )
        raise ValueError(
            f"{where}: built for T={T} time steps, expected {layout} with shape[0]={T}, "
            f"received shape {tuple(x.shape)}{hint}"
        )
    if channels is not None and x.shape[2] != channels:
        raise ValueError(
            f"{where}: expected {channels} channels at dimension 2 of {layout}, "
            f"received shape {tuple(x.shape)} with {x.shape[2]} channels"
        )


def check_time_first(x: torch.Tensor, *, where: str, T: int | None = None) -> None:
    """Validate any time-first input ``[T, B, ...]`` (rank >= 3)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor [T, B, ...], got {type(x).__name__}")
    if x.dim() < 3:
        raise ValueError(
            f"{where}: expected a time-first tensor [T, B, ...] of rank >= 3, received shape "
            f"{tuple(x.shape)}; repeat a static batch over time with dta.shapes.repeat_static"
        )
    if T is not None and x.shape[0] != T:
        check_sequence(x, where=where, ndim=x.dim(), T=T, layout="[T, B, ...]")


def repeat_static(x: torch.Tensor, T: int) -> torch.Tensor:
    """Repeat a static image batch ``[B, C, H, W]`` over time: ``[T, B, C, H, W]``.

    Direct (analog) encoding, as the released code's ``add_dimention``: the
    same image is the input current at every step. Returns an expanded view.
    Also importable as ``dta.models.repeat_static``.
    """
    if x.dim() != 4:
        raise ValueError(f"repeat_static: expected [B, C, H, W], received shape {tuple(x.shape)}")
    if T < 1:
        raise ValueError(f"repeat_static: T must be >= 1, got {T}")
    return x.unsqueeze(0).expand(T, *x.shape)
