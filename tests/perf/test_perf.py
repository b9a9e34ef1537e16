"""CI performance checks (pytest-benchmark).

Run them with ``make perf`` (``pytest tests/perf --benchmark-enable
--benchmark-json ...``). The normal test run passes ``--benchmark-disable``:
each benchmarked function then runs once as a smoke test and no timing is
asserted. Targets are ratios measured in the same run, never absolute times.

The profiler check (issue 12) times the public API, ``dta.measure.profile``
(counting and the report), against a plain forward of the same network, and
spikingjelly's ``SynOpCounter`` (under its ``DispatchCounterMode``) and
NeuroBench's ``SynapticOperations`` against the same plain forward, all
interleaved in one run, on one thread (the machine's cores are shared), for

* the embedded default: ``ms_resnet18`` + ``dta``, width 16, T=4, batch 64,
  8x8 digits (1 channel);
* spikingjelly's ``spiking_resnet18`` (IF neurons, multi-step), T=4, batch 8,
  32x32 RGB.

The same rounds time where the overhead goes: the counted forward alone (no finalize, no
totals), the design's floor inside it (wrappers like the counter's and a torch-function
mode, the counter's front, stepped out around the layers it counts from hooks, nothing
counted), and a dispatch mode that only runs every operator.

The target (``MAX_PROFILE_RATIO``) is for a repeated call, the way a user calls
``profile`` on one model: it keeps per-model caches (fan-outs, module table) and
per-process ones (which ATen operator each kind of layer runs). The first call
on a fresh copy of the model, with the per-process table emptied, is measured
and recorded too.
"""

import copy
import statistics
import time

import pytest
import torch
from spikingjelly.activation_based import functional, neuron
from spikingjelly.activation_based.model import spiking_resnet
from spikingjelly.activation_based.op_counter import DispatchCounterMode, SynOpCounter
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from dta.measure import counter as measure_counter
from dta.measure import neurobench_synops, profile
from dta.measure.counter import OpCounter
from dta.models import create_model, repeat_static

from .timing import interleaved_ratios, machine, report

T, BATCH = 4, 64
MAX_PROFILE_RATIO = 1.2  # the target (issue 12): profile() / plain forward, repeated call
# What CI asserts: being ahead of SynOpCounter and NeuroBench (as is), and a ceiling well
# above the spread the shared 2-core machines show for one commit (timed with glibc keeping
# freed memory, timing.steady). The 1.2x target is printed and recorded (meets_target), not
# asserted: the ratio depends on the CPU (the README's table: 1.127-1.151x on the default
# network on an AMD EPYC, 1.196-1.211x on the earlier sessions' machine, where it sat at
# the target), and runs of one commit differ by 2-3 %.
CI_PROFILE_RATIO = 1.6
ROUNDS = 21  # interleaved pairs per ratio
FIRST_CALLS = 5  # fresh model copies timed for the first-call ratio


def _default():
    """The embedded-default network (width 16, T=4, 8x8 digits) with DTA."""
    torch.manual_seed(0)
    net = create_model("ms_resnet18", attention="dta", T=T, num_classes=10, in_channels=1, width=16)
    return net, repeat_static(torch.rand(BATCH, 1, 8, 8), T)


@pytest.fixture(scope="module")
def default_net():
    return _default()


def _spiking_resnet18():
    """spikingjelly's spiking_resnet18 (IF neurons, multi-step), T=4, batch 8, 32x32."""
    torch.manual_seed(0)
    net = spiking_resnet.spiking_resnet18(spiking_neuron=neuron.IFNode, num_classes=10)
    functional.set_step_mode(net, "m")
    x = torch.rand(T, 8, 3, 32, 32) * 5  # strong enough to make the untrained net spike
    return net, x


NETWORKS = {"ms_resnet18+dta": _default, "spiking_resnet18": _spiking_resnet18}


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def plain_forward(net, x):
    with torch.no_grad():
        net(x)
    functional.reset_net(net)


def synop_forward(net, x):
    counter = SynOpCounter()
    with torch.no_grad(), DispatchCounterMode([counter]):
        net(x)
    functional.reset_net(net)


class PassThrough(TorchDispatchMode):
    """A dispatch mode that only runs each operator: the floor every dispatch-level counter
    pays when it intercepts all operators (dta-bench meets the model's code with a
    torch-function mode, stepped out around leaf layers and neurons, and dispatches only the
    calls that mode does not count itself)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def passthrough_forward(net, x):
    with torch.no_grad(), PassThrough():
        net(x)
    functional.reset_net(net)


class FunctionPassThrough(TorchFunctionMode):
    """A torch-function mode that only runs each call: the front profile() keeps on while
    the model's own code runs, without counting."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def design_floor_forward(net, x):
    """The floor of profile()'s design, nothing counted: as in a counted forward, every
    module runs through an instance forward installed for the call (removed after it) and a
    torch-function mode is on (the counter's front), stepped out around the leaf layers and
    neurons the counter counts from hooks; the mode only runs the other calls, the wrappers
    only call through."""
    state = measure_counter.model_state(net)
    mode = FunctionPassThrough()
    depth = [0]

    def wrap(m):
        call = m.__dict__.get("forward") or type(m).forward.__get__(m)
        if id(m) not in state.roles:
            return lambda *a, **k: call(*a, **k)

        def forward(*a, **k):  # a leaf layer or neuron: the mode stepped out while it runs
            depth[0] += 1
            out_of_mode = depth[0] == 1 and measure_counter._top_front() is mode
            if out_of_mode:
                measure_counter._pop_front()
            try:
                return call(*a, **k)
            finally:
                depth[0] -= 1
                if out_of_mode:
                    measure_counter._push_front(mode)
        return forward

    installed = [(m, m.__dict__.get("forward")) for m in (net, *state.modules.values())]
    for m, _ in installed:
        m.__dict__["forward"] = wrap(m)
    try:
        with torch.no_grad(), mode:
            out = net(x)
    finally:
        for m, own in installed:  # (an instance forward of the module's own is put back)
            if own is None:
                del m.__dict__["forward"]
            else:
                m.__dict__["forward"] = own
    functional.reset_net(net)
    return out


