"""Datasets: the embedded defaults, the real loaders on small files we make, clear errors."""

from pathlib import Path

import numpy as np
import pytest
import torch

from dta.data import (
    CorruptRecordingError,
    DatasetNotFoundError,
    build_datasets,
    get_dataset_info,
    list_datasets,
    to_time_first,
)
from dta.data.augment import EventTrivialAugment, cutmix, mixup, one_hot
from dta.data.embedded import dvs_cache_path, load_dvs_digits
from dta.data.events import EVENT_DTYPE, EventFrames, saccade_path, simulate_saccades
from dta.data.external import per_class_split


def test_registry_lists_every_dataset():
    assert list_datasets() == ["digits", "dvs-digits", "cifar10", "cifar100", "cifar10-dvs",
                               "nmnist", "imagenet"]
    with pytest.raises(KeyError, match="known datasets: digits, dvs-digits"):
        build_datasets("mnist")


def test_digits_fixed_stratified_split(tmp_path):
    train, test, info = build_datasets("digits", root=tmp_path, T=4)
    assert (len(train), len(test)) == (1437, 360)
    assert info.in_channels == 1 and info.num_classes == 10 and not info.temporal
    x, y = train[0]
    assert x.shape == (1, 8, 8) and 0 <= x.min() and x.max() <= 1
    counts = torch.bincount(test.tensors[1], minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 per class
    again, _, _ = build_datasets("digits", root=tmp_path, T=4)
    assert torch.equal(again.tensors[0], train.tensors[0])


def test_saccade_path_is_a_closed_triangle():
    path = saccade_path(300, 1.5)
    assert path.shape == (300, 2)
    assert np.allclose(path[0], [-1.5, -0.75]) and np.abs(path).max() <= 1.5
    assert np.allclose(path[100], [0, 1.5]) and np.allclose(path[200], [1.5, -0.75])


def test_simulator_emits_events_only_when_the_image_moves():
    image = np.zeros((1, 8, 8), dtype=np.float32)
    image[0, 2:6, 3:5] = 1.0  # a bright bar
    still, _ = simulate_saccades(image, amplitude=0.0, noise_hz=0.0)
    assert len(still) == 0  # a static scene gives no events on a DVS
    moving, offsets = simulate_saccades(image, noise_hz=0.0)
    assert len(moving) > 50 and offsets.tolist() == [0, len(moving)]
    assert moving.dtype == EVENT_DTYPE and set(np.unique(moving["p"])) == {0, 1}
    assert np.all(np.diff(moving["t"]) >= 0) and moving["x"].max() < 16
    again, _ = simulate_saccades(image, noise_hz=0.0)
    assert np.array_equal(again, moving)  # deterministic
    noisy_a, _ = simulate_saccades(image, seed=1)
    noisy_b, _ = simulate_saccades(image, seed=2)
    assert not np.array_equal(noisy_a, noisy_b)  # the seed changes mismatch and noise


@pytest.fixture(scope="module")
def dvs_root(tmp_path_factory):
    return tmp_path_factory.mktemp("dvs")


def test_dvs_digits_frames_and_cache(dvs_root):
    train, test, info = build_datasets("dvs-digits", root=dvs_root, T=4, seed=0)
    assert info.temporal and info.in_channels == 2
    assert (len(train), len(test)) == (1437, 360)
    frames, label = train[0]
    assert frames.shape == (4, 2, 12, 12) and frames.sum() > 100 and 0 <= int(label) < 10
    assert frames.sum() == len(train.streams[0])  # every event lands in one bin
    path = dvs_cache_path(dvs_root, 0)
    assert path.exists()
    stamp = path.stat().st_mtime_ns
    events, offsets, *_ = load_dvs_digits(dvs_root, 0)
    assert path.stat().st_mtime_ns == stamp  # reused, not regenerated
    assert offsets[-1] == len(events) and events.dtype == EVENT_DTYPE


def test_dvs_digits_damaged_cache_is_regenerated(dvs_root):
    path = dvs_cache_path(dvs_root, 0)
    good = load_dvs_digits(dvs_root, 0)[0]
    path.write_bytes(b"not an npz file")
    events = load_dvs_digits(dvs_root, 0)[0]
    assert np.array_equal(events, good)


def _write_nmnist_bin(path: Path, events: np.ndarray) -> None:
    """N-MNIST's 40-bit format: x, y, polarity bit + 23-bit timestamp."""
    raw = np.zeros((len(events), 5), np.uint8)
    raw[:, 0], raw[:, 1] = events["x"], events["y"]
    t = events["t"].astype(np.int64)
    raw[:, 2] = (events["p"].astype(np.int64) << 7) | ((t >> 16) & 127)
    raw[:, 3], raw[:, 4] = (t >> 8) & 255, t & 255
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.tofile(path)


def test_nmnist_loader_reads_files_placed_by_hand(tmp_path):
    rng = np.random.default_rng(0)
    written = {}
    for split in ("Train", "Test"):
        for digit in (3, 7):
            for k in range(2):
                ev = np.zeros(40, dtype=EVENT_DTYPE)
                ev["x"], ev["y"] = rng.integers(0, 34, 40), rng.integers(0, 34, 40)
                ev["t"], ev["p"] = np.sort(rng.integers(0, 300_000, 40)), rng.integers(0, 2, 40)
                path = tmp_path / "NMNIST" / split / str(digit) / f"{k:05d}.bin"
                _write_nmnist_bin(path, ev)
                written[(split, digit, k)] = ev
    train, test, info = build_datasets("nmnist", root=tmp_path, T=5, augment=False)
    assert (len(train), len(test), info.in_channels) == (4, 4, 2)
    frames, label = test[0]
    assert frames.shape == (5, 2, 34, 34) and label == 3
    ev = written[("Test", 3, 0)]
    on = ev["p"] == 1
    assert frames[:, 1].sum() == on.sum() and frames[:, 0].sum() == (~on).sum()
    assert frames[:, 1].sum(0)[ev["y"][on][0], ev["x"][on][0]] >= 1
    augmented, _, _ = build_datasets("nmnist", root=tmp_path, T=5, augment=True)
    assert augmented[0][0].shape == (5, 2, 34, 34)


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "cifar10-dvs", "nmnist", "imagenet"])
def test_missing_files_name_layout_path_and_download_flag(tmp_path, name):
    with pytest.raises(DatasetNotFoundError) as err:
        build_datasets(name, root=tmp_path / "nowhere", T=4)
    message = str(err.value)
    assert "Expected layout" in message and str(tmp_path / "nowhere") in message
    info = get_dataset_info(name)
    assert ("--download" in message) == info.downloadable


