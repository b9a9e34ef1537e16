"""One readable training loop, single process or ``torchrun`` / DistributedDataParallel.

    dta train --dataset digits --attention dta                 # one CPU process
    torchrun --nproc_per_node=4 -m dta.cli train --dataset cifar10 --attention dta

Read top to bottom: configuration, distributed setup, data, model, optimiser,
resume, the epoch loop (train, evaluate, log, checkpoint), the result record.

Determinism: at the start of every epoch the global RNGs are re-seeded from
(seed, epoch, rank) and the sampler shuffles with (seed, epoch), so the same
configuration gives the same run, and a run resumed from the checkpoint of
epoch k replays epochs k+1... exactly as an uninterrupted run would.

Fixed defects of the released training code (https://github.com/MnJnKIM/DTA-SNN):

* CutMix was drawn once per epoch: here it is drawn per batch.
* Mixup's soft labels were thrown away (hard labels fed to the loss): here the
  mixed soft targets feed a soft-label cross-entropy.
* DTA could not be turned off (the switch was ignored in one network and read
  an undefined ``self.GAC`` in another): here ``--attention none`` is a method.
* Per-batch prints: here a progress bar (rank 0 only) and a JSONL metrics log
  every ``log_every`` batches, with no host synchronisation in between.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler

from .data import build_datasets, to_time_first
from .data.augment import cutmix, mixup, one_hot
from .io import atomic_write
from .models import create_model
from .neuron import NEURONS
from .presets import default_preset, get_preset
from .records import SCHEMA, environment, git_commit, write_record

CHECKPOINT_FORMAT = "dta-bench/checkpoint/v1"
#: Fields that may differ between a checkpoint and the run that resumes it.
OPERATIONAL_FIELDS = {"out", "resume", "overwrite", "device", "num_workers", "log_every",
                      "progress", "threads", "data_root", "download", "preset", "probe_samples",
                      # how the same arithmetic is executed, like ``device`` (``amp`` is not:
                      # it changes the arithmetic)
                      "channels_last", "compile", "compile_backend"}


@dataclass
class TrainConfig:
    """Everything a run depends on; stored in checkpoints and result records."""

    dataset: str = "digits"
    attention: str = "dta"
    neuron: str = "lif"  # "relu": the equivalent ANN (method ``ann``, T=1)
    preset: str | None = None
    model: str = "ms_resnet18"
    width: int = 16
    T: int = 4
    epochs: int = 4
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-5
    cutmix_alpha: float = 0.0
    cutmix_prob: float = 0.0
    mixup_alpha: float = 0.0
    mixup_prob: float = 1.0  # per batch, when CutMix was not drawn (timm's Mixup ``prob``)
    label_smoothing: float = 0.0
    augment: bool = False
    seed: int = 0
    data_root: str = "data"
    download: bool = False
    out: str = ""
    resume: bool = False
    overwrite: bool = False
    device: str = "auto"
    num_workers: int = 0
    log_every: int = 10
    limit_batches: int = 0  # >0: train on at most this many batches per epoch (smoke runs)
    threads: int = 0  # >0: torch.set_num_threads
    # speed options (all off: the plain float32 step, bit-identical to a run without them)
    amp: str = "off"  # "bf16" / "fp16": autocast the forward (fp16 adds a gradient scaler)
    channels_last: bool = False  # 2-D conv weights, hence their outputs, in NHWC memory order
    compile: bool = False  # torch.compile the network with ``compile_backend``
    compile_backend: str = "inductor"
    progress: bool = True
    probe_samples: int = 64  # >0: end-of-epoch probe on the first N test samples (see probe)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: Methods that are not attention blocks: the network an SNN would replace. ``ann`` is the
#: ``none`` backbone with a ReLU in every LIF's place, trained with the same recipe at T=1.
EQUIVALENTS = {"ann": {"attention": "none", "neuron": "relu", "T": 1}}


def method_name(cfg: "TrainConfig") -> str:
    """The method a run stands for: its attention, or ``ann`` for the ReLU network."""
    return "ann" if cfg.neuron == "relu" and cfg.attention == "none" else cfg.attention


def resolve_config(dataset: str, attention: str, preset: str | None = None, **overrides) -> TrainConfig:
    """Preset values, then explicit overrides (``None`` means "keep the preset's").

    ``attention`` is an attention method or ``ann`` (:data:`EQUIVALENTS`)."""
    preset = preset or default_preset(dataset)
    values = get_preset(preset)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if attention in EQUIVALENTS:
        fixed = EQUIVALENTS[attention]
        for key, value in fixed.items():
            given = overrides.get(key)
            if key != "attention" and given is not None and given != value:
                raise ValueError(f"train: the {attention} method runs with {key}={value}, "
                                 f"got {key}={given}")
        values.update({k: v for k, v in fixed.items() if k != "attention"})
        attention = fixed["attention"]
    cfg = TrainConfig(dataset=dataset, attention=attention, preset=preset, **values)
    if cfg.neuron not in NEURONS:
        raise ValueError(f"train: unknown neuron {cfg.neuron!r}; known: {', '.join(NEURONS)}")
    if not cfg.out:
        cfg.out = str(Path("runs") / f"{dataset}-{method_name(cfg)}-T{cfg.T}-s{cfg.seed}")
    for name in ("epochs", "batch_size", "T", "width"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"train: {name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.lr <= 0:
        raise ValueError(f"train: lr must be > 0, got {cfg.lr}")
    for name in ("cutmix_prob", "mixup_prob", "label_smoothing"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ValueError(f"train: {name} must be in [0, 1], got {getattr(cfg, name)}")
    if cfg.amp not in ("off", *AMP_DTYPES):
        raise ValueError(f"train: amp must be one of off, {', '.join(AMP_DTYPES)}; got {cfg.amp!r}")
    return cfg


@dataclass
class TrainResult:
    """The result record (what is written to ``record.json``) and the trained model."""

    record: dict
    model: torch.nn.Module


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (corrupt, foreign, or from another configuration)."""