def counted_forward(net, x):
    """profile()'s forward alone: the OpCounter's hooks and dispatch mode, counts left on
    the counter (no finalize, no totals)."""
    with torch.no_grad(), OpCounter(net, T=T, B=int(x.shape[1])):
        net(x)
    functional.reset_net(net)


def first_call_ratio(net, x, calls: int) -> float:
    """Median over fresh deep copies of ``net`` of (first profile() / a plain forward right
    before it), with the per-process table of layer operators emptied each time."""
    ratios = []
    for _ in range(calls):
        fresh = copy.deepcopy(net)
        measure_counter._RECIPES.clear()  # as in a new process
        plain_forward(fresh, x)  # warm the copy's own buffers
        t0 = time.perf_counter()
        plain_forward(fresh, x)
        t1 = time.perf_counter()
        profile(fresh, x)
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


@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_profile_overhead(benchmark, network, one_thread):
    """profile() / plain forward against SynOpCounter's and NeuroBench's, interleaved."""
    net, x = NETWORKS[network]()
    net.eval()
    result = benchmark(profile, net, x)
    # it counted: synaptic ops, spikes, bytes and energy under every model
    t = result.totals
    assert t["ac"] > 0 and t["mac"] > 0 and 0 < t["firing_rate"] < 1 and t["bytes"] > 0
    assert all(v > 0 for v in t["energy_uj_by_model"].values()) and result.unsupported == {}
    # the floor variant runs the same network: same output as a plain forward
    with torch.no_grad():
        expected = net(x)
    functional.reset_net(net)
    assert torch.equal(design_floor_forward(net, x), expected)
    assert all("forward" not in m.__dict__ for m in net.modules())
    if benchmark.disabled:
        return  # smoke run only: timing ratios are checked with --benchmark-enable

    plain = lambda: plain_forward(net, x)  # noqa: E731
    # all in the same rounds: profile() and its peers, and where profile()'s overhead goes
    # (the counted forward alone; what follows it, finalize, totals and resets, is the
    # difference; the design's floor, the part of the counted forward that is not counting),
    # with a pass-through dispatch mode for scale
    r = interleaved_ratios(plain, {
        "profile": lambda: profile(net, x), "synop": lambda: synop_forward(net, x),
        "neurobench": lambda: neurobench_synops(net, x),
        "counting": lambda: counted_forward(net, x),
        "floor": lambda: design_floor_forward(net, x),
        "passthrough": lambda: passthrough_forward(net, x)}, rounds=ROUNDS)
    ours, synop, neurobench = r["profile"], r["synop"], r["neurobench"]
    counting, floor, passthrough = r["counting"], r["floor"], r["passthrough"]
    first = first_call_ratio(net, x, FIRST_CALLS)
    plain_ms = statistics.median(_times(plain, 5)) * 1e3
    added_ms = (ours - 1) * plain_ms  # (ratio from the pairs, plain time measured apart)
    benchmark.extra_info.update(
        model=network, T=T, batch=int(x.shape[1]), input=list(x.shape), threads=1,
        plain_forward_ms=plain_ms, profile_ratio=ours, profile_first_call_ratio=first,
        spikingjelly_synop_ratio=synop, neurobench_synops_ratio=neurobench,
        counted_forward_ratio=counting, design_floor_ratio=floor,
        passthrough_dispatch_ratio=passthrough,
        max_profile_ratio=MAX_PROFILE_RATIO, meets_target=ours <= MAX_PROFILE_RATIO,
        ci_profile_ratio=CI_PROFILE_RATIO, rounds=ROUNDS, machine=machine(),
        profile_added_ms=added_ms)
    verdict = "meets" if ours <= MAX_PROFILE_RATIO else "MISSES"
    report(f"{network}: profile()/plain forward {ours:.3f}x ({verdict} the {MAX_PROFILE_RATIO}x "
          f"target; first call {first:.2f}x), spikingjelly SynOpCounter {synop:.2f}x, NeuroBench "
          f"SynapticOperations {neurobench:.2f}x; plain forward {plain_ms:.1f} ms, 1 thread "
          f"(profile() adds about {added_ms:.1f} ms); "
          f"of profile(): the counted forward {counting:.3f}x (finalize and totals: the rest), "
          f"of which the design's floor (wrappers, function mode stepped out, nothing counted) "
          f"{floor:.3f}x; a pass-through dispatch mode alone {passthrough:.2f}x")
    assert ours <= CI_PROFILE_RATIO, f"profile() costs {ours:.2f}x a plain forward"
    assert ours < synop and ours < neurobench, (ours, synop, neurobench)


def _times(fn, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


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
