"""Checkpoints of the released DTA-SNN code loaded into our ``ms_resnet18``.

The released training script (https://github.com/MnJnKIM/DTA-SNN, main.py)
saves ``DP_model.module.state_dict()`` of ``DTA_SNN_18`` (models/DTA_SNN.py,
models/layers.py). That network registers most modules twice, so its
``state_dict`` has 414 keys for 138 tensors (with DTA; 398 for 122 without):

* ``tdBatchNorm`` holds its ``nn.BatchNorm2d`` as ``bn`` and again inside
  ``seqbn.module``: ``X.bn.bn.*`` = ``X.bn.seqbn.module.*``;
* ``BasicBlock_MS`` holds ``conv1``/``bn1`` and again inside
  ``conv1_s = tdLayer(conv1, bn1)``: ``conv1.weight`` =
  ``conv1_s.layer.module.weight``, ``bn1.*`` = ``conv1_s.bn.*`` (same for ``conv2``).

Name map (released -> ours, stages ``layer1..3`` -> ``stages.0..2``)::

    input_conv.layer.module.weight        stem.0.weight
    input_conv.bn.bn.*                    stem.1.*
    layerN.i.conv{1,2}.weight             stages.N-1.i.conv{1,2}.weight
    layerN.i.bn{1,2}.bn.*                 stages.N-1.i.bn{1,2}.*
    layerN.0.downsample.layer.module.*    stages.N-1.0.downsample.0.*
    layerN.0.downsample.bn.bn.*           stages.N-1.0.downsample.1.*
    fc.layer.module.*                     fc.*
    encoding.T_NA.encoding.0.*            attention.tna.encoding.0.*
    encoding.T_NA.tca.LTCA.k.*            attention.tna.tca.ltca.k.*
    encoding.T_NA.tca.MLP_block.k.weight  attention.tna.tca.gtca.k.weight
    encoding.T_NA.decoding.*              attention.tna.decoding.*
    encoding.T_XA.*                       attention.txa.*

Every tensor keeps its shape and meaning although the released activations are
``[B, T, ...]`` and ours ``[T, B, ...]``: convolutions, BN and the classifier
run per frame; T-XA's ``conv_t`` is a Conv1d over the T axis of ``[B, T, C]``
and ``conv_c`` over the C axis of ``[B, C, T]``, in both codes; T-NA folds
``[B, T, C, H, W]`` to ``[B, T*C, H, W]`` T-major (channel ``t*C + c``), as
:class:`dta.attention.dta.TNA` does after moving T behind B.

Only ``ms_resnet18`` with ``dta`` (``DTA_ON=True``) or ``none`` has a released
counterpart: the released ``MS_ResNet_34`` cannot run (it reads an undefined
``self.GAC``) and differs from our ``ms_resnet34`` (no max-pool, other strides).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

#: What a released checkpoint can hold: DTA on or off, on the CIFAR/DVS network.
RELEASED_MODEL = "ms_resnet18"
RELEASED_ATTENTION = ("dta", "none")
#: Containers some tools wrap a state_dict in (``torch.save({"state_dict": sd})``).
_WRAPPERS = ("state_dict", "model", "net")
_SHOW = 5  # names listed in an error before "... and N more"

# released alias -> canonical released name (the first registration)
_ALIASES = (
    (re.compile(r"(^|\.)seqbn\.module\."), r"\1bn."),
    (re.compile(r"(^|\.)conv([12])_s\.layer\.module\."), r"\1conv\2."),
    (re.compile(r"(^|\.)conv([12])_s\.bn\."), r"\1bn\2."),
)


def _stage(match: re.Match) -> str:
    return f"layer{int(match['s']) + 1}.{match['i']}"


# our name -> canonical released name
_OURS_TO_RELEASED = (
    (re.compile(r"stem\.0\.weight"), lambda m: "input_conv.layer.module.weight"),
    (re.compile(r"stem\.1\.(?P<f>\w+)"), lambda m: f"input_conv.bn.bn.{m['f']}"),
    (re.compile(r"stages\.(?P<s>\d+)\.(?P<i>\d+)\.conv(?P<k>[12])\.weight"),
     lambda m: f"{_stage(m)}.conv{m['k']}.weight"),
    (re.compile(r"stages\.(?P<s>\d+)\.(?P<i>\d+)\.bn(?P<k>[12])\.(?P<f>\w+)"),
     lambda m: f"{_stage(m)}.bn{m['k']}.bn.{m['f']}"),
    (re.compile(r"stages\.(?P<s>\d+)\.(?P<i>\d+)\.downsample\.0\.weight"),
     lambda m: f"{_stage(m)}.downsample.layer.module.weight"),
    (re.compile(r"stages\.(?P<s>\d+)\.(?P<i>\d+)\.downsample\.1\.(?P<f>\w+)"),
     lambda m: f"{_stage(m)}.downsample.bn.bn.{m['f']}"),
    (re.compile(r"fc\.(?P<f>weight|bias)"), lambda m: f"fc.layer.module.{m['f']}"),
    (re.compile(r"attention\.tna\.encoding\.0\.(?P<f>\w+)"),
     lambda m: f"encoding.T_NA.encoding.0.{m['f']}"),
    (re.compile(r"attention\.tna\.tca\.ltca\.(?P<k>\d)\.(?P<f>\w+)"),
     lambda m: f"encoding.T_NA.tca.LTCA.{m['k']}.{m['f']}"),
    (re.compile(r"attention\.tna\.tca\.gtca\.(?P<k>\d)\.weight"),
     lambda m: f"encoding.T_NA.tca.MLP_block.{m['k']}.weight"),
    (re.compile(r"attention\.tna\.decoding\.(?P<f>\w+)"),
     lambda m: f"encoding.T_NA.decoding.{m['f']}"),
    (re.compile(r"attention\.txa\.(?P<f>conv_t\.weight|conv_c\.weight|scale_t|scale_c)"),
     lambda m: f"encoding.T_XA.{m['f']}"),
)


class ReleasedCheckpointError(ValueError):
    """A released checkpoint that does not fit the model (or is not a released checkpoint)."""


@dataclass(frozen=True)
class ReleasedInfo:
    """What a released checkpoint says about the network that made it.

    ``T`` comes from T-XA's ``conv_t`` (``[T, T, 3]``); a checkpoint without DTA
    does not store T (``None``).
    """

    attention: str
    T: int | None
    num_classes: int
    in_channels: int
    width: int
    keys: int  # entries in the file, aliases included
    tensors: int  # distinct tensors


def _listing(names, total: int | None = None) -> str:
    names = list(names)
    total = len(names) if total is None else total
    more = f" ... and {total - _SHOW} more" if total > _SHOW else ""
    return ", ".join(names[:_SHOW]) + more


def canonical_name(key: str) -> str:
    """The released name a (possibly aliased) released key stands for."""
    for pattern, repl in _ALIASES:
        key = pattern.sub(repl, key)
    return key


def released_name(our_key: str) -> str | None:
    """The canonical released name of one of our ``ms_resnet18`` state_dict keys (or None)."""
    for pattern, build in _OURS_TO_RELEASED:
        m = pattern.fullmatch(our_key)
        if m:
            return build(m)
    return None


def read_released(state_dict_or_path) -> dict[str, torch.Tensor]:
    """The released ``state_dict`` (aliases kept), from a mapping or a file.

    Files load with ``weights_only=True`` on the CPU. A ``DataParallel``
    ``module.`` prefix is removed; a state_dict wrapped under ``state_dict``,
    ``model`` or ``net`` is unwrapped.
    """
    source = "state_dict"
    state = state_dict_or_path
    if isinstance(state_dict_or_path, (str, Path)):
        path = Path(state_dict_or_path)
        source = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"released checkpoint {path} not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle, zip and EOF errors all mean "unusable file"
            raise ReleasedCheckpointError(
                f"cannot read released checkpoint {path} ({type(err).__name__}: {err}); "
                "expected the .pth.tar that the released main.py saves") from None
    if not isinstance(state, dict):
        raise ReleasedCheckpointError(f"{source}: expected a state_dict (a dict of tensors), got "
                                      f"{type(state).__name__}")
    if isinstance(state.get("format"), str) and state["format"].startswith("dta-bench/"):
        raise ReleasedCheckpointError(f"{source} is a dta-bench checkpoint, not one of the "
                                      "released code: load it as it is (dta measure --checkpoint)")
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        inner = [k for k in _WRAPPERS if isinstance(state.get(k), dict)]
        if not inner:
            odd = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
            raise ReleasedCheckpointError(
                f"{source}: not a state_dict: the values of {_listing(odd)} are not tensors")
        state = state[inner[0]]
        if not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ReleasedCheckpointError(f"{source}: '{inner[0]}' is not a state_dict of tensors")
    prefixed = [k.startswith("module.") for k in state]
    if any(prefixed):
        if not all(prefixed):
            raise ReleasedCheckpointError(
                f"{source}: some keys have the DataParallel 'module.' prefix and some do not "
                f"(without: {_listing(k for k, p in zip(state, prefixed) if not p)})")
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def canonical_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One entry per distinct tensor, under its canonical released name.

    Aliases must hold identical tensors (shape, dtype and values); any
    difference raises :class:`ReleasedCheckpointError` naming both keys.
    """
    out: dict[str, torch.Tensor] = {}
    first: dict[str, str] = {}
    for key, value in state.items():
        name = canonical_name(key)
        if name not in out:
            out[name], first[name] = value, key
            continue
        seen = out[name]
        if seen.shape != value.shape or seen.dtype != value.dtype or not torch.equal(seen, value):
            raise ReleasedCheckpointError(
                f"aliases {first[name]} and {key} name one tensor in the released network but "
                f"differ (shapes {tuple(seen.shape)} and {tuple(value.shape)}): the checkpoint "
                "was edited or is damaged")
    return out


