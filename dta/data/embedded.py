"""The embedded defaults: no download, deterministic, CPU-sized.

``digits``
    scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes),
    intensities scaled to [0, 1], one fixed stratified split (80/20, seed 0):
    1,437 train, 360 test. Static: the model sees the image at every step.
``dvs-digits``
    The same digits turned into event streams the way N-MNIST was made from
    MNIST: each image, upsampled to 9x9 on a 12x12 simulated DVS pixel array,
    moves in three saccades (a triangle, 300 ms); log-intensity changes past a
    contrast threshold give ON/OFF events (:func:`dta.data.events.simulate_saccades`).
    Events are tonic-style structured arrays, binned by tonic's ``ToFrame`` into
    ``[T, 2, 12, 12]`` frames. Generated once per seed and cached under
    ``<data-root>/dvs-digits/``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ..io import atomic_write
from . import CorruptRecordingError, DatasetInfo, register_dataset
from .events import EventFrames, InvalidEventsError, check_events, simulate_saccades

SPLIT_SEED = 0
TEST_FRACTION = 0.2
DVS_SENSOR = 12
DVS_SCALE = 9  # the 8x8 digit is upsampled to 9x9, centred on the sensor
#: Bump when the simulator or its parameters change: old caches are then ignored.
DVS_VERSION = 2


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(images [N, 8, 8] in [0, 1], labels, train_idx, test_idx)``, the fixed split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    idx = np.arange(len(labels))
    train_idx, test_idx = train_test_split(
        idx, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED)
    return images, labels, np.sort(train_idx), np.sort(test_idx)


def _build_digits(root: Path, *, T: int, download: bool, seed: int, augment: bool = False):
    images, labels, train_idx, test_idx = load_digits_arrays()
    x = torch.from_numpy(images)[:, None]  # [N, 1, 8, 8]
    y = torch.from_numpy(labels)
    return TensorDataset(x[train_idx], y[train_idx]), TensorDataset(x[test_idx], y[test_idx])


class EventDataset(Dataset):
    """Event streams as frames ``[T, 2, H, W]``; frames are made once, on construction.

    Events outside the ``sensor`` x ``sensor`` array raise
    :class:`~dta.data.CorruptRecordingError` naming ``source`` (the file they came from).
    """

    def __init__(self, events: np.ndarray, offsets: np.ndarray, labels: np.ndarray,
                 indices: np.ndarray, T: int, sensor: int, source: str | Path = "events"):
        to_frames = EventFrames((sensor, sensor, 2), T)
        self.streams = [events[offsets[i]:offsets[i + 1]] for i in indices]
        try:
            self.frames = torch.stack([to_frames(s) for s in self.streams])
        except InvalidEventsError as err:
            raise CorruptRecordingError(source, str(err)) from None
        self.labels = torch.from_numpy(labels[indices])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.frames[i], self.labels[i]


def dvs_cache_path(root: Path, seed: int) -> Path:
    return Path(root) / "dvs-digits" / f"dvs_digits_v{DVS_VERSION}_seed{seed}.npz"


def load_dvs_digits(root: Path, seed: int = 0):
    """``(events, offsets, labels, train_idx, test_idx)``, simulated once and cached.

    A cache that cannot be read, or whose events do not fit the 12x12 sensor, is
    regenerated (it is ours to rebuild, unlike a dataset's recordings).
    """
    path = dvs_cache_path(root, seed)
    images, labels, train_idx, test_idx = load_digits_arrays()
    if path.exists():
        try:
            with np.load(path) as f:
                if int(f["version"]) == DVS_VERSION and np.array_equal(f["labels"], labels):
                    events, offsets = f["events"], f["offsets"]
                    check_events(events, (DVS_SENSOR, DVS_SENSOR, 2))
                    if offsets[-1] == len(events):
                        return events, offsets, labels, train_idx, test_idx
        except (OSError, ValueError, KeyError):  # InvalidEventsError is a ValueError
            pass  # a damaged cache is regenerated below
    events, offsets = simulate_saccades(images, sensor=DVS_SENSOR, scale=DVS_SCALE, seed=seed)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, events=events, offsets=offsets, labels=labels,
                        version=np.array(DVS_VERSION),
                        params=np.array(json.dumps({"sensor": DVS_SENSOR, "scale": DVS_SCALE,
                                                    "seed": seed})))
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return events, offsets, labels, train_idx, test_idx


def _build_dvs_digits(root: Path, *, T: int, download: bool, seed: int, augment: bool = False):
    events, offsets, labels, train_idx, test_idx = load_dvs_digits(root, seed)
    source = dvs_cache_path(root, seed)
    return (EventDataset(events, offsets, labels, train_idx, T, DVS_SENSOR, source),
            EventDataset(events, offsets, labels, test_idx, T, DVS_SENSOR, source))


register_dataset(
    DatasetInfo("digits", 10, 1, (8, 8), False,
                "scikit-learn's bundled 8x8 digits, fixed stratified 80/20 split", embedded=True),
    _build_digits,
)
register_dataset(
    DatasetInfo("dvs-digits", 10, 2, (DVS_SENSOR, DVS_SENSOR), True,
                "digits moved in saccades before a simulated DVS (N-MNIST style), cached",
                embedded=True),
    _build_dvs_digits,
)