# -- distributed -----------------------------------------------------------------------------------


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device_type: str) -> "Dist":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        backend = "nccl" if device_type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
        return cls(torch.distributed.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            torch.distributed.all_reduce(values)
        return values


class ShardSampler(Sampler):
    """Every rank draws the same permutation (seed, epoch) and takes its own slice.

    The dataset is cut to a multiple of the world size so every rank runs the
    same number of steps; with one process it is a seeded shuffle (or the
    identity when ``shuffle`` is False).
    """

    def __init__(self, n: int, *, shuffle: bool, seed: int, rank: int, world: int, drop: bool):
        self.n, self.shuffle, self.seed, self.rank, self.world = n, shuffle, seed, rank, world
        self.drop = drop

    def __iter__(self):
        order = (torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed))
                 if self.shuffle else torch.arange(self.n))
        if self.drop:
            order = order[: self.n - self.n % self.world]
        return iter(order[self.rank::self.world].tolist())

    def __len__(self) -> int:
        if self.drop:
            return self.n // self.world
        return len(range(self.rank, self.n, self.world))


def seed_everything(seed: int, epoch: int, rank: int) -> None:
    s = (seed * 1_000_003 + epoch * 1_009 + rank) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def pick_device(name: str, dist_local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("train: --device cuda requested but CUDA is not available; use cpu")
        if device.index is None:
            device = torch.device("cuda", dist_local_rank)
    return device


# -- speed options: --amp, --channels-last, --compile ---------------------------------------------

#: ``--amp`` values and the dtype the forward is autocast to.
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(amp: str, device: torch.device):
    """The forward's autocast context; ``"off"`` enters none, so float32 runs are untouched."""
    if amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=AMP_DTYPES[amp])


def grad_scaler(amp: str, device: torch.device):
    """A gradient scaler for fp16, whose narrow range underflows small gradients; else None.

    bf16 has float32's exponent range and needs none.
    """
    return torch.amp.GradScaler(torch.device(device).type) if amp == "fp16" else None


def to_channels_last(model: torch.nn.Module) -> torch.nn.Module:
    """Put every 2-D convolution weight in channels_last (NHWC) order, in place.

    ``model.to(memory_format=...)`` fails on the rank-5 Conv3d weights of ``gac``
    and ``ma``, so only ``Conv2d`` is converted. spikingjelly's multi-step
    ``Conv2d`` runs on ``[T*B, C, H, W]``; a channels_last weight makes the
    convolution return channels_last outputs, which BatchNorm and the
    element-wise neurons keep.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.to(memory_format=torch.channels_last)
    return model


def compile_model(net: torch.nn.Module, backend: str = "inductor") -> torch.nn.Module:
    """``torch.compile(net, backend=backend)`` (compiles lazily, at the first forward)."""
    known = torch.compiler.list_backends(exclude_tags=())
    if backend not in known:
        raise ValueError(f"train: unknown compile backend {backend!r}; "
                         f"known: {', '.join(sorted(known))}")
    return torch.compile(net, backend=backend)


# -- checkpoints -----------------------------------------------------------------------------------


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoint intact."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path, cfg: TrainConfig | None = None) -> dict:
    """Load with ``weights_only=True``; check it is ours and matches ``cfg``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and EOF errors all mean "unusable file"
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a dta-bench checkpoint ({type(err).__name__}: "
            f"{err}); it was left untouched: move it away or pass another --out") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a dta-bench checkpoint "
                              f"(format {state.get('format') if isinstance(state, dict) else None!r})")
    if cfg is not None and "optimizer" not in state:
        what = ("converted from a released DTA-SNN checkpoint (dta convert)"
                if "converted_from" in state else "without optimizer state")
        raise CheckpointError(f"checkpoint {path} was {what}: it has weights to measure "
                              "(dta measure --checkpoint), not a training run to --resume")
    if cfg is not None:
        # a field the checkpoint predates counts as its default (older runs stay resumable)
        saved = {**TrainConfig().to_dict(), **state["config"]}
        mine = cfg.to_dict()
        diff = {k: (saved.get(k), v) for k, v in mine.items()
                if k not in OPERATIONAL_FIELDS and saved.get(k) != v}
        if diff:
            lines = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diff.items())
            raise CheckpointError(
                f"checkpoint {path} was made with another configuration ({lines}); "
                "resume with the same settings or train into another --out")
    return state


