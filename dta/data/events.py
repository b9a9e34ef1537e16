"""Event streams: a DVS pixel-array simulator and the events-to-frames path.

Events are tonic-style structured arrays with fields ``x, y, t, p``
(t in microseconds, p in {0: OFF, 1: ON}); frames come from tonic's
``ToFrame(sensor_size, n_time_bins=T)`` as ``[T, 2, H, W]`` event counts. The
same :class:`EventFrames` transform serves the simulated ``dvs-digits``, N-MNIST
and CIFAR10-DVS recordings.
"""

from __future__ import annotations

import numpy as np
import torch

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])


class InvalidEventsError(ValueError):
    """Events that do not fit the sensor: a coordinate off the pixel array, or a bad polarity."""


def check_events(events: np.ndarray, sensor_size: tuple[int, int, int]) -> None:
    """Raise :class:`InvalidEventsError` unless every event fits ``sensor_size`` ``(W, H, P)``.

    ``0 <= x < W``, ``0 <= y < H`` and ``0 <= p < P``. Binning does not check
    this itself: an event just past the right edge would land on the next row's
    first pixel, and a recording from a larger sensor fails deep inside a reshape.
    """
    W, H, P = (int(v) for v in sensor_size)
    if len(events) == 0:
        return
    problems = []
    for field, size, axis in (("x", W, "width"), ("y", H, "height"), ("p", P, "polarities")):
        values = events[field]
        lo, hi = int(values.min()), int(values.max())  # bool polarities become 0/1
        if lo < 0 or hi >= size:
            bad = int(np.count_nonzero((values < 0) | (values >= size)))
            problems.append(f"{bad:,} of {len(events):,} events have {field} outside 0..{size - 1} "
                            f"(the sensor's {axis}; the file's {field} spans {lo}..{hi})")
    if problems:
        raise InvalidEventsError(f"its events do not fit the {W}x{H} sensor with {P} polarities "
                                 f"(W x H): " + "; ".join(problems))


class EventFrames:
    """Events -> float32 frames ``[T, 2, H, W]`` of event counts, optionally resized.

    ``sensor_size`` is tonic's ``(W, H, 2)``. Two ways to cut a stream into T frames:

    * ``split_by="time"`` (default): tonic's ``ToFrame`` over T equal time
      windows from the first event to just past the last one, so every event
      lands in exactly one frame (tonic's ``n_time_bins`` uses half-open bins
      and drops events stamped exactly at the end).
    * ``split_by="number"``: T frames with equal event counts, frame j holding
      events ``[j*(N//T), (j+1)*(N//T))`` and the last one the remainder, by
      spikingjelly's ``integrate_events_by_fixed_frames_number``: what the
      released DTA-SNN code uses for CIFAR10-DVS (``split_by='number'``).

    ``size`` resizes the frames as the released pipeline's
    ``transforms.Resize((48, 48))`` does on tensors (bilinear, antialiased).
    Events that do not fit ``sensor_size`` raise :class:`InvalidEventsError`
    (:func:`check_events`) before any binning.
    """

    SPLITS = ("time", "number")

    def __init__(self, sensor_size: tuple[int, int, int], T: int, size: int | None = None,
                 split_by: str = "time"):
        if split_by not in self.SPLITS:
            raise ValueError(f"EventFrames: split_by must be one of {self.SPLITS}, got {split_by!r}")
        self.sensor_size, self.T, self.size, self.split_by = tuple(sensor_size), T, size, split_by

    def _by_time(self, events: np.ndarray) -> np.ndarray:
        import tonic.transforms as tt

        t0, t1 = int(events["t"].min()), int(events["t"].max())
        window = (t1 - t0) // self.T + 1  # T * window > t1 - t0: the last event is inside
        to_frame = tt.ToFrame(sensor_size=self.sensor_size, time_window=window, start_time=t0,
                              end_time=t0 + self.T * window)
        return np.asarray(to_frame(events), dtype=np.float32)

    def _by_number(self, events: np.ndarray) -> np.ndarray:
        from spikingjelly.datasets.utils import integrate_events_by_fixed_frames_number

        W, H = self.sensor_size[:2]
        order = np.argsort(events["t"], kind="stable")  # the rule assumes time order
        fields = {k: np.asarray(events[k][order]).astype(np.int64) for k in ("t", "x", "y", "p")}
        return integrate_events_by_fixed_frames_number(fields, "number", self.T, H, W).astype(
            np.float32)

    def __call__(self, events: np.ndarray) -> torch.Tensor:
        if len(events) == 0:
            raise ValueError("EventFrames: an empty event stream cannot be binned into frames")
        check_events(events, self.sensor_size)
        raw = self._by_time(events) if self.split_by == "time" else self._by_number(events)
        frames = torch.from_numpy(raw)
        if frames.shape[0] != self.T:
            raise RuntimeError(f"EventFrames: {frames.shape[0]} frames, expected {self.T}")
        if self.size is not None and frames.shape[-1] != self.size:
            from torchvision.transforms import functional as TF

            frames = TF.resize(frames, [self.size, self.size], antialias=True)
        return frames