def test_incomplete_cifar_is_reported_not_a_traceback(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"truncated")
    with pytest.raises(DatasetNotFoundError, match="corrupted"):
        build_datasets("cifar10", root=tmp_path, T=4)


def test_imagenet_imagefolder_layout(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for wnid in ("n01440764", "n01443537"):
            d = tmp_path / split / wnid
            d.mkdir(parents=True)
            Image.fromarray(np.uint8(np.random.default_rng(0).integers(0, 255, (40, 50, 3)))).save(
                d / "a.JPEG", format="JPEG")
    train, test, info = build_datasets("imagenet", root=tmp_path, T=1)
    x, y = test[1]
    assert x.shape == (3, 224, 224) and y == 1 and len(train) == 2
    assert info.model == "ms_resnet34"


def test_cifar10_dvs_split_and_frames():
    targets = [0] * 10 + [1] * 20
    train, test = per_class_split(targets, 0.9)
    assert train == list(range(9)) + list(range(10, 28)) and test == [9, 28, 29]
    ev = np.zeros(100, dtype=EVENT_DTYPE)
    ev["x"] = ev["y"] = np.arange(100) % 128
    ev["t"], ev["p"] = np.arange(100) * 1000, np.arange(100) % 2
    full = EventFrames((128, 128, 2), 10)(ev)
    assert full.shape == (10, 2, 128, 128) and full.sum() == 100
    assert full[:, 1].sum() == 50 and full[-1].sum() > 0  # the last event is kept
    assert EventFrames((128, 128, 2), 10, size=48)(ev).shape == (10, 2, 48, 48)
    with pytest.raises(ValueError, match="split_by must be one of"):
        EventFrames((128, 128, 2), 10, split_by="count")


def test_split_by_number_is_spikingjellys_rule():
    # 103 events into 10 frames: 10 per frame, the last frame takes the 13 left
    ev = np.zeros(103, dtype=EVENT_DTYPE)
    ev["x"], ev["y"] = np.arange(103) % 7, np.arange(103) % 5
    ev["t"], ev["p"] = np.r_[np.arange(50), 10_000 + np.arange(53)], np.arange(103) % 2
    frames = EventFrames((7, 5, 2), 10, split_by="number")(ev)
    assert frames.shape == (10, 2, 5, 7)
    assert frames.sum((1, 2, 3)).tolist() == [10.0] * 9 + [13.0]
    assert frames[0, 1, 1, 1] == 1 and frames[0, 0, 0, 0] == 1  # [t, p, y, x]
    by_time = EventFrames((7, 5, 2), 10, split_by="time")(ev)
    assert by_time[0].sum() == 50 and by_time[1:9].sum() == 0  # the time gap empties frames


CIFAR10DVS_FILES = 10  # per class


def _cifar10_dvs_tree(root: Path) -> dict:
    """10 classes x 10 AEDAT4 recordings (half of them LZ4-compressed), as tonic lays them out."""
    from aedat4_files import write_aedat4

    from dta.data.external import CIFAR10DVS_CLASSES

    rng = np.random.default_rng(0)
    written = {}
    for c, name in enumerate(CIFAR10DVS_CLASSES):
        for k in range(CIFAR10DVS_FILES):
            n = int(rng.integers(200, 400))
            ev = np.zeros(n, dtype=EVENT_DTYPE)
            ev["x"], ev["y"] = rng.integers(0, 128, n), rng.integers(0, 128, n)
            ev["t"], ev["p"] = np.sort(rng.integers(0, 1_300_000, n)), rng.integers(0, 2, n)
            write_aedat4(root / "CIFAR10DVS" / name / f"cifar10_{name}_{k}.aedat4", ev,
                         width=128, height=128, compression="lz4" if k % 2 else "none",
                         packet_size=128)
            written[(c, k)] = ev
    return written


def test_cifar10_dvs_reads_aedat4_recordings(tmp_path):
    written = _cifar10_dvs_tree(tmp_path)
    train, test, info = build_datasets("cifar10-dvs", root=tmp_path, T=10, augment=False)
    assert (len(train), len(test)) == (90, 10)  # per class: files 0-8 train, file 9 test
    assert [test[i][1] for i in range(10)] == list(range(10))
    for c in (0, 7):
        raw, label = test.events[c]  # tonic's sample: the decoded AEDAT4 events
        ev = written[(c, 9)]
        assert label == c and len(raw) == len(ev)
        for field in ("t", "x", "y"):
            np.testing.assert_array_equal(raw[field].astype(np.int64), ev[field])
        np.testing.assert_array_equal(raw["p"].astype(np.int64), ev["p"])
        full = EventFrames((128, 128, 2), 10, split_by="number")(raw)
        n = len(ev)
        assert full.sum((1, 2, 3)).tolist() == [n // 10] * 9 + [n - 9 * (n // 10)]
        assert full[:, 1].sum() == (ev["p"] == 1).sum()
        assert full[0, int(ev["p"][0]), int(ev["y"][0]), int(ev["x"][0])] >= 1
        x, _ = test[c]
        assert x.shape == (10, 2, 48, 48) and x.dtype == torch.float32
        # antialiased resize keeps the event mass, scaled by the area ratio
        assert x.sum().item() == pytest.approx(n * (48 / 128) ** 2, rel=0.05)
    torch.manual_seed(0)
    augmented, _, _ = build_datasets("cifar10-dvs", root=tmp_path, T=10, augment=True)
    assert all(augmented[i][0].shape == (10, 2, 48, 48) for i in range(0, 90, 9))


def test_cifar10_dvs_corrupt_recording_names_the_file(tmp_path):
    _cifar10_dvs_tree(tmp_path)
    bad = tmp_path / "CIFAR10DVS" / "truck" / "cifar10_truck_9.aedat4"
    bad.write_bytes(bad.read_bytes()[:300])  # truncated mid-packet
    _, test, _ = build_datasets("cifar10-dvs", root=tmp_path, T=10, augment=False)
    with pytest.raises(CorruptRecordingError, match=r"cannot read recording .*cifar10_truck_9"):
        test[9]


def test_batch_layout_helpers_and_augmentation():
    x = torch.rand(5, 3, 2, 6, 6)  # [B, T, C, H, W]
    assert to_time_first(x, 3, temporal=True).shape == (3, 5, 2, 6, 6)
    assert to_time_first(torch.rand(5, 1, 6, 6), 4, temporal=False).shape == (4, 5, 1, 6, 6)
    with pytest.raises(ValueError, match=r"expected \[B, T=4, C, H, W\]"):
        to_time_first(x, 4, temporal=True)
    aug = EventTrivialAugment()
    assert all(aug(x[0]).shape == x[0].shape for _ in range(20))
    target = one_hot(torch.tensor([0, 1, 2, 3, 4]), 6)
    for mix in (mixup, cutmix):
        mixed, soft = mix(x, target, 1.0)
        assert mixed.shape == x.shape and torch.allclose(soft.sum(1), torch.ones(5))


def test_cifar10_dvs_trains_with_the_released_recipe(tmp_path):
    """dta train on AEDAT4 recordings: preset, Mixup (p 0.5), smoothing, augmentation."""
    import json

    from dta.cli import main

    _cifar10_dvs_tree(tmp_path)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "cifar10-dvs", "--attention", "dta", "--data-root",
                 str(tmp_path), "--width", "8", "--T", "4", "--epochs", "1", "--limit-batches",
                 "2", "--batch-size", "16", "--out", str(out), "--no-progress"]) == 0
    record = json.loads((out / "record.json").read_text())
    cfg = record["config"]
    assert (cfg["preset"], cfg["lr"], cfg["weight_decay"], cfg["batch_size"]) == (
        "cifar10-dvs", 0.05, 0.0, 16)
    assert (cfg["mixup_alpha"], cfg["mixup_prob"], cfg["label_smoothing"], cfg["augment"]) == (
        0.5, 0.5, 0.1, True)
    assert 0.0 <= record["accuracy"] <= 1.0