# -- one epoch -------------------------------------------------------------------------------------


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against soft targets ``[B, classes]`` (one-hot, mixed or smoothed)."""
    return torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()


def train_one_epoch(net, loader, optimizer, cfg: TrainConfig, info, device, dist: Dist, *,
                    epoch: int, n_batches: int, log=None, bar=None, scaler=None) -> dict:
    """One epoch; the forward runs under ``cfg.amp``'s autocast, ``scaler`` (fp16) scales the loss."""
    from spikingjelly.activation_based import functional

    net.train()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss*n, correct, n
    start = time.perf_counter()
    for step, (x, y) in enumerate(loader):
        if step >= n_batches:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        target = one_hot(y, info.num_classes, cfg.label_smoothing)
        # mixup_prob 1 (the default) draws no random number: runs keep the random stream
        # they had before the option existed
        if cfg.cutmix_prob > 0 and torch.rand(()).item() < cfg.cutmix_prob:
            x, target = cutmix(x, target, cfg.cutmix_alpha)
        elif cfg.mixup_alpha > 0 and (cfg.mixup_prob >= 1.0
                                      or torch.rand(()).item() < cfg.mixup_prob):
            x, target = mixup(x, target, cfg.mixup_alpha)
        with autocast(cfg.amp, device):
            logits = net(to_time_first(x, cfg.T, info.temporal)).mean(0)  # readout: mean over T
        loss = soft_cross_entropy(logits.float(), target)  # .float(): a no-op in float32
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)  # skips the step when the scaled gradients overflowed
            scaler.update()
        functional.reset_net(net)

        with torch.no_grad():
            n = y.shape[0]
            sums += torch.stack([loss.detach().double() * n,
                                 (logits.argmax(1) == target.argmax(1)).sum().double(),
                                 torch.tensor(float(n), dtype=torch.float64, device=device)])
        if bar is not None:
            bar.update(1)
        if (step + 1) % cfg.log_every == 0 or step + 1 == n_batches:
            loss_sum, correct, seen = sums.tolist()  # the only host sync: at log points
            sps = seen * dist.world / (time.perf_counter() - start)
            if bar is not None:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}",
                                sps=f"{sps:.0f}")
            if log is not None:
                log({"event": "step", "epoch": epoch + 1, "step": step + 1,
                     "loss": loss_sum / seen, "acc": correct / seen,
                     "lr": optimizer.param_groups[0]["lr"], "samples_per_s": sps})
    totals = dist.all_sum(sums.clone())
    loss_sum, correct, seen = totals.tolist()
    seconds = time.perf_counter() - start
    return {"loss": loss_sum / max(seen, 1), "acc": correct / max(seen, 1), "samples": seen,
            "seconds": seconds, "samples_per_s": seen / seconds if seconds else 0.0}