def saccade_path(ticks: int, amplitude: float) -> np.ndarray:
    """``[ticks, 2]`` sensor offsets (x, y) along three saccades forming a triangle.

    N-MNIST moved an ATIS sensor in three equal-duration saccades around a
    triangle in front of a static screen; we do the same in pixels.
    """
    a = amplitude
    vertices = np.array([[-a, -a / 2], [0.0, a], [a, -a / 2], [-a, -a / 2]])
    u = np.linspace(0.0, 3.0, ticks, endpoint=False)
    leg = np.minimum(u.astype(int), 2)
    frac = (u - leg)[:, None]
    return vertices[leg] * (1 - frac) + vertices[leg + 1] * frac


def _shift_bilinear(canvas: np.ndarray, ox: float, oy: float, size: int, margin: int) -> np.ndarray:
    """Sample ``[N, size, size]`` windows of ``canvas`` displaced by a sub-pixel (ox, oy)."""
    x0, y0 = int(np.floor(ox)), int(np.floor(oy))
    fx, fy = ox - x0, oy - y0
    ys, xs = margin + y0, margin + x0

    def window(dy, dx):
        return canvas[:, ys + dy: ys + dy + size, xs + dx: xs + dx + size]

    return ((1 - fy) * (1 - fx) * window(0, 0) + (1 - fy) * fx * window(0, 1)
            + fy * (1 - fx) * window(1, 0) + fy * fx * window(1, 1))


def simulate_saccades(
    images: np.ndarray,
    *,
    sensor: int = 16,
    scale: int = 12,
    amplitude: float = 1.5,
    duration_us: int = 300_000,
    tick_us: int = 1000,
    threshold: float = 0.2,
    threshold_sigma: float = 0.03,
    noise_hz: float = 0.2,
    eps: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """DVS events of static images moved in saccades in front of a simulated pixel array.

    ``images``: ``[N, h, w]`` intensities in [0, 1], upsampled to ``scale`` px and
    centred on a ``sensor`` x ``sensor`` array. Each pixel keeps a reference
    log-intensity; whenever ``log(I + eps)`` moves more than its contrast
    threshold (``threshold`` with per-pixel mismatch ``threshold_sigma``) from
    it, the pixel emits ON (brighter) or OFF events and moves the reference by
    one threshold per event. Background activity adds Poisson noise events at
    ``noise_hz`` per pixel. Deterministic for a ``seed``.

    Returns ``(events, offsets)``: one :data:`EVENT_DTYPE` array of all events
    sorted by (sample, t), and ``offsets[N+1]`` so sample i is
    ``events[offsets[i]:offsets[i+1]]``.
    """
    if images.ndim != 3:
        raise ValueError(f"simulate_saccades: expected images [N, h, w], got shape {images.shape}")
    rng = np.random.default_rng(seed)
    n = images.shape[0]
    margin = int(np.ceil(amplitude)) + 1
    big = torch.nn.functional.interpolate(
        torch.as_tensor(images, dtype=torch.float32)[:, None], size=(scale, scale),
        mode="bilinear", align_corners=False)[:, 0].clamp(0, 1).numpy()
    canvas = np.zeros((n, sensor + 2 * margin + 1, sensor + 2 * margin + 1), dtype=np.float32)
    start = margin + (sensor - scale) // 2
    canvas[:, start:start + scale, start:start + scale] = big

    ticks = duration_us // tick_us
    path = saccade_path(ticks, amplitude)
    contrast = threshold * (1 + threshold_sigma * rng.standard_normal((n, sensor, sensor)))
    contrast = np.maximum(contrast, 0.05).astype(np.float32)
    reference = np.log(_shift_bilinear(canvas, *path[0], sensor, margin) + eps)

    chunks = []  # (sample, y, x, t, p)
    for k in range(1, ticks):
        level = np.log(_shift_bilinear(canvas, *path[k], sensor, margin) + eps)
        diff = level - reference
        n_events = np.floor(np.abs(diff) / contrast).astype(np.int64)
        idx = np.nonzero(n_events)
        if idx[0].size:
            counts = n_events[idx]
            sign = np.sign(diff[idx])
            reference[idx] += sign * counts * contrast[idx]
            rep = np.repeat(np.arange(idx[0].size), counts)
            # several events of one pixel in one tick are spread evenly over the tick
            first = np.repeat(np.cumsum(counts) - counts, counts)
            within = (np.arange(rep.size) - first) / np.repeat(counts, counts)
            t = (k * tick_us + within * tick_us).astype(np.int64)
            chunks.append((idx[0][rep], idx[1][rep], idx[2][rep], t, (sign[rep] > 0)))
    # background activity: Poisson events with random polarity
    expected = noise_hz * duration_us / 1e6 * sensor * sensor
    n_noise = rng.poisson(expected, size=n)
    s = np.repeat(np.arange(n), n_noise)
    chunks.append((s, rng.integers(0, sensor, s.size), rng.integers(0, sensor, s.size),
                   rng.integers(0, duration_us, s.size), rng.integers(0, 2, s.size) > 0))

    sample, ys, xs, ts, ps = (np.concatenate(parts) for parts in zip(*chunks))
    order = np.lexsort((ts, sample))
    events = np.empty(order.size, dtype=EVENT_DTYPE)
    events["x"], events["y"] = xs[order], ys[order]
    events["t"], events["p"] = ts[order], ps[order].astype(np.int8)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(sample, minlength=n), out=offsets[1:])
    return events, offsets
