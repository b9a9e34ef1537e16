"""The paper's datasets, loaded by their real loaders from files under ``--data-root``.

* ``cifar10`` / ``cifar100``: torchvision (``--download`` fetches them).
* ``cifar10-dvs``: tonic's ``CIFAR10DVS`` (AEDAT4 files, read with the ``aedat``
  package), 128x128 events cut into T frames of equal event counts and resized
  to 48x48 (antialiased bilinear), the released code's per-class 90/10 split
  (first 90% of each class, file order) and training augmentation (flip, then
  :class:`~dta.data.augment.EventTrivialAugment`).
* ``nmnist``: tonic's ``NMNIST`` (34x34, its own train/test split).
* ``imagenet``: torchvision ``ImageFolder`` layout (``train/`` and ``val/``).

Every builder checks the expected files first and raises
:class:`~dta.data.DatasetNotFoundError` naming the layout, instead of letting
a loader fail deep inside (or, for tonic, silently try to download).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from . import CorruptRecordingError, DatasetInfo, DatasetNotFoundError, register_dataset
from .augment import EventTrivialAugment
from .events import EventFrames, InvalidEventsError

#: Normalisation of the released code's ``build_cifar`` (its CIFAR-10 std is the
#: widespread (0.2023, 0.1994, 0.2010), not the per-pixel std): kept for fidelity.
CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
}
CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                      "ship", "truck")


def _cifar_layout(name: str) -> str:
    if name == "cifar10":
        return ("  <data-root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}\n"
                "  (the extracted cifar-10-python.tar.gz)")
    return ("  <data-root>/cifar-100-python/{train, test, meta}\n"
            "  (the extracted cifar-100-python.tar.gz)")


def _build_cifar(name: str):
    def build(root: Path, *, T: int, download: bool, seed: int, augment: bool = True):
        import torchvision
        import torchvision.transforms as tv

        cls, folder = ((torchvision.datasets.CIFAR10, "cifar-10-batches-py") if name == "cifar10"
                       else (torchvision.datasets.CIFAR100, "cifar-100-python"))
        if not (root / folder).is_dir() and not download:
            raise DatasetNotFoundError(name, root, _cifar_layout(name), downloadable=True)
        mean, std = CIFAR_STATS[name]
        test_tf = tv.Compose([tv.ToTensor(), tv.Normalize(mean, std)])
        train_tf = tv.Compose([tv.RandomCrop(32, padding=4), tv.RandomHorizontalFlip(),
                               tv.ToTensor(), tv.Normalize(mean, std)]) if augment else test_tf
        try:
            return (cls(str(root), train=True, download=download, transform=train_tf),
                    cls(str(root), train=False, download=download, transform=test_tf))
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
            raise DatasetNotFoundError(name, root, _cifar_layout(name) + f"\n  ({err})",
                                       downloadable=True) from None

    return build


def per_class_split(targets, train_fraction: float = 0.9) -> tuple[list[int], list[int]]:
    """Per class, the first ``train_fraction`` of its samples (in order) train, the rest test."""
    targets = np.asarray(targets)
    train, test = [], []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        k = int(len(idx) * train_fraction)
        train += idx[:k].tolist()
        test += idx[k:].tolist()
    return sorted(train), sorted(test)


class EventFrameDataset(Dataset):
    """A tonic event dataset as frames ``[T, 2, H, W]`` (float32), optionally augmented.

    A recording that cannot be read, holds no events, or has events outside the
    dataset's sensor raises :class:`~dta.data.CorruptRecordingError` naming the file.
    """

    def __init__(self, events_dataset, frames: EventFrames, augment: bool = False):
        self.events = events_dataset
        self.frames = frames
        self.augment = EventTrivialAugment() if augment else None

    def __len__(self) -> int:
        return len(self.events)

    def _path(self, i: int) -> str:
        """The file behind item ``i`` of a tonic dataset (through any Subset)."""
        ds = self.events
        while isinstance(ds, Subset):
            ds, i = ds.dataset, ds.indices[i]
        files = getattr(ds, "data", None)
        return str(files[i]) if isinstance(files, list) and i < len(files) else f"item {i}"

    def __getitem__(self, i):
        try:
            events, label = self.events[i]
        except (RuntimeError, OSError, ValueError) as err:  # aedat / numpy read errors
            raise CorruptRecordingError(self._path(i), str(err)) from err
        if len(events) == 0:
            raise CorruptRecordingError(self._path(i), "it holds no events")
        try:
            x = self.frames(events)  # checks coordinates and polarities against the sensor first
        except InvalidEventsError as err:
            raise CorruptRecordingError(self._path(i), str(err)) from None
        if self.augment is not None:
            x = self.augment(x)
        return x, int(label)


def _has_files(folder: Path, suffix: str) -> bool:
    return folder.is_dir() and next(folder.glob(f"**/*{suffix}"), None) is not None


def _tonic_class(base, folder_attr: str | None, suffix: str):
    """A tonic dataset class that accepts extracted files placed by hand.

    tonic only trusts its own download (it checks the archive's md5 and else
    downloads); this subclass treats the extracted files as present.
    """

    class Placed(base):
        def _check_exists(self):
            folder = Path(self.location_on_system, getattr(self, folder_attr) if folder_attr else "")
            return _has_files(folder, suffix)

    Placed.__name__ = base.__name__  # tonic derives the folder name from the class name
    return Placed


def _build_cifar10_dvs(root: Path, *, T: int, download: bool, seed: int, augment: bool = True):
    import tonic.datasets

    folder = root / "CIFAR10DVS"
    if not _has_files(folder, ".aedat4"):
        if not download:
            raise DatasetNotFoundError(
                "cifar10-dvs", folder,
                "  <data-root>/CIFAR10DVS/<class>/*.aedat4 for the 10 classes\n  ("
                + ", ".join(CIFAR10DVS_CLASSES) + "), 1,000 recordings each", downloadable=True)
        full = tonic.datasets.CIFAR10DVS(save_to=str(root))  # downloads and extracts
    else:
        full = _tonic_class(tonic.datasets.CIFAR10DVS, None, ".aedat4")(save_to=str(root))
    # Sort by (class, file name) so the split does not depend on directory listing order.
    order = sorted(range(len(full.data)), key=lambda i: (full.targets[i], full.data[i]))
    full.data = [full.data[i] for i in order]
    full.targets = [full.targets[i] for i in order]
    train_idx, test_idx = per_class_split(full.targets, 0.9)
    # the released pipeline: spikingjelly frames with split_by='number', Resize((48, 48))
    frames = EventFrames(tonic.datasets.CIFAR10DVS.sensor_size, T, size=48, split_by="number")
    return (EventFrameDataset(Subset(full, train_idx), frames, augment=augment),
            EventFrameDataset(Subset(full, test_idx), frames))


def _build_nmnist(root: Path, *, T: int, download: bool, seed: int, augment: bool = True):
    import tonic.datasets

    base = tonic.datasets.NMNIST
    splits = []
    for train, sub in ((True, base.train_folder), (False, base.test_folder)):
        folder = root / "NMNIST" / sub
        if _has_files(folder, ".bin"):
            splits.append(_tonic_class(base, "folder_name", ".bin")(save_to=str(root), train=train))
        elif download:
            splits.append(base(save_to=str(root), train=train))
        else:
            raise DatasetNotFoundError(
                "nmnist", folder,
                "  <data-root>/NMNIST/Train/<digit>/*.bin and <data-root>/NMNIST/Test/<digit>/*.bin\n"
                "  (the extracted train.zip and test.zip: one folder per digit, named 0 ... 9)",
                downloadable=True)
    frames = EventFrames(base.sensor_size, T)
    return EventFrameDataset(splits[0], frames, augment=augment), EventFrameDataset(splits[1], frames)


def _build_imagenet(root: Path, *, T: int, download: bool, seed: int, augment: bool = True):
    import torchvision
    import torchvision.transforms as tv

    layout = ("  <data-root>/train/<wnid>/*.JPEG and <data-root>/val/<wnid>/*.JPEG\n"
              "  (ImageFolder layout; move the validation images into class folders)")
    for split in ("train", "val"):
        folder = root / split
        if not folder.is_dir() or next(folder.iterdir(), None) is None:
            raise DatasetNotFoundError("imagenet", folder, layout, downloadable=False)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    test_tf = tv.Compose([tv.Resize(256), tv.CenterCrop(224), tv.ToTensor(), tv.Normalize(mean, std)])
    train_tf = tv.Compose([tv.RandomResizedCrop(224), tv.RandomHorizontalFlip(), tv.ToTensor(),
                           tv.Normalize(mean, std)]) if augment else test_tf
    return (torchvision.datasets.ImageFolder(str(root / "train"), transform=train_tf),
            torchvision.datasets.ImageFolder(str(root / "val"), transform=test_tf))


register_dataset(DatasetInfo("cifar10", 10, 3, (32, 32), False, "CIFAR-10 (torchvision)",
                             layout=_cifar_layout("cifar10"), downloadable=True), _build_cifar("cifar10"))
register_dataset(DatasetInfo("cifar100", 100, 3, (32, 32), False, "CIFAR-100 (torchvision)",
                             layout=_cifar_layout("cifar100"), downloadable=True),
                 _build_cifar("cifar100"))
register_dataset(DatasetInfo("cifar10-dvs", 10, 2, (48, 48), True,
                             "CIFAR10-DVS (tonic), 48x48 frames, per-class 90/10 split",
                             layout="<data-root>/CIFAR10DVS/<class>/*.aedat4", downloadable=True),
                 _build_cifar10_dvs)
register_dataset(DatasetInfo("nmnist", 10, 2, (34, 34), True, "N-MNIST (tonic)",
                             layout="<data-root>/NMNIST/{Train,Test}/<digit>/*.bin", downloadable=True),
                 _build_nmnist)
register_dataset(DatasetInfo("imagenet", 1000, 3, (224, 224), False, "ImageNet-1k (ImageFolder)",
                             layout="<data-root>/{train,val}/<wnid>/*.JPEG", model="ms_resnet34"),
                 _build_imagenet)