@torch.no_grad()
def evaluate(net, loader, T: int, temporal: bool, device, dist: Dist | None = None) -> dict:
    """Test loss and accuracy (mean-over-T readout), summed over ranks.

    ``anytime_acc[t-1]``: accuracy of the output averaged over the first t steps, t = 1..T,
    from the same forward (``anytime_acc[-1] == acc``).
    """
    from spikingjelly.activation_based import functional

    dist = dist or Dist()
    was_training = net.training
    net.eval()
    sums = torch.zeros(3 + T, dtype=torch.float64, device=device)  # loss, correct, n, correct@t
    steps = torch.arange(1, T + 1, device=device).view(T, 1, 1)
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        out = net(to_time_first(x, T, temporal))  # [T, B, classes]
        functional.reset_net(net)
        logits = out.mean(0)
        averaged = out.cumsum(0) / steps
        averaged[-1] = logits  # t = T is the readout itself (no rounding difference)
        anytime = averaged.argmax(2) == y  # [T, B]
        sums += torch.cat([torch.stack([
            F.cross_entropy(logits, y, reduction="sum").double(),
            (logits.argmax(1) == y).sum().double(),
            torch.tensor(float(y.shape[0]), dtype=torch.float64, device=device)]),
            anytime.sum(1).double()])
    net.train(was_training)
    loss_sum, correct, seen, *at_t = dist.all_sum(sums).tolist()
    n = max(seen, 1)
    return {"loss": loss_sum / n, "acc": correct / n, "samples": seen,
            "anytime_acc": [c / n for c in at_t]}


def probe(model, x: torch.Tensor) -> dict:
    """What the network does on the fixed probe batch ``x`` ``[T, B, ...]`` (one counted forward).

    Per sample: firing rate per spiking layer and for the whole network (spikes per
    neuron per step), effective ACs and MACs, energy (uJ, default energy model) and
    the attention share of it; ``seconds``: what the probe cost. The model's training
    flag and the global RNGs are left as they were.
    """
    from .measure import profile

    start = time.perf_counter()
    with warnings.catch_warnings():  # the ann row has no spiking neurons, by design
        warnings.filterwarnings("ignore", message=".*has no spiking neurons.*")
        report = profile(model, x)
    t = report.totals
    layers = report.firing.groupby("layer", sort=False)[["spikes", "neurons"]].sum()
    return {"firing_rate": t["firing_rate"],
            "firing_per_layer": (layers["spikes"] / layers["neurons"]).to_dict(),
            "acs": t["ac"], "macs": t["mac"], "energy_uj": t["energy_uj"],
            "attention_share": t["attention_share"], "samples": int(x.shape[1]),
            "seconds": time.perf_counter() - start}


# -- the run ---------------------------------------------------------------------------------------


def train(cfg: TrainConfig) -> TrainResult:
    """Train ``cfg`` to the end (or resume it); return the record and the model."""
    from tqdm.auto import tqdm

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device_type = "cuda" if (cfg.device == "auto" and torch.cuda.is_available()) \
        or cfg.device.startswith("cuda") else "cpu"
    dist = Dist.from_env(device_type)
    try:
        device = pick_device(cfg.device, dist.local_rank)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if cfg.batch_size % dist.world:
            raise ValueError(f"train: batch size {cfg.batch_size} is not divisible by the "
                             f"{dist.world} processes")
        return _run(cfg, dist, device, tqdm)
    finally:
        if dist.world > 1:
            torch.distributed.destroy_process_group()


