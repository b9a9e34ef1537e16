"""Glue between data, models and measurement used by the CLI and the benchmark.

* :func:`load_trained`: a model and its training configuration from a checkpoint.
* :func:`measurement_batch`: the first ``n`` test samples of a dataset, time-first.
* :func:`default_input`: the documented input ``dta measure`` uses without data.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .data import build_datasets, get_dataset_info, to_time_first
from .models import create_model, repeat_static
from .train import TrainConfig, load_checkpoint

#: Input side of the default input per model (no dataset given).
DEFAULT_INPUT_SIZE = {"ms_resnet18": 32, "ms_resnet34": 224}
DEFAULT_INPUT_SEED = 0
DEFAULT_INPUT_BATCH = 16


def load_trained(path: str | Path) -> tuple[nn.Module, TrainConfig]:
    """Rebuild the network of a training checkpoint and load its weights (eval mode)."""
    state = load_checkpoint(Path(path))
    known = set(TrainConfig.__dataclass_fields__)
    cfg = TrainConfig(**{k: v for k, v in state["config"].items() if k in known})
    info = get_dataset_info(cfg.dataset)
    model = create_model(cfg.model, attention=cfg.attention, T=cfg.T, num_classes=info.num_classes,
                         in_channels=info.in_channels, width=cfg.width)
    model.load_state_dict(state["model"])
    return model.eval(), cfg


def measurement_batch(dataset: str, *, root: str | Path, T: int, n: int = 64,
                      seed: int = 0) -> torch.Tensor:
    """The first ``n`` samples of the test split (no augmentation), as ``[T, n, ...]``."""
    _, test, info = build_datasets(dataset, root=root, T=T, seed=seed, augment=False)
    n = min(n, len(test))
    x = torch.stack([test[i][0] for i in range(n)])
    return to_time_first(x, T, info.temporal)


def default_input(model: str, *, in_channels: int, T: int, n: int = DEFAULT_INPUT_BATCH,
                  size: int | None = None) -> tuple[torch.Tensor, str]:
    """A fixed batch of uniform [0, 1) images repeated over T, and its description."""
    side = size or DEFAULT_INPUT_SIZE.get(model, 32)
    g = torch.Generator().manual_seed(DEFAULT_INPUT_SEED)
    x = repeat_static(torch.rand(n, in_channels, side, side, generator=g), T)
    return x, (f"default input: {n} uniform [0, 1) images {in_channels}x{side}x{side} "
               f"(seed {DEFAULT_INPUT_SEED}) repeated over T={T}; pass --dataset for real data")