def describe_released(state_dict_or_path) -> ReleasedInfo:
    """Attention, T, classes, input channels and width of a released checkpoint."""
    state = read_released(state_dict_or_path)
    canon = canonical_state_dict(state)
    need = ("input_conv.layer.module.weight", "fc.layer.module.weight")
    missing = [k for k in need if k not in canon]
    if missing:
        hint = (" (this looks like the released MS_ResNet_34, which has no counterpart here)"
                if "conv1.weight" in canon else "")
        raise ReleasedCheckpointError(
            f"not a checkpoint of the released DTA_SNN_18: no {', '.join(missing)}{hint}")
    stem, fc = canon[need[0]], canon[need[1]]
    has_dta = any(k.startswith("encoding.") for k in canon)
    conv_t = canon.get("encoding.T_XA.conv_t.weight")
    if has_dta and conv_t is None:
        raise ReleasedCheckpointError("the checkpoint has DTA weights but no "
                                      "encoding.T_XA.conv_t.weight, so its T is unknown")
    return ReleasedInfo(attention="dta" if has_dta else "none",
                        T=int(conv_t.shape[0]) if has_dta else None,
                        num_classes=int(fc.shape[0]), in_channels=int(stem.shape[1]),
                        width=int(stem.shape[0]), keys=len(state), tensors=len(canon))