def test_cli_reports_a_corrupt_recording_in_one_line(tmp_path, capsys):
    from dta.cli import main

    _cifar10_dvs_tree(tmp_path)
    bad = tmp_path / "CIFAR10DVS" / "truck" / "cifar10_truck_9.aedat4"  # a test recording
    bad.write_bytes(bad.read_bytes()[:300])
    assert main(["train", "--dataset", "cifar10-dvs", "--data-root", str(tmp_path), "--width",
                 "4", "--T", "2", "--epochs", "1", "--limit-batches", "1", "--batch-size", "8",
                 "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "dta train: error: cannot read recording" in err and "cifar10_truck_9" in err


def test_data_does_not_import_models():
    """Data flows one way, data -> model: dta.data needs only the shape helpers."""
    import subprocess
    import sys

    code = ("import sys, dta.data; bad = sorted(m for m in sys.modules if m.startswith("
            "('dta.models', 'dta.attention', 'dta.neuron', 'dta.train'))); print(bad); "
            "sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, f"dta.data imported {done.stdout.strip()}"


def test_events_are_checked_against_the_sensor():
    from dta.data.events import InvalidEventsError, check_events

    ev = np.zeros(4, dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = [0, 6, 3, 1], [0, 4, 2, 0], [0, 1, 2, 3], [0, 1, 1, 0]
    check_events(ev, (7, 5, 2))  # fits: x < 7, y < 5
    frames = EventFrames((7, 5, 2), 2)
    assert frames(ev).sum() == 4
    for field, value, what in (("x", 7, "x outside 0..6"), ("y", 5, "y outside 0..4"),
                               ("x", -1, "x outside 0..6"), ("p", 2, "p outside 0..1")):
        bad = ev.copy()
        bad[field][1] = value
        # x=7 on a 7-wide sensor would otherwise land on pixel (0, y+1): the next row
        with pytest.raises(InvalidEventsError, match=rf"7x5 sensor .*1 of 4 events have {what}"):
            frames(bad)


def test_cifar10_dvs_recording_from_another_sensor_names_file_and_sensor(tmp_path):
    from aedat4_files import write_aedat4

    _cifar10_dvs_tree(tmp_path)
    rng = np.random.default_rng(1)
    n = 3000  # a 320x240 recording (tonic's own test file is one) in the CIFAR10-DVS layout
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["x"], ev["y"] = rng.integers(0, 320, n), rng.integers(0, 240, n)
    ev["t"], ev["p"] = np.sort(rng.integers(0, 1_000_000, n)), rng.integers(0, 2, n)
    big = tmp_path / "CIFAR10DVS" / "truck" / "cifar10_truck_9.aedat4"
    write_aedat4(big, ev, width=320, height=240)
    # just past the edge: x=128 with a small y would silently land on the next row
    edge = np.zeros(50, dtype=EVENT_DTYPE)
    edge["x"], edge["y"], edge["t"], edge["p"] = np.arange(50) % 128, 3, np.arange(50), 1
    edge["x"][7] = 128
    write_aedat4(tmp_path / "CIFAR10DVS" / "airplane" / "cifar10_airplane_9.aedat4", edge,
                 width=128, height=128)
    _, test, _ = build_datasets("cifar10-dvs", root=tmp_path, T=10, augment=False)
    with pytest.raises(CorruptRecordingError,
                       match=r"cifar10_truck_9\.aedat4: its events do not fit the 128x128 sensor"):
        test[9]
    with pytest.raises(CorruptRecordingError,
                       match=r"cifar10_airplane_9\.aedat4: .*128x128 sensor.* "
                             r"1 of 50 events have x outside 0\.\.127"):
        test[0]
    assert test[1][0].shape == (10, 2, 48, 48)  # the other recordings still load


def test_nmnist_event_outside_the_34x34_sensor_names_the_file(tmp_path):
    ev = np.zeros(20, dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = np.arange(20), 33, np.arange(20) * 100, 1
    ev["y"][5] = 34  # one row past the bottom edge
    for split in ("Train", "Test"):
        _write_nmnist_bin(tmp_path / "NMNIST" / split / "4" / "00000.bin", ev)
    _, test, _ = build_datasets("nmnist", root=tmp_path, T=2, augment=False)
    with pytest.raises(CorruptRecordingError, match=r"00000\.bin: its events do not fit the 34x34 "
                                                    r"sensor .*y outside 0\.\.33"):
        test[0]


def test_dvs_digits_cache_with_events_off_the_sensor_is_regenerated(tmp_path):
    good, offsets, *_ = load_dvs_digits(tmp_path, 0)
    path = dvs_cache_path(tmp_path, 0)
    with np.load(path) as f:
        saved = {k: f[k] for k in f.files}
    saved["events"] = saved["events"].copy()
    saved["events"]["x"][10] = 12  # one column past the 12x12 array
    np.savez_compressed(path, **saved)
    events, *_ = load_dvs_digits(tmp_path, 0)
    assert np.array_equal(events, good)


def test_dvs_digits_events_off_the_sensor_name_their_source():
    from dta.data.embedded import EventDataset

    ev = np.zeros(3, dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = [1, 2, 12], [1, 1, 1], [0, 5, 9], [0, 1, 1]
    with pytest.raises(CorruptRecordingError, match=r"cache\.npz: .*12x12 sensor"):
        EventDataset(ev, np.array([0, 3]), np.array([4]), np.array([0]), 2, 12,
                     source="cache.npz")
