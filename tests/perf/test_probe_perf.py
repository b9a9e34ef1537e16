"""What the end-of-epoch probe costs, as a share of a training epoch (pytest-benchmark).

``make perf`` runs it with ``--benchmark-enable``: it trains the embedded default
(``digits`` preset, ``dta``, one thread as in ``dta bench``'s workers) for a few
epochs, probes after each as the trainer does, prints the median probe time over
the median epoch time and checks it stays at most 10 %. The normal test run
(``--benchmark-disable``) runs the probe once as a smoke test; no timing is asserted.
"""

import statistics

import pytest
import torch
from torch.utils.data import DataLoader

from dta.data import build_datasets, to_time_first
from dta.models import create_model
from dta.train import Dist, probe, resolve_config, seed_everything, train_one_epoch

from .timing import report

MAX_SHARE = 0.10  # probe seconds / epoch seconds
EPOCHS = 3


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of dta bench's two worker processes
    yield
    torch.set_num_threads(before)


def test_probe_share_of_an_epoch(benchmark, tmp_path, one_thread):
    cfg = resolve_config("digits", "dta", data_root=str(tmp_path), progress=False)
    train_set, test_set, info = build_datasets("digits", root=cfg.data_root, T=cfg.T, seed=0)
    seed_everything(0, -1, 0)
    model = create_model(cfg.model, attention=cfg.attention, T=cfg.T, num_classes=info.num_classes,
                         in_channels=info.in_channels, width=cfg.width)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    x = to_time_first(torch.stack([test_set[i][0] for i in range(cfg.probe_samples)]), cfg.T,
                      info.temporal)
    result = benchmark(probe, model, x)
    assert result["samples"] == cfg.probe_samples and result["acs"] > 0
    if benchmark.disabled:
        return  # smoke run only: the share is checked with --benchmark-enable

    epochs, probes = [], []
    for epoch in range(EPOCHS):  # the trainer's order: an epoch, then the probe
        loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True)
        stats = train_one_epoch(model, loader, optimizer, cfg, info, torch.device("cpu"), Dist(),
                                epoch=epoch, n_batches=len(loader))
        epochs.append(stats["seconds"])
        probes.append(probe(model, x)["seconds"])
    share = statistics.median(probes) / statistics.median(epochs)
    benchmark.extra_info.update(probe_share=share, epoch_s=statistics.median(epochs),
                                probe_s=statistics.median(probes), max_share=MAX_SHARE,
                                probe_samples=cfg.probe_samples, batches=len(loader))
    report(f"probe / epoch: {share:.1%} (probe {statistics.median(probes):.3f} s on "
          f"{cfg.probe_samples} samples, epoch {statistics.median(epochs):.2f} s of "
          f"{len(loader)} batches; medians of {EPOCHS}, 1 thread)")
    assert share <= MAX_SHARE, f"the probe costs {share:.1%} of an epoch"
