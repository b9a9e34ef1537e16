"""Glue between data, models and measurement used by the CLI and the benchmark.

* :func:`load_trained`: a model and its training configuration from a checkpoint.
* :func:`convert_released`: a released DTA-SNN checkpoint as a dta-bench checkpoint.
* :func:`measurement_batch`: the first ``n`` test samples of a dataset, time-first.
* :func:`default_input`: the documented input ``dta measure`` uses without data.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .data import build_datasets, get_dataset_info, to_time_first
from .models import ReleasedInfo, create_model, describe_released, load_released
from .models.released import RELEASED_MODEL, read_released
from .shapes import repeat_static
from .train import CHECKPOINT_FORMAT, CheckpointError, TrainConfig, resolve_config, save_checkpoint

#: Input side of the default input per model (no dataset given).
DEFAULT_INPUT_SIZE = {"ms_resnet18": 32, "ms_resnet34": 224}
DEFAULT_INPUT_SEED = 0
DEFAULT_INPUT_BATCH = 16
#: The datasets the released code trains DTA_SNN_18 on, by (classes, input channels).
RELEASED_DATASETS = {(10, 3): "cifar10", (100, 3): "cifar100", (10, 2): "cifar10-dvs"}


def read_checkpoint(path: str | Path, *, option: str = "--checkpoint") -> dict:
    """A dta-bench checkpoint read for use (not for resuming): ``weights_only``, on the CPU.

    Errors name ``option``, the command-line option that gave ``path``: a missing
    file is :class:`FileNotFoundError` ("not found"); an unreadable or foreign
    one is :class:`~dta.train.CheckpointError`. (``dta.train.load_checkpoint``
    reads the same format for ``--resume``, and its advice is about ``--out``.)
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise FileNotFoundError(f"checkpoint {path} {what}: pass {option} the last.pt or best.pt "
                                "in the run folder of a dta train run")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and EOF errors all mean "unusable file"
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a dta-bench checkpoint ({type(err).__name__}: "
            f"{err}); pass {option} a last.pt or best.pt that dta train wrote") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else None
        hint = ""
        if isinstance(state, dict) and state and all(isinstance(v, torch.Tensor)
                                                     for v in state.values()):
            hint = ("; it is a bare state_dict: if it comes from the released DTA-SNN code, "
                    f"convert it first with dta convert --released {path} OUT")
        raise CheckpointError(f"checkpoint {path} is not a dta-bench checkpoint (format "
                              f"{found!r}); pass {option} a last.pt or best.pt that dta train "
                              f"wrote{hint}")
    return state


def load_trained(path: str | Path, *,
                 option: str = "--checkpoint") -> tuple[nn.Module, TrainConfig]:
    """Rebuild the network of a checkpoint and load its weights (eval mode).

    ``option`` names the command-line option that gave ``path`` in error messages.
    """
    state = read_checkpoint(path, option=option)
    known = set(TrainConfig.__dataclass_fields__)
    cfg = TrainConfig(**{k: v for k, v in state["config"].items() if k in known})
    info = get_dataset_info(cfg.dataset)
    model = create_model(cfg.model, attention=cfg.attention, T=cfg.T, num_classes=info.num_classes,
                         in_channels=info.in_channels, width=cfg.width, neuron=cfg.neuron)
    model.load_state_dict(state["model"])
    return model.eval(), cfg


def convert_released(src: str | Path, out: str | Path, *, T: int | None = None,
                     dataset: str | None = None,
                     overwrite: bool = False) -> tuple[TrainConfig, ReleasedInfo]:
    """Write the released DTA-SNN checkpoint ``src`` as a dta-bench checkpoint ``out``.

    ``out`` (written atomically) holds ``format``, ``model`` (our state_dict),
    ``config`` (the dataset's preset with the checkpoint's model, attention, T
    and width: the released recipe for cifar10/100 and cifar10-dvs) and
    ``converted_from``; it has no optimizer state, so it is for measuring and
    evaluating (:func:`load_trained`, ``dta measure --checkpoint``), not for
    ``dta train --resume``. ``T`` is read from T-XA's weights (a given ``T`` must
    agree); a checkpoint without DTA does not store T, so ``T`` is then required.
    ``dataset`` defaults to the one the released code trains with these classes
    and input channels.
    """
    src, out = Path(src), Path(out)
    if not src.is_file():
        raise FileNotFoundError(f"released checkpoint {src} not found: pass --released the "
                                ".pth.tar that the released main.py saved")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists: pass --overwrite to replace it, "
                              "or another OUT")
    if out.exists() and src.exists() and out.resolve() == src.resolve():
        raise ValueError(f"OUT {out} is the released checkpoint itself: write to another file")
    state = read_released(src)
    info = describe_released(state)
    if info.T is not None and T is not None and T != info.T:
        raise ValueError(f"--T {T} disagrees with the checkpoint's T={info.T} (the shape of "
                         "encoding.T_XA.conv_t.weight): leave --T out")
    T = info.T if info.T is not None else T
    if T is None:
        raise ValueError("the checkpoint has no DTA weights, so its T is not stored in it: pass "
                         "--T (the released file name carries it as -T<N>-)")
    key = (info.num_classes, info.in_channels)
    if dataset is None:
        dataset = RELEASED_DATASETS.get(key)
        if dataset is None:
            raise ValueError(f"no released dataset has {info.num_classes} classes and "
                             f"{info.in_channels} input channels: pass --dataset")
    data = get_dataset_info(dataset)
    if (data.num_classes, data.in_channels) != key:
        raise ValueError(f"--dataset {dataset} has {data.num_classes} classes and "
                         f"{data.in_channels} input channels, the checkpoint {info.num_classes} "
                         f"and {info.in_channels}")
    model = create_model(RELEASED_MODEL, attention=info.attention, T=T, num_classes=key[0],
                         in_channels=key[1], width=info.width)
    load_released(model, state)
    cfg = resolve_config(dataset, info.attention, model=RELEASED_MODEL, T=T, width=info.width,
                         out=str(out.parent))
    save_checkpoint(out, {
        "format": CHECKPOINT_FORMAT, "model": model.state_dict(), "config": cfg.to_dict(),
        "converted_from": {"path": str(src), "code": "https://github.com/MnJnKIM/DTA-SNN",
                           "keys": info.keys, "tensors": info.tensors},
    })
    return cfg, info


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