def _run(cfg: TrainConfig, dist: Dist, device: torch.device, tqdm) -> TrainResult:
    out = Path(cfg.out)
    last, best = out / "last.pt", out / "best.pt"
    state = None
    if last.exists():
        if cfg.resume:
            state = load_checkpoint(last, cfg)
        elif not cfg.overwrite:
            raise CheckpointError(
                f"{last} already exists: pass --resume to continue that run, --overwrite to "
                "start over (its checkpoints are replaced as the new run saves), or another --out")
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        if not cfg.resume:
            (out / "metrics.jsonl").unlink(missing_ok=True)

    def log(entry: dict) -> None:
        if dist.main:
            with open(out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")

    # data
    train_set, test_set, info = build_datasets(cfg.dataset, root=cfg.data_root, T=cfg.T,
                                               download=cfg.download, seed=cfg.seed,
                                               augment=cfg.augment)
    per_rank = cfg.batch_size // dist.world
    test_loader = DataLoader(
        test_set, batch_size=max(per_rank, 64), num_workers=cfg.num_workers,
        sampler=ShardSampler(len(test_set), shuffle=False, seed=0, rank=dist.rank,
                             world=dist.world, drop=False))
    # the probe batch: the first samples of the test split, the same at every epoch
    probe_x = None
    if cfg.probe_samples > 0 and dist.main:
        n = min(cfg.probe_samples, len(test_set))
        probe_x = to_time_first(torch.stack([test_set[i][0] for i in range(n)]), cfg.T,
                                info.temporal).to(device)

    # model and optimiser (initial weights depend only on the seed)
    seed_everything(cfg.seed, -1, 0)
    model = create_model(cfg.model, attention=cfg.attention, T=cfg.T, num_classes=info.num_classes,
                         in_channels=info.in_channels, width=cfg.width,
                         neuron=cfg.neuron).to(device)
    if cfg.channels_last:
        to_channels_last(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    scaler = grad_scaler(cfg.amp, device)  # None unless fp16
    start_epoch, best_acc, history, seconds = 0, -1.0, [], 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, best_acc = state["epoch"], state["best_accuracy"]
        history, seconds = list(state["history"]), state["train_seconds"]
        log({"event": "resume", "epoch": start_epoch})
    elif cfg.resume and dist.main:
        print(f"dta train: no checkpoint at {last}; starting from scratch", file=sys.stderr)
    net = model
    if dist.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:  # after DDP, as torch recommends; ``model`` stays the plain module
        net = compile_model(net, cfg.compile_backend)

    for epoch in range(start_epoch, cfg.epochs):
        seed_everything(cfg.seed, epoch, dist.rank)
        loader = DataLoader(
            train_set, batch_size=per_rank, num_workers=cfg.num_workers, drop_last=False,
            pin_memory=device.type == "cuda",
            sampler=ShardSampler(len(train_set), shuffle=True, seed=cfg.seed * 100_003 + epoch,
                                 rank=dist.rank, world=dist.world, drop=True))
        n_batches = min(len(loader), cfg.limit_batches) if cfg.limit_batches else len(loader)
        bar = tqdm(total=n_batches, desc=f"{method_name(cfg)} epoch {epoch + 1}/{cfg.epochs}",
                   unit="batch", leave=False,
                   disable=None if (dist.main and cfg.progress) else True)  # None: off without a TTY
        stats = train_one_epoch(net, loader, optimizer, cfg, info, device, dist, epoch=epoch,
                                n_batches=n_batches, log=log, bar=bar, scaler=scaler)
        bar.close()
        with autocast(cfg.amp, device):
            test = evaluate(net, test_loader, cfg.T, info.temporal, device, dist)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        seconds += stats["seconds"]
        entry = {"event": "epoch", "epoch": epoch + 1, "train_loss": stats["loss"],
                 "train_acc": stats["acc"], "test_loss": test["loss"], "test_acc": test["acc"],
                 "lr": lr, "seconds": stats["seconds"], "samples_per_s": stats["samples_per_s"],
                 "step_s": stats["seconds"] / max(n_batches, 1), "anytime_acc": test["anytime_acc"]}
        if probe_x is not None:
            entry["probe"] = probe(model, probe_x)
        history.append(entry)
        log(entry)
        if dist.main and cfg.progress:
            print(f"{cfg.dataset}/{method_name(cfg)} epoch {epoch + 1}/{cfg.epochs}: "
                  f"loss {stats['loss']:.4f} train {stats['acc']:.3f} test {test['acc']:.3f} "
                  f"({stats['samples_per_s']:.0f} samples/s)", file=sys.stderr)
        improved = test["acc"] > best_acc
        best_acc = max(best_acc, test["acc"])
        if dist.main:
            ckpt = {"format": CHECKPOINT_FORMAT, "epoch": epoch + 1, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "best_accuracy": best_acc, "history": history, "train_seconds": seconds,
                    "config": cfg.to_dict()}
            if scaler is not None:
                ckpt["scaler"] = scaler.state_dict()
            save_checkpoint(last, ckpt)
            if improved:
                save_checkpoint(best, ckpt)

    final = history[-1] if history else {"test_acc": float("nan"), "train_loss": float("nan")}
    record = {
        "schema": SCHEMA, "dataset": cfg.dataset, "method": method_name(cfg), "model": cfg.model,
        "T": cfg.T, "seed": cfg.seed, "width": cfg.width, "commit": git_commit(),
        "params": sum(p.numel() for p in model.parameters()),
        "attention_params": sum(p.numel() for p in model.attention.parameters()),
        "accuracy": final["test_acc"], "best_accuracy": best_acc,
        "train": {"epochs": cfg.epochs, "seconds": seconds, "final_loss": final["train_loss"],
                  "samples_per_s": (sum(h["samples_per_s"] for h in history) / len(history)
                                    if history else 0.0),
                  "world_size": dist.world, "device": str(device),
                  "amp": cfg.amp, "channels_last": cfg.channels_last, "compile": cfg.compile,
                  "per_epoch": history},  # loss, accuracy, step time, probe (firing, ACs) per epoch
        "config": cfg.to_dict(), "environment": environment(),
    }
    if "anytime_acc" in final:  # accuracy of the output averaged over the first t steps
        record["anytime"] = {"accuracy": final["anytime_acc"]}
    if dist.main and not math.isnan(record["accuracy"]):
        write_record(out / "record.json", record)
    return TrainResult(record, model)
