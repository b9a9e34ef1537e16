"""CI performance checks (pytest-benchmark).

Run them with ``make perf`` (``pytest tests/perf --benchmark-enable
--benchmark-json ...``). The normal test run passes ``--benchmark-disable``:
each benchmarked function then runs once as a smoke test and no timing is
asserted. Targets are ratios measured in the same run, never absolute times.
"""

import statistics
import time

import pytest
import torch
from spikingjelly.activation_based import functional
from spikingjelly.activation_based.op_counter import DispatchCounterMode, SynOpCounter

from dta.measure import neurobench_synops
from dta.measure.counter import OpCounter
from dta.models import create_model, repeat_static

T, BATCH = 4, 64
MAX_OVERHEAD = 1.5  # instrumented forward / plain forward


@pytest.fixture(scope="module")
def default_net():
    """The embedded-default network (width 16, T=4, 8x8 digits) with DTA."""
    torch.manual_seed(0)
    net = create_model("ms_resnet18", attention="dta", T=T, num_classes=10, in_channels=1, width=16)
    x = repeat_static(torch.rand(BATCH, 1, 8, 8), T)
    return net, x


def plain_forward(net, x):
    with torch.no_grad():
        net(x)
    functional.reset_net(net)


def counted_forward(net, x, cache):
    with torch.no_grad(), OpCounter(net, T=T, B=x.shape[1], fanout_cache=cache) as counter:
        net(x)
    functional.reset_net(net)
    return counter.finalize()


def synop_forward(net, x):
    counter = SynOpCounter()
    with torch.no_grad(), DispatchCounterMode([counter]):
        net(x)
    functional.reset_net(net)


def paired_ratio(fast, slow, rounds=9):
    """Median of slow/fast over interleaved pairs: both see the same machine load."""
    fast(), slow()  # warm-up
    ratios = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fast()
        t1 = time.perf_counter()
        slow()
        t2 = time.perf_counter()
        ratios.append((t2 - t1) / (t1 - t0))
    return statistics.median(ratios)


def test_forward(benchmark, default_net):
    net, x = default_net
    net.eval()
    benchmark(plain_forward, net, x)
    benchmark.extra_info.update(model="ms_resnet18+dta", width=16, T=T, batch=BATCH)


def test_training_step(benchmark, default_net):
    net, x = default_net
    net.train()
    y = torch.randint(0, 10, (BATCH,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def step():
        loss = torch.nn.functional.cross_entropy(net(x).mean(0), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        functional.reset_net(net)

    benchmark(step)
    net.eval()
    benchmark.extra_info.update(model="ms_resnet18+dta", width=16, T=T, batch=BATCH)


def test_instrumentation_overhead(benchmark, default_net):
    net, x = default_net
    net.eval()
    cache = {}
    result = benchmark(counted_forward, net, x, cache)
    assert result.ops and result.neurons  # it counted something
    if benchmark.disabled:
        return  # smoke run only: timing ratios are checked with --benchmark-enable
    ours = paired_ratio(lambda: plain_forward(net, x), lambda: counted_forward(net, x, cache))
    theirs = paired_ratio(lambda: plain_forward(net, x), lambda: synop_forward(net, x))
    neurobench = paired_ratio(lambda: plain_forward(net, x), lambda: neurobench_synops(net, x))
    benchmark.extra_info.update(overhead_ratio=ours, spikingjelly_synop_ratio=theirs,
                                neurobench_synops_ratio=neurobench, max_overhead=MAX_OVERHEAD)
    print(f"\ninstrumented/plain forward: {ours:.2f}x (spikingjelly SynOpCounter: {theirs:.2f}x, "
          f"NeuroBench SynapticOperations: {neurobench:.2f}x)")
    assert ours <= MAX_OVERHEAD, f"instrumentation costs {ours:.2f}x a plain forward"


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA GPU on this machine: GPU benchmarks skipped")
def test_forward_cuda(benchmark):  # pragma: no cover - needs a GPU
    torch.manual_seed(0)
    net = create_model("ms_resnet18", attention="dta", T=T, num_classes=10, in_channels=1,
                       width=16).eval().cuda()
    x = repeat_static(torch.rand(BATCH, 1, 8, 8), T).cuda()

    def forward():
        plain_forward(net, x)
        torch.cuda.synchronize()

    benchmark(forward)