def load_released(model: nn.Module, state_dict_or_path) -> nn.Module:
    """Copy a released DTA-SNN checkpoint into ``model`` (our ``ms_resnet18``); return it.

    ``state_dict_or_path``: the released ``state_dict`` or the file main.py saved.
    Every tensor of ``model`` must be filled exactly once: missing or unexpected
    keys, differing aliases and shape mismatches raise :class:`ReleasedCheckpointError`
    (a ``ValueError``) naming the keys. Build the model to fit the checkpoint
    (:func:`describe_released` reads attention, T, classes, channels and width).
    """
    name = getattr(model, "name", type(model).__name__)
    attention = getattr(model, "attention_name", None)
    if name != RELEASED_MODEL or attention not in RELEASED_ATTENTION:
        raise ReleasedCheckpointError(
            f"released checkpoints fit {RELEASED_MODEL} with attention "
            f"{' or '.join(RELEASED_ATTENTION)} (DTA_ON True or False); got {name} with "
            f"attention {attention!r}")
    canon = canonical_state_dict(read_released(state_dict_or_path))
    has_dta = any(k.startswith("encoding.") for k in canon)
    if has_dta != (attention == "dta"):
        held = "DTA weights (encoding.T_NA.*, encoding.T_XA.*)" if has_dta else "no DTA weights"
        want = "dta" if has_dta else "none"
        raise ReleasedCheckpointError(
            f"the checkpoint holds {held} but the model's attention is {attention!r}: build "
            f"the model with attention={want!r}")

    ours = model.state_dict()
    mapping = {k: released_name(k) for k in ours}
    unmapped = [k for k, r in mapping.items() if r is None]
    if unmapped:  # a model change that the name map does not know yet
        raise ReleasedCheckpointError(f"no released name for {_listing(unmapped)}")
    missing = [r for r in mapping.values() if r not in canon]
    wanted = set(mapping.values())
    unexpected = [k for k in canon if k not in wanted]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensor(s): {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} tensor(s): {_listing(unexpected)}")
    if problems:
        raise ReleasedCheckpointError("the checkpoint does not fit the released DTA_SNN_18 "
                                      "layout: " + "; ".join(problems))
    # the usual cause of shape mismatches first, in the model's own terms
    stem, fc = canon["input_conv.layer.module.weight"], canon["fc.layer.module.weight"]
    sizes = [("T", int(canon["encoding.T_XA.conv_t.weight"].shape[0]) if has_dta else None,
              getattr(model, "T", None)),
             ("width", int(stem.shape[0]), int(ours["stem.0.weight"].shape[0])),
             ("in_channels", int(stem.shape[1]), int(ours["stem.0.weight"].shape[1])),
             ("num_classes", int(fc.shape[0]), int(ours["fc.weight"].shape[0]))]
    wrong = [f"{what}={theirs} (model: {mine})" for what, theirs, mine in sizes
             if theirs is not None and theirs != mine]
    if wrong:
        raise ReleasedCheckpointError(f"the checkpoint was trained with {', '.join(wrong)}: "
                                      "build the model with the checkpoint's values")
    shapes = [f"{r}: checkpoint {tuple(canon[r].shape)}, model {tuple(ours[k].shape)} ({k})"
              for k, r in mapping.items() if canon[r].shape != ours[k].shape]
    if shapes:
        raise ReleasedCheckpointError(
            f"{len(shapes)} tensor(s) differ in shape: {_listing(shapes)}; build the model "
            "with the checkpoint's T, width, classes and input channels (describe_released)")
    model.load_state_dict({k: canon[r] for k, r in mapping.items()}, strict=True)
    return model
