"""Dataset registry: embedded defaults and the paper's datasets, one interface.

>>> from dta.data import list_datasets, build_datasets
>>> list_datasets()
['digits', 'dvs-digits', 'cifar10', 'cifar100', 'cifar10-dvs', 'nmnist', 'imagenet']
>>> train, test, info = build_datasets("digits", root="data", T=4)

Static datasets yield ``(image [C, H, W], label)``; the training loop repeats
the image over T (:func:`to_time_first`). Event datasets yield
``(frames [T, C, H, W], label)`` made by tonic's ``ToFrame``; the loop moves
T to the front. Missing files raise :class:`DatasetNotFoundError`, which
names the expected layout, the path searched and the ``--download`` flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..registry import Registry
from ..shapes import repeat_static


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing or incomplete."""

    def __init__(self, name: str, searched: Path, layout: str, downloadable: bool):
        self.name, self.searched, self.layout = name, Path(searched), layout
        fix = ("pass --download to fetch it (needs network access)" if downloadable
               else "place the files there by hand (this dataset cannot be downloaded for you)")
        super().__init__(
            f"dataset {name!r} not found under {self.searched}.\n"
            f"Expected layout:\n{layout}\n"
            f"Point --data-root at the folder that holds it, or {fix}."
        )

    def __str__(self) -> str:
        return self.args[0]


class CorruptRecordingError(RuntimeError):
    """One file of a dataset cannot be read (truncated, or not in the expected format)."""

    def __init__(self, path, reason: str):
        self.path = Path(path)
        super().__init__(
            f"cannot read recording {self.path}: {reason}.\n"
            "The file is truncated or not in the dataset's format: extract it again from the "
            "original archive, or delete it to train without it.")


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset."""

    name: str
    num_classes: int
    in_channels: int
    input_size: tuple[int, int]
    temporal: bool  # items are frames [T, C, H, W] (else a static image [C, H, W])
    description: str
    layout: str = ""  # expected files under --data-root ("" for embedded data)
    downloadable: bool = False
    embedded: bool = False
    model: str = "ms_resnet18"


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    build: Callable = field(repr=False)  # (root, *, T, download, seed, augment) -> (train, test)


_DATASETS: Registry[_Entry] = Registry("dataset")


def register_dataset(info: DatasetInfo, build: Callable) -> None:
    """Register a dataset: ``build(root, *, T, download, seed, augment) -> (train, test)``."""
    _DATASETS.register(info.name, _Entry(info, build))


def list_datasets() -> list[str]:
    return _DATASETS.names()


def get_dataset_info(name: str) -> DatasetInfo:
    return _DATASETS.get(name).info


def build_datasets(name: str, *, root: str | Path = "data", T: int = 4, download: bool = False,
                   seed: int = 0, augment: bool = True):
    """``(train, test, info)`` for dataset ``name`` with files under ``root``.

    ``augment`` enables the training split's augmentation where the dataset has one.
    """
    entry = _DATASETS.get(name)
    if T < 1:
        raise ValueError(f"dataset {name!r}: T must be >= 1, got {T}")
    train, test = entry.build(Path(root), T=T, download=download, seed=seed, augment=augment)
    return train, test, entry.info


def to_time_first(x: torch.Tensor, T: int, temporal: bool) -> torch.Tensor:
    """A collated batch to the model's ``[T, B, ...]``: repeat static images, move T first."""
    if temporal:
        if x.dim() != 5 or x.shape[1] != T:
            raise ValueError(f"event batch: expected [B, T={T}, C, H, W], received {tuple(x.shape)}")
        return x.transpose(0, 1)
    return repeat_static(x, T)


from . import embedded as _embedded  # noqa: E402,F401  (registers digits, dvs-digits)
from . import external as _external  # noqa: E402,F401  (registers cifar, dvs, imagenet)

__all__ = [
    "CorruptRecordingError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "build_datasets",
    "get_dataset_info",
    "list_datasets",
    "register_dataset",
    "to_time_first",
]
