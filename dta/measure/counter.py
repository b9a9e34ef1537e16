"""The counting engine: a dispatch-level op counter with module scopes.

:class:`OpCounter` records, during one forward pass of any ``nn.Module``:

* every ATen operator outside spiking neurons, counted by the rule table of
  :mod:`dta.measure.rules` and attributed to the innermost module that ran it
  (its ``named_modules`` name), with the elements it moves (weights, biases,
  input and output activations; the traffic rules of :mod:`dta.measure.traffic`);
* for every spiking-neuron module, membrane updates, output spikes and
  neuron-state traffic per time step (neurons are opaque: their internal
  arithmetic is the neuron update, counted once per neuron per step, not op
  by op).

Counts stay as tensors on the model's device until :meth:`OpCounter.finalize`,
which moves them to the host in one transfer; the only host synchronisations
during the forward are the spike-tensor test of each synaptic op's input and
of each product's factors (it picks the counting path) and the sign check of
spikes that no convolution reads. The test is skipped for the untouched output
of a neuron that emits {0, 1} by construction (:func:`emits_binary_spikes`:
the dta-bench LIF, spikingjelly's IF/LIF/PLIF with a Heaviside surrogate). Traffic is computed from shapes alone, and
whether an operand is a spike tensor or an activation-function output is
looked up from the storages this pass has already classified (a neuron's
output, an input found binary, a ReLU's output): no extra synchronisation.
A neuron's spikes per step are the nonzeros the convolution reading its
{0, 1} output counts anyway; otherwise they are counted before any op can
write to them. Counting is for measurement, never for timing: latency is
measured without it.

Leaf layers. A convolution, linear, max-pool or eval-mode BatchNorm module
(``torch.nn`` or spikingjelly's step-mode wrappers, unmodified) is counted
from handlers around its forward (the counter wraps every module's forward for
the call, see ``OpCounter._install``) with the counter's modes stepped out while it runs: the
counts come from the same rule code, called with the arguments its single
ATen operator receives, so the numbers are those of the operator-level path.
Which operator that is (its name in reports) is learned from the first call
of each configuration, which goes through the dispatcher and must produce
exactly that one counted operator; any other configuration, and any instance
with hooks or a forward of its own, keeps the operator-level path.

The front. The model's own code (everything outside neurons and those leaf layers) runs
under a torch-function mode, ``_Front``, in place of the dispatch mode (``make profile-ab``
against the dispatch mode alone, 300 rounds on the README's earlier 2-core machine: 0.009x
less overhead on the perf suite's default network, 0.004x on spiking_resnet18, same
counts). The calls it can map onto exactly one ATen
operator with the same arguments (sums and products with tensors or numbers, in place for
sums, sigmoid, GELU, ReLU, a mean over given dims) it counts itself, by that operator's rule; views and metadata
reads pass; every other call runs with the dispatch mode pushed and is counted operator
by operator. The records are those of the dispatch mode alone (a test compares them).
Where torch lacks the function-mode stack's C functions, the dispatch mode is used alone.

Time steps. The input is ``[T, B, ...]``. A synaptic op whose input has
``T*B`` rows (spikingjelly's multi-step layers flatten ``[T, B]``) is split
exactly per step from its per-row counts. A model run in single-step mode
(every neuron called T times on ``[B, ...]``) has each op's k-th call
attributed to step k. Any other op (attention on ``[B, T, C]``, T folded into
channels, ...) is split evenly over the T steps. Per-step counts always sum
to the total.

Caches (attached to the model, dropped with it): module names and types (and the
forward wrappers of the submodules, made once per module tree), own-parameter counts,
CPU work tensors for the spike test (up to 64 MB), the plans of leaf layers, the static
columns of each count structure, and per weight (keyed by the tensor, its
``_version`` and its storage, so an in-place update, ``load_state_dict`` or a new
tensor misses; a write through ``.data`` bypasses the version counter: :func:`forget`)
the fan-out vectors and dense-count constants of each input shape. Per process: which
ATen operator each configuration of leaf layer runs, and the rule each ATen overload
is counted by.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
from torch import nn
from torch.utils import _python_dispatch as python_dispatch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from . import rules
from .traffic import TRAFFIC_FIELDS

aten = torch.ops.aten

SPIKE, ACT, REAL = 0, 1, 2  # operand classes: 1-bit spikes, activation outputs, other reals

#: Numeric columns of a count row: ``report.traffic`` without its layer/type/component/op/t.
ROW_COLUMNS = (*TRAFFIC_FIELDS, "param_words", "synaptic", "conv", "leaky", "spikes",
               *rules.KINDS, "neuron_updates", "dense_macs")
FLAG_COLUMNS = ("synaptic", "conv", "leaky")
#: The columns filled from what the forward measured (operations, nonzero inputs and what
#: follows from them, spikes); every other column follows from the ops' shapes and classes,
#: which finalize keeps per model while the calls record the same ops (``static_key``).
DATA_COLUMNS = ("ac", "mac", "w_reads", "nnz_in", "ev_mem", "ev_ops", "spikes")
_COL = {name: i for i, name in enumerate(ROW_COLUMNS)}
_IN_COLS = (_COL["in_spike"], _COL["in_act"], _COL["in_real"])  # indexed by SPIKE/ACT/REAL
_EL_COLS = [_COL[k] for k in (*rules.KINDS, "w_reads", "b_reads", "in_spike", "in_act",
                              "in_real", "out_spike", "out_act", "out_real")]

_NEURON_TYPES: dict[type, bool] = {}


def is_neuron(module: nn.Module) -> bool:
    """A spiking-neuron layer: any spikingjelly neuron, or a stateful ``*Node`` module."""
    cls = type(module)
    known = _NEURON_TYPES.get(cls)
    if known is None:
        from spikingjelly.activation_based import base
        from spikingjelly.activation_based.neuron import BaseNode, SimpleBaseNode

        known = issubclass(cls, (BaseNode, SimpleBaseNode)) or (
            issubclass(cls, base.MemoryModule) and cls.__name__.endswith("Node"))
        _NEURON_TYPES[cls] = known
    return known


#: spikingjelly surrogates whose spiking forward is the Heaviside step (``x >= 0`` as 0/1);
#: the others (multi-level counts, pass-throughs, signed logs) are not binary
_HEAVISIDE_SURROGATES = ("ATan", "Erf", "LeakyKReLU", "LogTailedReLU", "PiecewiseExp",
                         "PiecewiseLeakyReLU", "PiecewiseQuadratic", "QPseudoSpike", "Rect",
                         "S2NN", "Sigmoid", "SoftSign", "SquarewaveFourierSeries", "SuperSpike")
_BINARY_NEURONS: tuple | None = None  # neuron classes whose every path fires by a comparison
_SURROGATE_OK: dict[type, bool] = {}


def _binary_classes() -> tuple:
    global _BINARY_NEURONS
    if _BINARY_NEURONS is None:
        from spikingjelly.activation_based import neuron, surrogate

        from ..neuron import FaithfulLIF, StrictPiecewiseQuadratic

        surrogates = [getattr(surrogate, n) for n in _HEAVISIDE_SURROGATES if hasattr(surrogate, n)]
        _BINARY_NEURONS = ((FaithfulLIF, neuron.IFNode, neuron.LIFNode, neuron.ParametricLIFNode),
                           (*surrogates, StrictPiecewiseQuadratic))
    return _BINARY_NEURONS


def own_forward(module: nn.Module):
    """The forward the instance itself defines (an instance attribute), or None; the
    wrappers a counter installs for one call (:meth:`OpCounter._install`) are looked
    through."""
    f = module.__dict__.get("forward")
    while f is not None and hasattr(f, "_dta_counter_wraps"):
        f = f._dta_counter_wraps
    return f


def emits_binary_spikes(module: nn.Module) -> bool:
    """The neuron's output holds only 0 and 1 by construction, whatever its input.

    True for the dta-bench LIF and spikingjelly's IF, LIF and parametric LIF (these
    exact classes: a subclass may fire differently) whose surrogate is one of
    spikingjelly's Heaviside-forward ones in spiking mode, with no forward hook
    and no instance-level override of a forward method. Their execution paths
    (Python loop, spikingjelly's CPU ops and Triton kernels, the
    ``dta::lif_multistep`` op) write spikes as the result of a comparison, as read
    in their sources; the CPU paths, multi- and single-step, are checked on edge
    inputs in ``tests/test_binary_neurons.py``, the CUDA ones are not. Each
    surrogate class is also probed once on edge values (signed zeros, subnormals,
    infinities, NaN). The counter then skips the exact {0, 1} test of a
    convolution input that is such a neuron's untouched output.
    """
    neurons, surrogates = _binary_classes()
    if type(module) not in neurons:
        return False
    state = module.__dict__
    if (state["_forward_hooks"] or state["_forward_pre_hooks"]
            or ("forward" in state and own_forward(module))
            or "single_step_forward" in state or "multi_step_forward" in state
            or "neuronal_fire" in state or "neuronal_charge" in state):
        return False
    sg = state["_modules"].get("surrogate_function")
    if sg is None:  # (held as a plain attribute)
        sg = state.get("surrogate_function")
    if type(sg) not in surrogates:
        return False
    sg_state = sg.__dict__
    if (sg_state.get("spiking", False) is not True or sg_state["_forward_hooks"]
            or ("forward" in sg_state and own_forward(sg))):
        return False
    ok = _SURROGATE_OK.get(type(sg))
    if ok is None:
        probe = torch.tensor([-math.inf, -1.0, -1e-45, -0.0, 0.0, 1e-45, 0.5, 1.0, 2.0, math.inf,
                              math.nan])
        with torch.no_grad():
            out = sg(probe)
        ok = _SURROGATE_OK[type(sg)] = bool(((out == 0) | (out == 1)).all())
    return ok


class Rows(dict):
    """Count rows: column name -> ``[R]`` array, with a memo of what is computed from them
    (:func:`dta.measure.traffic.canonical_bytes`); the arrays are not to be modified."""

    def __init__(self, *args):
        super().__init__(*args)
        self.memo: dict = {}


@dataclass(eq=False)
class CountResult:
    """Raw counts of one forward, already split per time step and per sample.

    One row per (op call, time step) -- one row per call for a neuron called on
    one step -- in call order: ``rows`` maps each of :data:`ROW_COLUMNS` to a
    ``[R]`` array (per sample; flags as bool), ``row_event`` / ``row_t`` give each
    row's event (index into ``layer`` / ``op`` / ``kinds``) and step. ``kinds``:
    the op kinds each event contributes to ``ops`` (none for neurons).
    ``ops``, ``neurons`` and ``traffic`` give the rows as lists of dicts.

    The rows are built on first access: :data:`DATA_COLUMNS` are filled from
    ``measured`` (the per-group counts the forward measured, one vector) by
    :meth:`rows_from`; the other columns (``static``) follow from the ops' shapes and
    classes and are shared, read-only, by every result of the same ``static_key``.
    """

    T: int
    B: int
    layer: list = field(default_factory=list)  # per event: module name
    op: list = field(default_factory=list)  # per event: operator name ("neuron" for neurons)
    kinds: list = field(default_factory=list)  # per event: op kinds of its ops rows
    row_event: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    row_t: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    unsupported: dict = field(default_factory=dict)  # "scope: op" -> calls
    folded_bn: list = field(default_factory=list)  # scopes of BatchNorms folded into a conv
    module_types: dict = field(default_factory=dict)  # name -> class name
    single_step: bool = False
    # the same object for results whose rows differ in DATA_COLUMNS only (None: unknown)
    static_key: object = field(default=None, repr=False)
    measured: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    # column -> [R], read-only: all but DATA_COLUMNS
    static: dict = field(default_factory=dict, repr=False)
    _fill: object = field(default=None, repr=False, compare=False)  # measured -> Rows
    _rows: dict | None = field(default=None, repr=False, compare=False)

    @property
    def rows(self) -> dict:
        """Column name -> ``[R]`` array (built from ``measured`` on first access)."""
        if self._rows is None:
            self._rows = self.rows_from(self.measured)
        return self._rows

    def rows_from(self, measured: np.ndarray) -> "Rows":
        """The rows these counts have when the forward measured ``measured`` instead (a
        vector as long as ``measured``): every column but :data:`DATA_COLUMNS` as here, those
        filled from ``measured`` (each entry from at most one of its values, scaled)."""
        if self._fill is None:
            if self.n_rows:
                raise ValueError("these counts have rows but no fill for them: build a "
                                 "CountResult with OpCounter.finalize()")
            return Rows({name: np.zeros(0) for name in ROW_COLUMNS})
        return self._fill(measured)

    def column(self, name: str) -> np.ndarray:
        """One column of the rows, without building them for a column not measured."""
        if self._rows is None and name not in DATA_COLUMNS and name in self.static:
            return self.static[name]
        return self.rows[name]

    @property
    def n_rows(self) -> int:
        return len(self.row_t)

    def _first_rows(self) -> np.ndarray:
        first = np.full(len(self.layer), -1, dtype=np.int64)
        first[self.row_event[::-1]] = np.arange(self.n_rows - 1, -1, -1)
        return first

    @property
    def traffic(self) -> list[dict]:
        """Dicts: layer, op, t, the traffic fields and counts of each row."""
        cols = {k: v.tolist() for k, v in self.rows.items()}
        ev, ts = self.row_event.tolist(), self.row_t.tolist()
        return [{"layer": self.layer[e], "op": self.op[e], "t": t,
                 **{k: cols[k][i] for k in ROW_COLUMNS}} for i, (e, t) in enumerate(zip(ev, ts))]

    @property
    def neurons(self) -> list[dict]:
        """Dicts: layer, t, spikes, neurons of each neuron row."""
        spikes, nu = self.rows["spikes"].tolist(), self.rows["neuron_updates"].tolist()
        return [{"layer": self.layer[e], "t": t, "spikes": spikes[i], "neurons": nu[i]}
                for i, (e, t) in enumerate(zip(self.row_event.tolist(), self.row_t.tolist()))
                if self.op[e] == "neuron"]

    @property
    def ops(self) -> list[dict]:
        """Dicts: layer, op, kind, t, count, dense_macs (one per op kind and step)."""
        first = self._first_rows().tolist()
        dense = self.rows["dense_macs"].tolist()
        out = []
        for e, kinds in enumerate(self.kinds):
            for kind in kinds:
                col = self.rows[kind]
                for t in range(self.T):
                    i = first[e] + t
                    out.append({"layer": self.layer[e], "op": self.op[e], "kind": kind, "t": t,
                                "count": float(col[i]), "dense_macs": dense[i]})
        return out


def layer_names(model: nn.Module) -> dict[int, str]:
    """``id(module) -> layer name`` as reports show it: ``named_modules`` names, the
    root module (whose name is empty) by its class name."""
    return {id(m): n or type(m).__name__ for n, m in model.named_modules()}


def _host(t) -> np.ndarray:
    """A count vector (tensor or host array) as a float64 host array."""
    if isinstance(t, np.ndarray):
        return t
    if t.dtype == torch.float64 and t.device.type == "cpu" and not t.requires_grad:
        return t.numpy()
    return t.detach().to(torch.float64).cpu().numpy()


def _plan_attrs(kind: str, state: dict, weight) -> tuple:
    """What a leaf layer's count depends on beyond its input and parameters: the attributes
    of its operator (and a convolution's weight version and data, its fan-outs)."""
    if kind == "conv":
        return (_version(weight), weight.data_ptr(), state["stride"], state["padding"],
                state["dilation"], state["groups"], state["padding_mode"])
    if kind == "linear":
        return (_version(weight), weight.data_ptr())
    if kind == "bn":
        return (state["_buffers"].get("running_mean") is not None,)
    if kind == "maxpool":
        return (state["kernel_size"], state["stride"], state["padding"], state["dilation"],
                state["ceil_mode"], state["return_indices"])
    return ()


def _matmul_key(weight: torch.Tensor, b: torch.Tensor) -> tuple:
    """The fan-out cache's key of a matrix product whose right operand ``b`` views the
    parameter ``weight`` (for a linear layer, ``weight.t()``)."""
    return ("matmul", id(weight), tuple(b.shape), tuple(b.stride()), b.storage_offset())


def _version(t: torch.Tensor) -> int:
    """``t._version``; 0 for an inference tensor, which has no version counter: outside
    inference mode (the counter runs the forward outside it) it cannot be written in place."""
    try:
        return t._version
    except RuntimeError:
        return 0


def _none() -> None:
    return None


def _ref(x):
    """A weak reference to ``x``, or a callable returning None for None."""
    return _none if x is None else weakref.ref(x)


def _is_same(ref, x) -> bool:
    """``ref`` (from :func:`_ref`) was taken of ``x``: both None, or ``x`` itself (a dead
    reference also returns None: it matches nothing)."""
    return x is None if ref is _none else (x is not None and ref() is x)


def _ptr(x: torch.Tensor) -> int:
    try:
        return x.untyped_storage().data_ptr()
    except (RuntimeError, AttributeError, NotImplementedError):
        return -1


# ---------------------------------------------------------------------------------------------
# Per-model state kept between calls


class _Current:
    """The counter counting a model's call (None between calls)."""

    __slots__ = ("counter",)

    def __init__(self):
        self.counter = None

    def check_thread(self, model: nn.Module) -> None:
        """Refuse to count ``model`` while a counter of another thread counts it."""
        counter = self.counter
        if counter is not None and counter._thread != threading.get_ident():
            raise RuntimeError(
                f"{type(model).__name__} is being counted in another thread: count one model "
                "in one thread at a time (profile a copy.deepcopy of it instead)")


def _wrapper(m: nn.Module, call, name: str, role, current: _Current, inner=None):
    """The forward a counter installs on ``m``: it calls ``call`` (the module's forward)
    between the handlers of the counter in ``current`` (a scope only: under ``name`` on its
    stack), or alone when no counter counts (a kept wrapper that another thread's counter
    left installed). ``inner``: the instance forward it replaces, if any."""
    if role is None:
        def forward(*args, **kwargs):
            counter = current.counter
            if counter is None:
                return call(*args, **kwargs)
            stack = counter._stack
            stack.append(name)
            try:
                return call(*args, **kwargs)
            finally:
                stack.pop()
    else:
        def forward(*args, **kwargs):
            counter = current.counter
            if counter is None:
                return call(*args, **kwargs)
            counter._pre_hook(m, args)
            try:
                out = call(*args, **kwargs)
            except BaseException:
                counter._post_hook(m, args, None)
                raise
            counter._post_hook(m, args, out)
            return out

    forward._dta_counter_wraps = inner
    return forward


class _ModelState:
    """What one model's calls share: its module table (rebuilt when the module tree
    changes) and the weight-dependent constants of its layers."""

    def __init__(self):
        # the module tree as last seen: the model's class and children, then (module, class,
        # children) of every submodule (see unchanged); None before the first call
        self.tree: tuple | None = None
        self.names: dict[int, str] = {}
        self.modules: dict[str, nn.Module] = {}  # submodules by name
        self.root = ""  # the model's own layer name
        self.neuron_ids: set[int] = set()
        self.leaky: dict[int, bool] = {}
        self.module_types: dict[str, str] = {}
        self.fast: dict[int, tuple] = {}  # id(module) -> fast-path kind and static arguments
        self.roles: dict[int, object] = {}
        self.derived: dict = {}  # report-side structures of this module tree (components)
        self.work: dict = {}  # (thread, dtype[, shape]) -> CPU work tensor [view], kept
        self.param_key: tuple | None = None  # (id, numel) of every parameter, in order
        self.own_params: dict[str, int] = {}  # layer -> parameter elements it owns
        self.weights: dict = {}  # weight-dependent constants (fan-outs), see _weight_entry
        self.plans: dict = {}  # id(module) -> plan of a leaf layer counted from hooks
        # id(submodule) -> (the forward a counter installs on it, see OpCounter._install, the
        # class's forward it calls), made once per module tree (and class forward); they call
        # the counter in ``current`` (set while one counts)
        self.wrappers: dict = {}
        self.current = _Current()

    def refresh(self, model: nn.Module) -> None:
        if self.tree is not None and self.unchanged(model):
            return
        named = list(model.named_modules())
        # children by name and id: identity, never a module's own __eq__ (the modules are
        # held by this table, so their ids are not reused while it is kept)
        self.tree = ((type(model), tuple(model._modules), tuple(map(id, model._modules.values()))),
                     tuple((m, type(m), tuple(m._modules), tuple(map(id, m._modules.values())))
                           for _, m in named if m is not model))
        self.names = {id(m): n or type(m).__name__ for n, m in named}
        # the submodules by name; not the model itself (this state is a value of a weak
        # dictionary keyed by the model: a reference to it would keep it alive)
        self.modules = {n: m for n, m in named if m is not model}
        self.root = next((n or type(m).__name__ for n, m in named if m is model), "")
        neurons = [m for _, m in named if is_neuron(m)]
        self.neuron_ids = {id(m) for m in neurons}
        self.leaky = {id(m): hasattr(m, "tau") for m in neurons}
        self.module_types = {n or type(m).__name__: type(m).__name__ for n, m in named}
        # (kind, spatial dims, step-mode wrapper) of layers whose class can be counted from
        # hooks (whether the instance can is checked at each call)
        table = _fast_types()
        self.fast = {id(m): table[type(m)] for _, m in named if type(m) in table}
        # what the hooks do per module: nothing (None), a neuron, or a leaf layer's spec
        self.roles = {**self.fast, **dict.fromkeys(self.neuron_ids, _NEURON)}
        self.derived = {}
        self.plans = {}
        self.wrappers = {}
        self.param_key = None
        self.own_params = {}
        # what spikingjelly's reset_net resets: every module with a callable reset()
        self.resettable = tuple(m for _, m in named if callable(getattr(m, "reset", None)))

    def unchanged(self, model: nn.Module) -> bool:
        """Every module of the tree has the class and the children (names and modules) it had
        when the table was built: the same ``(name, module, class)`` for every module of
        ``named_modules`` (a module added, removed or replaced anywhere changes its parent's
        children)."""
        root, rest = self.tree
        d = model._modules
        if type(model) is not root[0] or tuple(d) != root[1] or \
                tuple(map(id, d.values())) != root[2]:
            return False
        for m, cls, names, ids in rest:
            if type(m) is not cls:
                return False
            d = m._modules
            if d:
                if tuple(d) != names or tuple(map(id, d.values())) != ids:
                    return False
            elif names:
                return False
        return True


_STATES: "weakref.WeakKeyDictionary[nn.Module, _ModelState]" = weakref.WeakKeyDictionary()


def forget(model: nn.Module) -> None:
    """Drop what the counter keeps for ``model`` between calls: module table, fan-outs, plans,
    count structures, energy coefficients (the next call counts as on a model never seen).

    Needed only after the model's weights were written around their version counter,
    through ``.data`` or a numpy view: the caches cannot see such a write and would count
    with the old weights' zeros. Writes under ``torch.no_grad()``, ``load_state_dict``,
    optimizer steps and new parameters are seen."""
    _STATES.pop(model, None)


def model_state(model: nn.Module) -> _ModelState:
    """The state kept for ``model`` between calls (refreshed if its module tree changed)."""
    state = _STATES.get(model)
    if state is None:
        state = _STATES[model] = _ModelState()
    state.refresh(model)
    return state


# ---------------------------------------------------------------------------------------------
# Leaf layers counted from module hooks


def _sj_types(name: str) -> tuple:
    from spikingjelly.activation_based import layer

    return tuple(getattr(layer, f"{name}{d}") for d in ("1d", "2d", "3d")
                 if hasattr(layer, f"{name}{d}"))


_FAST_TYPES: dict | None = None


def _fast_types() -> dict:
    """Module classes whose forward is exactly one counted ATen operator (exact classes:
    a subclass may override ``forward``)."""
    global _FAST_TYPES
    if _FAST_TYPES is None:
        from spikingjelly.activation_based import layer

        table = {}
        for d, cls in enumerate((nn.Conv1d, nn.Conv2d, nn.Conv3d), start=1):
            table[cls] = ("conv", d, False)
        for d, cls in enumerate((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), start=1):
            table[cls] = ("bn", d, False)
        for d, cls in enumerate((nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d), start=1):
            table[cls] = ("maxpool", d, False)
        for cls in _sj_types("MaxPool"):
            table[cls] = ("maxpool", int(cls.__name__[-2]), True)
        for cls in _sj_types("Conv"):
            table[cls] = ("conv", int(cls.__name__[-2]), True)
        for cls in _sj_types("BatchNorm"):
            table[cls] = ("bn", int(cls.__name__[-2]), True)
        table[nn.Linear] = ("linear", 0, False)
        if hasattr(layer, "Linear"):
            table[layer.Linear] = ("linear", 0, False)
        _FAST_TYPES = table
    return _FAST_TYPES



#: (kind, class, step mode, input rank, dtype, device type, bias, contiguous, grad, training)
#: -> the ATen operator the layer runs (``None``: not one counted operator, keep the
#: operator-level path). Learned per process from the first call of each configuration.
_RECIPES: dict[tuple, str | None] = {}
_WORK_BYTES = 64 << 20  # largest work tensor kept with a model
_WORK_MIN = 128 << 10  # smaller temporaries come from the heap: no work tensor
_NEURON = object()  # role of a neuron module
#: leaf layers whose plan records a synaptic op from the input measured in the pre-hook
_SYNAPTIC_PLANS = ("conv", "linear")
# a synaptic record whose ops per group (and nonzeros: _DEFER_NNZ) finalize computes from
# its raw active counts and the fan-out on the host
_DEFER, _DEFER_NNZ = object(), object()

# The dispatch-mode stack, through torch's C functions when present (what torch's Python
# wrappers call for a mode without a dispatch key, at a quarter of the cost).
if all(hasattr(torch._C, n) for n in ("_pop_torch_dispatch_stack", "_push_on_torch_dispatch_stack",
                                       "_len_torch_dispatch_stack", "_get_dispatch_stack_at")):
    def _top_mode():
        n = torch._C._len_torch_dispatch_stack()
        return torch._C._get_dispatch_stack_at(n - 1) if n else None

    def _pop_mode():
        return torch._C._pop_torch_dispatch_stack(None)

    _push_mode = torch._C._push_on_torch_dispatch_stack
else:  # pragma: no cover - older torch
    _top_mode = python_dispatch._get_current_dispatch_mode
    _pop_mode = python_dispatch._pop_mode
    _push_mode = python_dispatch._push_mode
_ZEROS = {1: (0,), 2: (0, 0), 3: (0, 0, 0)}

# The torch-function-mode stack: the counter's front (_Front) sits there while the model's
# own code runs; None where torch lacks the C functions (the dispatch mode is used alone).
if all(hasattr(torch._C, n) for n in ("_pop_torch_function_stack", "_push_on_torch_function_stack",
                                       "_len_torch_function_stack", "_get_function_stack_at")):
    def _top_front():
        n = torch._C._len_torch_function_stack()
        return torch._C._get_function_stack_at(n - 1) if n else None

    _pop_front = torch._C._pop_torch_function_stack
    _push_front = torch._C._push_on_torch_function_stack
else:  # pragma: no cover - older torch
    _top_front = _pop_front = _push_front = None


# The rule each ATen operator is counted by, looked up once per operator overload (a set
# membership test of an overload packet hashes it in Python; an overload hashes in C).
(_K_FREE, _K_CONV, _K_MATMUL, _K_BN, _K_ADD, _K_MUL, _K_DIV, _K_OTHER, _K_ACTIVATION, _K_SUM,
 _K_MEAN, _K_MAX_REDUCE, _K_AVG_POOL, _K_MAX_POOL, _K_UNSUPPORTED) = range(15)
_KIND_OF: dict = {}  # OpOverload -> (rule code, packet name, re-views its input only)


def _classify(func) -> tuple:
    packet = func.overloadpacket
    for code, ops in ((_K_FREE, rules.FREE_OPS), (_K_CONV, rules.CONV_OPS),
                      (_K_MATMUL, rules.MATMUL_OPS), (_K_BN, rules.BATCH_NORM_OPS),
                      (_K_ADD, rules.ADD_OPS), (_K_MUL, rules.MUL_OPS), (_K_DIV, rules.DIV_OPS),
                      (_K_ACTIVATION, rules.ACTIVATION_OPS & rules.OTHER_OPS),
                      (_K_OTHER, rules.OTHER_OPS), (_K_SUM, rules.SUM_OPS),
                      (_K_MEAN, rules.MEAN_OPS), (_K_MAX_REDUCE, rules.MAX_REDUCE_OPS),
                      (_K_AVG_POOL, rules.AVG_POOL_OPS), (_K_MAX_POOL, rules.MAX_POOL_OPS)):
        if packet in ops:
            break
    else:
        code = _K_UNSUPPORTED
    return code, packet.__name__, packet in rules.VIEW_OPS


# ---------------------------------------------------------------------------------------------
# The front: torch functions the model's own code calls, seen before the dispatcher

# (Functions that run exactly one ATen operator, with the arguments they were given, are
# counted here by that operator's rule; every other function runs under the dispatch mode
# and is counted there, operator by operator. Why a function mode: module docstring.)
_FRONT: dict | None = None  # torch function -> (shape, ATen overload, its rule) or None
_META = object()  # reads a tensor's metadata: no operator
_VIEW = object()  # re-views its input, or copies it (never writes to it): not counted
_BINARY = object()  # f(tensor, tensor or number), no keyword arguments
_UNARY = object()  # f(tensor)
_MEAN = object()  # Tensor.mean(dim) / mean(dim=...)


def _front_table() -> dict:
    global _FRONT
    if _FRONT is None:
        import torch.nn.functional as F

        t = torch.Tensor
        table: dict = {}
        for f in (t.dim, t.size, t.numel, t.stride, t.is_contiguous, t.is_floating_point,
                  t.data_ptr, t.element_size, t.storage_offset, t.shape.__get__,
                  t.dtype.__get__, t.device.__get__, t.ndim.__get__, t.is_cuda.__get__,
                  t.requires_grad.__get__, t.is_sparse.__get__, t.layout.__get__):
            table[f] = (_META, None, None)
        for f in (t.transpose, torch.transpose, t.unsqueeze, torch.unsqueeze, t.permute,
                  torch.permute, t.view, t.flatten, torch.flatten, t.unflatten, t.reshape,
                  torch.reshape):
            table[f] = (_VIEW, None, None)
        for fs, op in (((t.__add__, t.__radd__, t.add, torch.add), aten.add.Tensor),
                       ((t.__iadd__, t.add_), aten.add_.Tensor),
                       ((t.__mul__, t.__rmul__, t.mul, torch.mul), aten.mul.Tensor)):
            for f in fs:
                table[f] = (_BINARY, op, _classify(op))
        for fs, op in (((t.sigmoid, torch.sigmoid), aten.sigmoid.default),
                       ((F.gelu,), aten.gelu.default), ((F.relu,), aten.relu.default)):
            for f in fs:
                table[f] = (_UNARY, op, _classify(op))
        table[t.mean] = (_MEAN, aten.mean.dim, _classify(aten.mean.dim))
        _FRONT = table
    return _FRONT


def _basic_index(index) -> bool:
    """An index ``Tensor.__getitem__`` serves with views only (ints, slices, None, ...)."""
    if type(index) is tuple:
        return all(i is None or i is Ellipsis or type(i) in (int, slice) for i in index)
    return index is None or index is Ellipsis or type(index) in (int, slice)


class _Front(TorchFunctionMode):
    """The counter's torch-function mode: on while the model's own code runs (stepped out,
    like the dispatch mode before it, around neurons and the leaf layers counted from
    hooks). A function in :func:`_front_table` whose call maps onto one ATen operator with
    the same arguments is counted by that operator's rule here; anything else runs under
    the counter's dispatch mode, pushed for the call, and is counted operator by operator,
    as before. Both give the same records (``tests/test_measure_counts.py``)."""

    def __init__(self, counter: "OpCounter"):
        super().__init__()
        self.counter = counter
        self.table = _front_table()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        entry = self.table.get(func)
        counter = self.counter
        if entry is not None:
            shape = entry[0]
            if shape is _META or counter._opaque:
                return func(*args, **kwargs) if kwargs else func(*args)
            if shape is _VIEW:
                if not kwargs:
                    return func(*args)
            elif shape is _BINARY:
                if (not kwargs and len(args) == 2 and isinstance(args[0], torch.Tensor)
                        and isinstance(args[1], (torch.Tensor, int, float, bool))):
                    return counter._front_count(func, entry, args, args, None)
            elif shape is _UNARY:
                if len(args) == 1 and isinstance(args[0], torch.Tensor) and (
                        not kwargs or kwargs in ({"approximate": "none"}, {"inplace": False})):
                    return counter._front_count(func, entry, args, args, kwargs)
            else:  # _MEAN: over the given dims, no dtype, no keepdim
                dim = kwargs.get("dim") if kwargs and len(kwargs) == 1 else (
                    args[1] if len(args) == 2 and not kwargs else None)
                x = args[0]
                if (dim is not None and len(args) <= 2 and type(dim) in (int, tuple, list)
                        and isinstance(x, torch.Tensor) and x.is_floating_point()):
                    dims = [dim] if type(dim) is int else list(dim)
                    return counter._front_count(func, entry, (x, dims), args, kwargs)
        elif func is torch.Tensor.__getitem__ and not kwargs and _basic_index(args[1]):
            return func(*args)
        elif counter._opaque:
            return func(*args, **kwargs) if kwargs else func(*args)
        # the operator-level path
        _push_mode(counter)
        try:
            return func(*args, **kwargs) if kwargs else func(*args)
        finally:
            _pop_mode()


# ---------------------------------------------------------------------------------------------
# The counter


class OpCounter(TorchDispatchMode):
    """Count one forward of ``model`` on a ``[T, B, ...]`` input.

    Use :func:`dta.measure.profile` unless you need the raw engine::

        with OpCounter(model, T=T, B=B) as counter:
            model(x)
        result = counter.finalize()

    The forward wrappers are removed and state is reset on exit even when the forward
    raises.
    ``fold_bn=True`` (the default) treats a BatchNorm whose input is the
    output of a convolution / linear layer as folded into it at inference
    (zero cost); unfolded BatchNorm costs one MAC per element.
    ``fanout_cache``: a dict for the weight-dependent constants (default: the
    one kept with the model between calls).
    """

    def __init__(self, model: nn.Module, *, T: int, B: int, fold_bn: bool = True,
                 fanout_cache: dict | None = None, state: _ModelState | None = None):
        super().__init__()
        self.model = model
        self.T, self.B = int(T), int(B)
        self.fold_bn = fold_bn
        self.state = state if state is not None else model_state(model)
        self.names = self.state.names
        self._roles = self.state.roles
        self.neuron_ids = self.state.neuron_ids
        self._leaky = self.state.leaky
        self._fanout = self.state.weights if fanout_cache is None else fanout_cache
        self._plans = self.state.plans
        self._reset()

    # -- state -----------------------------------------------------------------------------------
    def _reset(self) -> None:
        self._stack: list[str] = []
        self._opaque = 0  # depth inside neuron modules and leaf layers counted from hooks
        self._suspended = False  # this mode is popped while a neuron or such a layer runs
        self._front: _Front | None = None  # the torch-function mode of this call (__enter__)
        self._frames: list = []  # per open fast/learning module call
        self._synaptic_storage: dict[int, bool] = {}  # output storage -> the op had a bias
        # storage pointer -> (weak reference to the storage, SPIKE or ACT): operands already
        # classified in this pass. A dead reference means the address was reused: unclassified.
        self._classes: dict[int, tuple] = {}
        # storage pointer -> (version, dtype) of a neuron output that is {0, 1} by
        # construction (emits_binary_spikes) and fills its storage
        self._binary_out: dict[int, tuple] = {}
        self._param_ptrs: dict[int, torch.Tensor] = {}
        self._thread = threading.get_ident()
        self._seq = 0
        # events, in call order (seq): synaptic, element-wise and neuron records
        self._syn: list[tuple] = []
        self._syn_t: list[tuple] = []  # (per-group ops tensor, nnz tensor or None); _DEFER*:
        # ((raw active counts, host fan-out), _DEFER or _DEFER_NNZ)
        self._deferred = 0  # records left to finalize
        self._el: list[tuple] = []
        self._neu: list[tuple] = []
        self._neu_t: list = []  # spike counts per step (or see _resolve); None while pending
        # The last neuron output whose spikes are not counted yet: (storage pointer, tensor,
        # index into _neu_t, steps). A convolution that reads it counts them for free.
        self._pending: tuple | None = None
        # the last convolution input measured: (storage, version, layout, groups) -> counts
        self._last_input: tuple | None = None
        self.unsupported: Counter = Counter()
        self.folded: list[str] = []
        self._installed: list = []  # (module, its own instance forward or None, our wrapper)
        self._emits: dict[int, bool] = {}  # id(neuron) -> emits_binary_spikes, this call
        self._own_forward: set[int] = set()  # modules with an instance forward of their own
        self._outside: list = []  # guards that leave inference mode for the call (__enter__)

    @property
    def events(self) -> int:
        """Number of recorded events (counted ops and neuron calls)."""
        return self._seq

    def _work(self, like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
        """A CPU work tensor shaped like ``like``, reused between calls on this model (up to
        ``_WORK_BYTES``): large temporaries would otherwise be mapped and faulted in anew,
        at a cost that depends on the allocator's history. None on other devices."""
        if like.device.type != "cpu":
            return None
        shape = like.shape
        work = self.state.work
        view = work.get((self._thread, dtype, shape))
        if view is not None:
            return view
        n = like.numel()
        if n * dtype.itemsize > _WORK_BYTES:
            return torch.empty(shape, dtype=dtype)
        buf = work.get((self._thread, dtype))
        if buf is None or buf.numel() < n:
            for key in [k for k in work if k[:2] == (self._thread, dtype)]:
                del work[key]  # views of the old buffer
            buf = work[self._thread, dtype] = torch.empty(max(n, 1 << 16), dtype=dtype)
        view = work[self._thread, dtype, shape] = buf[:n].view(shape)
        return view

    def _mark(self, x: torch.Tensor, cls: int) -> None:
        try:
            storage = x.untyped_storage()
            self._classes[storage.data_ptr()] = (weakref.ref(storage), cls)
        except (RuntimeError, AttributeError, NotImplementedError, TypeError):
            pass

    def _known_binary(self, x: torch.Tensor, ptr: int) -> bool:
        """``x`` lies in the output of a neuron that emits {0, 1} by construction and nothing
        wrote to it since (same version counter, same dtype): no scan needed. Call only for
        a storage :meth:`_class_of` finds live and SPIKE (the address is not reused)."""
        return self._binary_out.get(ptr) == (_version(x), x.dtype)

    def _class_of(self, x: torch.Tensor, ptr: int | None = None) -> int:
        """SPIKE for bool tensors and storages known to hold spikes, ACT for activation
        outputs, else REAL. A lookup, never a synchronisation."""
        if x.dtype == torch.bool:
            return SPIKE
        entry = self._classes.get(_ptr(x) if ptr is None else ptr)
        if entry is not None and entry[0]() is not None:
            return entry[1]
        return REAL

    # -- module scopes ---------------------------------------------------------------------------
    def _step_out(self) -> None:
        # Step out of the mode that intercepts the model's code (the front, else the dispatch
        # mode) while an opaque module runs, so its internal ops pay no interception cost (a
        # neuron's are its update; a leaf layer's are counted from hooks).
        if self._opaque == 1:
            front = self._front
            if front is not None:
                if _top_front() is front:
                    _pop_front()
                    self._suspended = True
            elif _top_mode() is self:
                _pop_mode()
                self._suspended = True

    def _pre_hook(self, module, args):
        """A neuron or leaf layer starts (called by its wrapper, see :meth:`_install`)."""
        key = id(module)
        self._stack.append(self.names[key])
        role = self._roles[key]
        if role is _NEURON:
            self._opaque += 1
            self._step_out()
            if self._pending is not None:
                self._settle()
        elif not self._opaque and args and isinstance(args[0], torch.Tensor):
            front = self._front
            if front is not None and _top_front() is front:
                # the handlers read tensor metadata: out of the front while they run, and
                # for the layer too if it is counted from the hooks
                _pop_front()
                opaque = self._opaque
                try:
                    self._layer_pre(module, key, role, args[0])
                finally:
                    if self._opaque > opaque:
                        self._suspended = True
                    else:
                        _push_front(front)
            else:
                self._layer_pre(module, key, role, args[0])

    def _layer_pre(self, module, key: int, role, x: torch.Tensor) -> None:
        """A leaf layer starts (see :meth:`_pre_hook`): from its plan, else
        :meth:`_enter_layer`."""
        plan = self._plans.get(key)
        if plan is not None and self._plan_fits(plan, key, module.__dict__, x):
            self._opaque += 1
            self._step_out()
            if plan[0] in _SYNAPTIC_PLANS:
                pre = self._plan_conv_pre(plan, x)
            else:
                if self._pending is not None:
                    self._settle()
                pre = x
            self._frames.append((key, "plan", plan, pre))
            return
        self._enter_layer(module, key, role, x)

    def _enter_layer(self, module, key: int, spec: tuple, x: torch.Tensor) -> None:
        """A leaf layer starts: count it from its hooks if its configuration is known to run
        one counted operator, learn the configuration if it is new."""
        kind, d, wrapper = spec
        state = module.__dict__
        # An instance that replaced forward or has hooks of its own keeps the operator path
        # (a pre-hook may change the input or compute the weight, and ops of its own).
        if key in self._own_forward or state["_forward_pre_hooks"] or state["_forward_hooks"]:
            return
        if kind == "conv":
            if state["padding_mode"] != "zeros" or isinstance(state["padding"], str):
                return
        elif kind == "maxpool":
            if state["return_indices"]:
                return
        mode = (state.get("_step_mode") or getattr(module, "step_mode", "s")) if wrapper else "s"
        rank = x.dim()
        training = state["training"]
        if kind == "linear":
            if rank < 2 or x.shape[-1] != state["in_features"]:
                return
        elif rank != (d + 3 if mode == "m" else d + 2):
            return
        elif kind == "bn" and (training or state["_buffers"].get("running_mean") is None):
            return
        recipe = (kind, type(module), mode, rank, x.dtype, x.device.type,
                  state["_parameters"].get("bias") is not None, x.is_contiguous(),
                  torch.is_grad_enabled(), training)
        name = _RECIPES.get(recipe, "")
        if name:  # known single operator: count from the hooks
            self._opaque += 1
            self._step_out()
            pre = None
            if kind == "conv":  # read the input now, while it is still in the cache
                if torch.is_grad_enabled():  # (counting builds no autograd graph)
                    with torch.no_grad():
                        pre = self._read_conv_input(module, state, x, mode, d)
                else:
                    pre = self._read_conv_input(module, state, x, mode, d)
            elif self._pending is not None:
                self._settle()
            self._frames.append((key, "fast", spec, name, mode, pre))
        elif name == "":  # first call of this configuration: learn it
            self._frames.append((key, "learn", spec, recipe, self._seq,
                                 sum(self.unsupported.values())))

    # Plans. After a leaf layer was counted from its hooks, what that count took from its
    # configuration (the operator's name, the fan-out, the static fields of its record) is
    # kept per module as a plan, with what it was derived from: the input's shape, strides
    # and dtype, the module's mode and attributes, its parameters (and the weight's version
    # and data pointer, which the fan-out depends on). A later call that matches all of
    # these is counted from the plan: the same records, without rebuilding the
    # configuration (T and B, which split a convolution's rows, are read at each call); any
    # difference goes through the full path again (which replaces the plan). Plans are
    # made on the CPU under no_grad only (what profile() runs).

    def _plan_fits(self, plan, key: int, state: dict, x: torch.Tensor) -> bool:
        if (torch.is_grad_enabled() or not x.is_cpu or key in self._own_forward
                or state["_forward_pre_hooks"] or state["_forward_hooks"]):
            return False
        params = state["_parameters"]
        w, bias = params.get("weight"), params.get("bias")
        if not (plan[1] == (x.shape, x.stride(), x.dtype, state["training"],
                            state.get("_step_mode"))
                and _is_same(plan[2][0], w) and _is_same(plan[2][1], bias)):
            return False
        return plan[3] == _plan_attrs(plan[0], state, w)

    def _make_plan(self, frame, module, scope: str, x: torch.Tensor) -> None:
        """Keep the plan of a leaf layer just counted from its hooks."""
        _, _, spec, op_name, mode, pre = frame
        kind = spec[0]
        if not x.is_cpu or torch.is_grad_enabled():
            return
        state = module.__dict__
        params = state["_parameters"]
        w, bias = params.get("weight"), params.get("bias")
        head = (kind, (x.shape, x.stride(), x.dtype, state["training"], state.get("_step_mode")),
                (_ref(w), _ref(bias)), _plan_attrs(kind, state, w), scope, op_name)
        if kind == "linear":  # the matrix product's input as _matmul read it, its fan-out
            x_in = x if x.dim() == 2 else x.flatten(0, -2)
            entry = self._fanout.get(_matmul_key(w, w.t()))
            if entry is None or entry[3][0] or entry[3][2].device.type != "cpu":
                return  # (a {0, 1} weight makes every product a select: the full path)
            fan_np, xs, lead, per_channel = entry[3][2].numpy(), tuple(x_in.shape), 1, True
            flatten = None if x.dim() == 2 else -2
            kernel_words = 0
        elif kind == "conv":
            x_in, _, _, _, _, _, entry, xs = pre
            fan, spatial, fanout, fanout_ops, kernel_words, fan_np, spatial_np = entry
            per_channel = spatial is None
            if not per_channel:
                fan_np = spatial_np
            # a multi-step input the operator reads in place, else through a flattened copy
            flatten = 1 if mode == "m" and not x.is_contiguous() else None
            lead = 2 if mode == "m" and flatten is None else 1
        else:  # counted by _count_layer, without rebuilding the configuration
            self._plans[id(module)] = (*head, (None, None, spec, op_name, mode, None))
            return
        if fan_np is None:
            return
        e = self._syn[-1]  # the record this call made: its static fields
        self._plans[id(module)] = (
            *head, flatten, lead, xs, x_in.stride()[lead - 1:], per_channel,
            x.numel() * x.element_size() >= _WORK_MIN, e[4:6], e[7:16],
            kernel_words * xs[0], fan_np, e[11] != 0)

    def _plan_conv_pre(self, plan, x):
        (_, _, _, _, scope, op_name, flatten, lead, xs, strides, per_channel, big, *_) = plan
        if flatten is not None:
            x = x.flatten(0, flatten)
        return (x, *self._measure(x, xs, lead, strides, per_channel, big))

    def _measure(self, x: torch.Tensor, xs: tuple, lead: int, strides: tuple,
                 per_channel: bool, big: bool) -> tuple:
        """(storage pointer, known to hold spikes, binary, groups, active counts) of a
        convolution's input ``x``, read as ``xs`` rows (``lead``: the dimensions that make
        them; ``strides``: theirs and the rest's), reused when the previous convolution
        read the same (a downsample branch). Counts a pending neuron output's spikes first
        unless ``x`` is that output (the scan counts them)."""
        ptr = _ptr(x)
        if self._pending is not None and ptr != self._pending[0]:
            self._settle()
        spikes = self._class_of(x, ptr) == SPIKE
        groups = self._groups(xs[0])  # (this call's T and B)
        seen = (ptr, _version(x), xs, strides, x.storage_offset(), groups, per_channel)
        last = self._last_input
        if last is not None and last[0] == seen:
            return last[1]
        # a binary neuron's output, unchanged since (same version): no test needed
        binary = spikes and self._known_binary(x, ptr)
        work = None
        if not binary and not spikes and x.dtype == torch.float32:
            work = self._work(x, torch.float32)
        if work is not None:
            # a real-valued input (expected not {0, 1}): its nonzero indicator, which it
            # equals exactly when it holds only 0 and 1 (an elementwise comparison: -0 equals
            # 0, NaN nothing); the indicator is counted
            mask = torch.ne(x, 0, out=work)
            binary = torch.equal(x, mask)
            active = rules.active_counts(x if binary else mask, groups, True, None,
                                         per_channel, lead, raw=True)
        else:
            if not binary:
                binary = rules.is_binary(x, head=not spikes,
                                         work=self._work(x, x.dtype) if big else None)
            active = rules.active_counts(
                x, groups, binary, self._work(x, torch.float32) if big and not binary else None,
                per_channel, lead, raw=True)
        # keeping the tensor keeps its storage: the address cannot be reused
        measured = (ptr, spikes, binary, groups, active)
        self._last_input = (seen, measured, x)
        return measured

    def _plan_conv_post(self, plan, pre, out):
        (_, _, _, _, scope, op_name, _, _, _, _, _, _, head, tail, kernel_words, fan_np,
         has_bias) = plan
        x, _, spikes, binary, groups, active = pre
        in_class = SPIKE if spikes else self._input_class(x, binary)
        self._deferred += 1
        self._append_synaptic(
            (self._seq, scope, op_name, binary, *head, in_class, *tail,
             0 if binary else kernel_words),
            ((active, fan_np), _DEFER_NNZ if binary else _DEFER),
            x, binary, groups, ("syn", len(self._syn_t)), out, has_bias)

    def _append_synaptic(self, record: tuple, per_step: tuple, x, binary: bool, groups: int,
                         spikes_of, out, has_bias: bool) -> None:
        """Record a synaptic op (its static fields and its per-group counts); a pending
        neuron output it read has its spikes counted by ``spikes_of`` (see :meth:`_resolve`)."""
        if self._pending is not None:
            self._resolve(x, binary, groups, spikes_of)
        self._syn.append(record)
        self._syn_t.append(per_step)
        self._seq += 1
        self._synaptic_storage[_ptr(out)] = has_bias

    def _read_conv_input(self, module, state: dict, x: torch.Tensor, mode: str, d: int) -> tuple:
        """The pre-hook's measurement of a convolution's input (see :meth:`_conv`)."""
        # the operator reads [T*B, ...] for a multi-step input: a contiguous one is
        # read in place (its shape, no view), another through the same flatten (it
        # may copy: the operator then reads the copy)
        in_place = mode == "m" and x.is_contiguous()
        if mode == "m" and not in_place:
            x = x.flatten(0, 1)
        shape = x.shape
        if in_place:
            lead, xs = 2, (shape[0] * shape[1], *shape[2:])
        else:
            lead, xs = 1, tuple(shape)
        entry = self._conv_entry(xs, state["_parameters"]["weight"],
                                 module.stride, module.padding, module.dilation,
                                 False, _ZEROS[d], module.groups)
        # a weight without zeros feeds every input channel alike: count the active
        # inputs per spatial position only (channels summed, a smaller fan-out)
        per_channel = entry[1] is None
        measured = self._measure(x, xs, lead, x.stride()[lead - 1:], per_channel,
                                 x.numel() * x.element_size() >= _WORK_MIN)
        return (x, *measured, entry, xs)

    def _post_hook(self, module, args, output):
        """A neuron or leaf layer ended (called by its wrapper, also when it raised)."""
        key = id(module)
        name = self._stack.pop()
        if self._roles[key] is _NEURON:
            self._opaque = max(0, self._opaque - 1)
            if self._opaque == 0:
                if isinstance(output, torch.Tensor) and args:
                    self._record_neuron(module, name, output)
                self._resume()
        elif self._frames and self._frames[-1][0] == key:
            frame = self._frames.pop()
            if frame[1] == "plan":
                self._opaque -= 1
                try:
                    if isinstance(output, torch.Tensor):
                        plan = frame[2]
                        if plan[0] in _SYNAPTIC_PLANS:
                            self._plan_conv_post(plan, frame[3], output)
                        else:
                            self._count_layer(plan[6], module, plan[4], frame[3], output)
                finally:
                    if self._opaque == 0:
                        self._resume()
            elif frame[1] == "fast":
                self._opaque = max(0, self._opaque - 1)
                try:
                    if self._opaque == 0 and isinstance(output, torch.Tensor):
                        if torch.is_grad_enabled():
                            with torch.no_grad():
                                self._count_layer(frame, module, name, args[0], output)
                        else:
                            self._count_layer(frame, module, name, args[0], output)
                            self._make_plan(frame, module, name, args[0])
                finally:
                    if self._opaque == 0:
                        self._resume()
            else:
                self._learn(frame, module, args[0], output)

    def _record_neuron(self, module, name: str, out: torch.Tensor) -> None:
        numel = out.numel()
        if numel == 0:
            return
        # Multi-step call on [T, ...]: one spike count per step; single-step call: one.
        steps = self.T if (out.dim() >= 2 and out.shape[0] == self.T and numel % self.T == 0
                           and out.shape[1] == self.B) else 1
        # State words of one step: every tensor memory (v for LIF; more for adaptive neurons),
        # one per neuron when the memories are not tensors yet.
        memories = getattr(module, "_memories", None) or {}
        state = sum(v.numel() for v in memories.values() if isinstance(v, torch.Tensor))
        self._neu.append((self._seq, name, numel, steps, state or numel // steps,
                          self._leaky.get(id(module), False)))
        self._neu_t.append(None)
        try:
            storage = out.untyped_storage()
            ptr = storage.data_ptr()
            self._classes[ptr] = (weakref.ref(storage), SPIKE)
            binary = self._emits.get(id(module))
            if binary is None:  # looked up once per call (instance state, see _install)
                binary = self._emits[id(module)] = emits_binary_spikes(module)
            if (binary and out.is_floating_point()
                    and storage.nbytes() == numel * out.element_size()):
                self._binary_out[ptr] = (_version(out), out.dtype)
            else:
                self._binary_out.pop(ptr, None)
        except (RuntimeError, AttributeError, NotImplementedError, TypeError):
            ptr = -1
        self._pending = (ptr, out, len(self._neu_t) - 1, steps)
        self._seq += 1

    def _settle(self) -> None:
        """Count the pending neuron output's spikes (before anything can write to it)."""
        ptr, out, index, steps = self._pending
        self._pending = None
        self._opaque += 1  # our own ops are not counted
        try:
            with torch.no_grad():
                # Spikes = sum of |s|: the count for {0, 1} spikes, unit events for integer
                # (multi-spike) neurons, both signs for ternary ones.
                s = out.detach().reshape(steps, -1).float()
                # (summed in float64: exact past 2**24 spikes per step) No negative spikes,
                # no |.| pass: known for a binary neuron's untouched output, else looked up.
                known = self._known_binary(out, ptr)
                if known and s.shape[1] < 1 << 24:  # exact in float32: no float64 copy
                    self._neu_t[index] = s.sum(1)
                elif known or (s.numel() and s.amin().item() >= 0):
                    self._neu_t[index] = s.sum(1, dtype=torch.float64)
                else:
                    self._neu_t[index] = s.abs().sum(1, dtype=torch.float64)
        finally:
            self._opaque -= 1

    def _resolve(self, x: torch.Tensor, binary: bool, groups: int, nnz) -> None:
        """A synaptic op read ``x``: if it is the pending neuron output, element for element,
        and holds {0, 1} spikes, its nonzeros per step are the spikes per step (``nnz``: a
        tensor, or ``("syn", i)``: those of synaptic record i, computed at finalize)."""
        ptr, out, index, steps = self._pending
        if ptr == _ptr(x):
            if (binary and groups == steps and x.numel() == out.numel()
                    and x.storage_offset() == out.storage_offset()
                    and x.is_contiguous() and out.is_contiguous()):
                self._pending = None
                self._neu_t[index] = nnz
            else:
                self._settle()

    @property
    def scope(self) -> str:
        return self._stack[-1] if self._stack else ""

    # -- leaf layers counted from hooks ----------------------------------------------------------
    @staticmethod
    def _flatten(x: torch.Tensor, kind: str, mode: str, d: int) -> torch.Tensor:
        if kind == "linear":
            return x if x.dim() == 2 else x.flatten(0, -2)
        return x.flatten(0, 1) if mode == "m" else x

    def _count_layer(self, frame: tuple, module, scope: str, x, out) -> None:
        """Count a leaf layer with the arguments its ATen operator receives (a multi-step
        wrapper's operator sees ``[T*B, ...]``: the same storage and elements)."""
        _, _, (kind, d, _), op_name, mode, pre = frame
        params = module._parameters
        if kind == "conv":
            self._conv(scope, op_name, (pre[0], params["weight"], params.get("bias"),
                                        module.stride, module.padding, module.dilation, False,
                                        _ZEROS[d], module.groups), out, pre)
        elif kind == "bn":
            self._batch_norm(scope, op_name, (x, params.get("weight"), params.get("bias")), out,
                             channels=x.shape[2] if mode == "m" else x.shape[1])
        elif kind == "maxpool":
            window = rules.pool_kernel(op_name, (x, module.kernel_size), out)
            self._element(scope, op_name, {"other": out.numel() * (window - 1)}, (x,), out)
        else:
            if x.dim() != 2:
                x = x.flatten(0, -2)
            out = out.reshape(-1, out.shape[-1])
            w, bias = params["weight"], params.get("bias")
            if bias is not None:
                self._matmul(scope, op_name, aten.addmm, (bias, x, w.t()), {}, out)
            else:
                self._matmul(scope, op_name, aten.mm, (x, w.t()), {}, out)

    def _learn(self, frame, module, x, out) -> None:
        """After a layer's first call through the dispatcher: if it produced exactly one
        counted operator of the expected rule, on the tensor the hook path reconstructs,
        later calls of this configuration are counted from the hooks."""
        _, _, spec, recipe, seq0, unsupported0 = frame
        kind, d, wrapper = spec
        if not isinstance(out, torch.Tensor):  # the forward raised: learn nothing
            return
        name = None
        try:
            mode = recipe[2]
            if self._seq == seq0 + 1 and sum(self.unsupported.values()) == unsupported0:
                xa = self._flatten(x, kind, mode, d)
                if kind in ("conv", "linear") and self._syn and self._syn[-1][0] == seq0:
                    e = self._syn[-1]
                    n_out = out.numel()
                    rows = xa.shape[0]
                    ops = ("convolution", "_convolution") if kind == "conv" else (
                        ("addmm",) if module.bias is not None else ("mm",))
                    if e[2] in ops and e[4] == rows and e[7] == xa.numel() and e[12] == n_out \
                            and e[10]:
                        name = e[2]
                elif kind in ("bn", "maxpool") and self._el and self._el[-1][0] == seq0:
                    e = self._el[-1]
                    ops = rules.BATCH_NORM_OPS if kind == "bn" else rules.MAX_POOL_OPS
                    if getattr(aten, e[2], None) in ops and (
                            kind == "bn" or rules.pool_kernel(e[2], (x, module.kernel_size), out)):
                        name = e[2]
        finally:
            _RECIPES[recipe] = name

    # -- context ---------------------------------------------------------------------------------
    def __enter__(self):
        self._reset()
        self._install()
        # the counter tells an unchanged operand by its version counter, which tensors made
        # under torch.inference_mode lack: the forward runs outside inference mode (and,
        # as inference mode implies, without autograd)
        self._outside = []
        if torch.is_inference_mode_enabled():
            for guard in (torch.inference_mode(False), torch.no_grad()):
                guard.__enter__()
                self._outside.append(guard)
        try:
            out = super().__enter__()
        except BaseException:
            self._leave_guards()
            self._uninstall()
            raise
        # The model's own code runs under the front (a torch-function mode, see the module
        # docstring); the dispatch mode is pushed only for what the front does not count.
        self._front = None
        if _top_front is not None and _top_mode() is self:
            _pop_mode()
            self._front = _Front(self)
            _push_front(self._front)
        return out

    def _leave_guards(self) -> None:
        while self._outside:
            self._outside.pop().__exit__(None, None, None)

    def _install(self) -> None:
        """Give every module of the tree a forward that calls the module's forward between
        the counter's pre- and post-call handlers (:meth:`_pre_hook`, :meth:`_post_hook`), as
        an instance attribute (removed on exit); and note the parameters' storages.

        Not global module hooks: with a global hook registered, ``nn.Module.__call__`` takes
        its slow path (hook lists, a closure, exception handling) on every module call, and
        the handlers would look up each module's role on every call. An instance forward
        keeps ``__call__`` on its fast path for modules without hooks of their own, and each
        wrapper knows its module's name and role. The wrappers of the submodules are made
        once per module tree and call the counter counting now (``state.current``); the
        model's own (the state must not refer to it) and those of modules with a forward of
        their own are made per call, as are all while another counter counts the model.
        Modules outside ``named_modules`` (created during the forward, or held
        unregistered) are not wrapped: their operators count towards the module that called
        them."""
        state = self.state
        roles, names = self._roles, self.names
        own = self._own_forward = set()
        installed = self._installed = []
        ptrs = self._param_ptrs = {}
        key = []
        current = state.current
        current.check_thread(self.model)
        kept = state.wrappers if current.counter is None else None
        if kept is not None:
            current.counter = self
            mine = current
        else:  # another counter of this thread counts the model: wrappers of this call's own
            mine = _Current()
            mine.counter = self
        model = self.model
        for m in (model, *state.modules.values()):
            d = m.__dict__
            for p in d["_parameters"].values():
                if p is not None:
                    ptrs[_ptr(p)] = p
                    key.append((id(p), p.numel()))
            inner = d.get("forward")
            mid = id(m)
            if inner is None and kept is not None and m is not model:
                entry = kept.get(mid)
                method = type(m).forward
                if entry is None or entry[1] is not method:  # (a forward patched on the class)
                    entry = kept[mid] = (_wrapper(m, method.__get__(m), names[mid],
                                                  roles.get(mid), current), method)
                forward = entry[0]
            else:  # made for this call: the model's own, or over an instance forward
                if inner is not None and own_forward(m) is not None:  # (not a wrapper only)
                    own.add(mid)
                call = inner if inner is not None else type(m).forward.__get__(m)
                forward = _wrapper(m, call, names[mid], roles.get(mid), mine, inner)
            d["forward"] = forward
            installed.append((m, inner, forward))
        key = tuple(key)
        if key != state.param_key:  # parameters replaced or resized: recount
            state.param_key = key
            state.own_params = {}

    def _uninstall(self) -> None:
        for m, inner, forward in reversed(getattr(self, "_installed", ())):
            d = m.__dict__
            if d.get("forward") is forward:
                if inner is None:
                    del d["forward"]
                else:
                    d["forward"] = inner
        self._installed = []
        current = self.state.current
        if current.counter is self:
            current.counter = None

    def _resume(self) -> None:
        if self._suspended:
            if self._front is not None:
                _push_front(self._front)
            else:
                _push_mode(self)
            self._suspended = False

    def __exit__(self, exc_type, exc, tb):
        self._resume()  # a neuron that raised never ran its post-hook
        front = self._front
        if front is not None:
            if _top_front() is front:
                _pop_front()
            self._front = None
            _push_mode(self)  # (for the dispatch mode's own exit)
        if self._pending is not None:
            self._settle()
        try:
            return super().__exit__(exc_type, exc, tb)
        finally:
            self._leave_guards()
            self._uninstall()
            self._stack = []
            self._frames = []
            self._opaque = 0
            self._classes = {}
            self._last_input = None

    # -- dispatch --------------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kind = _KIND_OF.get(func)
        if kind is None:
            kind = _KIND_OF[func] = _classify(func)
        if self._pending is not None and not self._opaque:
            # Count the pending spikes before an op that could write to them, unless it only
            # re-views them or is a convolution reading them (it counts them).
            if not kind[2] and not (kind[0] == _K_CONV and args
                                    and _ptr(args[0]) == self._pending[0]):
                self._settle()
        out = func(*args, **kwargs) if kwargs else func(*args)
        if self._opaque or kind[0] == _K_FREE:
            return out
        if torch.is_grad_enabled():
            with torch.no_grad():
                self._count(func, kind, args, kwargs or {}, out)
        else:
            self._count(func, kind, args, kwargs or {}, out)
        return out

    def _front_count(self, func, entry: tuple, counted: tuple, args, kwargs):
        """Run ``func`` (called from the front) and count it as its ATen operator
        ``entry[1]`` on the arguments ``counted``, as :meth:`__torch_dispatch__` would."""
        _, op, kind = entry
        if self._pending is not None:  # (never a view or a convolution here)
            self._settle()
        out = func(*args, **kwargs) if kwargs else func(*args)
        if not isinstance(out, torch.Tensor):  # (NotImplemented: no operator ran)
            return out
        if torch.is_grad_enabled():
            with torch.no_grad():
                self._count(op, kind, counted, {}, out)
        else:
            self._count(op, kind, counted, {}, out)
        return out

    def _count(self, func, kind: tuple, args, kwargs, out) -> None:
        code, name, _ = kind
        stack = self._stack
        scope = stack[-1] if stack else ""
        if code == _K_ADD:
            self._element(scope, name, {"ac": rules.out_numel(out)}, args, out)
        elif code == _K_MUL:
            self._mul(scope, name, args, out)
        elif code == _K_OTHER:
            self._element(scope, name, {"other": rules.out_numel(out)}, args, out)
        elif code == _K_ACTIVATION:
            self._element(scope, name, {"other": rules.out_numel(out)}, args, out, out_class=ACT)
        elif code == _K_CONV:
            self._conv(scope, name, args, out)
        elif code == _K_MATMUL:
            self._matmul(scope, name, func.overloadpacket, args, kwargs, out)
        elif code == _K_BN:
            self._batch_norm(scope, name, args, out)
        elif code == _K_DIV:
            b = args[1]
            scalar = not isinstance(b, torch.Tensor) or b.numel() == 1
            self._element(scope, name, {"mac" if scalar else "other": rules.out_numel(out)},
                          args, out)
        elif code == _K_SUM or code == _K_MEAN:
            n_in, n_out = rules.reduction_inputs(args), rules.out_numel(out)
            counts = {"ac": max(n_in - n_out, 0)}
            if code == _K_MEAN:
                counts["mac"] = n_out
            self._element(scope, name, counts, args[:1], out)
        elif code == _K_MAX_REDUCE:
            n_in, n_out = rules.reduction_inputs(args), rules.out_numel(out)
            self._element(scope, name, {"other": max(n_in - n_out, 0)}, args[:1], out)
        elif code == _K_AVG_POOL or code == _K_MAX_POOL:
            x, y = args[0], rules.first_tensor(out)
            window = rules.pool_kernel(name, args, y) or (
                rules.pool_window(x.shape[-(y.dim() - 2):], y.shape[-(y.dim() - 2):])
                if y is not None and y.dim() > 2 else 1)
            n_out = y.numel() if y is not None else 0
            if code == _K_AVG_POOL:
                counts = {"ac": n_out * (window - 1), "mac": n_out}
            else:
                counts = {"other": n_out * (window - 1)}
            self._element(scope, name, counts, args[:1], y)
        else:
            self.unsupported[f"{scope}: {func}"] += 1

    def _batch_norm(self, scope: str, name: str, args, out, channels: int | None = None) -> None:
        x = args[0]
        had_bias = self._synaptic_storage.get(_ptr(x)) if self.fold_bn else None
        if had_bias is not None and name.endswith(
                ("batch_norm", "no_training", "legit", "functional")):
            self.folded.append(scope)
            # Folded: the shift becomes the conv's bias, read once per output element.
            self._el.append((self._seq, scope, name, {}, (
                0, 0, 0, 0, 0, 0 if had_bias else x.numel(), 0, 0, 0, 0, 0, 0),
                2 * (x.shape[1] if channels is None else channels)))
            self._seq += 1
        else:
            n = x.numel()
            params = sum(a.numel() for a in args[1:3] if isinstance(a, torch.Tensor))
            self._element(scope, name, {"mac": n}, args[:1], out, w_reads=2 * n,
                          param_words=params)

    def _element(self, scope: str, name: str, counts: dict, operands, out, *, w_reads: int = 0,
                 param_words: int = 0, out_class: int | None = None, binary: bool = False,
                 classes: dict | None = None) -> None:
        """Record an element-wise / reduction op: counts plus the traffic of its operands."""
        y = rules.first_tensor(out)
        n_out = y.numel() if y is not None else 0
        reads = [0, 0, 0]
        for i, a in enumerate(operands):
            if not isinstance(a, torch.Tensor):
                continue
            ptr = _ptr(a)
            if ptr in self._param_ptrs:  # a learnable operand: a weight read per use
                w_reads += n_out
                param_words += a.numel()
            elif a.dim() > 0:  # 0-d constants are immediates
                cls = classes[i] if classes and i in classes else self._class_of(a, ptr)
                reads[cls] += a.numel()
        if out_class is None:
            out_class = SPIKE if y is not None and y.dtype == torch.bool else REAL
        writes = [0, 0, 0]
        writes[out_class] = n_out
        if y is not None:
            if out_class != REAL:
                self._mark(y, out_class)
            elif self._classes:  # an in-place op may have overwritten a classified storage
                self._classes.pop(_ptr(y), None)
        if binary:  # a product with a spike tensor: a select per output
            counts = {"select": sum(counts.values())}
        self._el.append((self._seq, scope, name, counts, (
            counts.get("ac", 0), counts.get("mac", 0), counts.get("other", 0),
            counts.get("select", 0), w_reads, 0, *reads, *writes), param_words))
        self._seq += 1

    def _mul(self, scope: str, name: str, args, out) -> None:
        factors = [(i, t) for i, t in enumerate(args[:2])
                   if isinstance(t, torch.Tensor) and t.dim() > 0]
        classes = {}
        binary = False
        # One spike factor makes the product a select: the first factor a binary neuron
        # emitted (nothing wrote to it since) settles it without a scan; else the first
        # factor a scan finds {0, 1}. The other factor keeps the class known for it.
        found = None
        scan = []
        out_ptr = _ptr(out)
        for i, t in factors:
            ptr = _ptr(t)
            spikes = self._class_of(t, ptr) == SPIKE
            # an in-place product writes into t: inside dispatch its version is not bumped yet
            if spikes and ptr != out_ptr and self._known_binary(t, ptr):
                found = (i, t)
                break
            scan.append((i, t, spikes))
        else:
            for i, t, spikes in scan:  # short-circuits
                if rules.is_binary(t, head=not spikes):
                    found = (i, t)
                    break
        if found is not None:
            binary = True
            classes[found[0]] = SPIKE
            self._mark(found[1], SPIKE)
        all_spikes = binary and all(classes.get(i, self._class_of(t)) == SPIKE
                                    for i, t in factors)
        self._element(scope, name, {"mac": rules.out_numel(out)}, args[:2], out,
                      out_class=SPIKE if all_spikes else REAL, binary=binary, classes=classes)

    def _groups(self, n_rows: int) -> int:
        """T when the rows are time-major ``[T*B]``, else 1 (split decided at finalize)."""
        return self.T if n_rows == self.T * self.B else 1

    def _input_class(self, x: torch.Tensor, binary: bool) -> int:
        if binary:
            self._mark(x, SPIKE)
            return SPIKE
        return self._class_of(x)

    def _weight_entry(self, key: tuple, w: torch.Tensor, make):
        """Weight-dependent constants under ``key``, recomputed when the weight tensor, its
        storage or its version changed."""
        entry = self._fanout.get(key)
        ptr = _ptr(w)
        if entry is not None and entry[0]() is w and entry[1] == _version(w) and entry[2] == ptr:
            return entry[3]
        value = make()
        if len(self._fanout) > 4096:  # weights rebuilt every forward: drop the dead ones
            for k in [k for k, v in self._fanout.items() if v[0]() is None]:
                del self._fanout[k]
        self._fanout[key] = (weakref.ref(w), _version(w), ptr, value)
        return value

    def _conv_entry(self, x_shape: tuple, w, stride, padding, dilation, transposed,
                    output_padding, groups) -> tuple:
        """A convolution's weight-dependent constants for inputs shaped ``x_shape``: the
        fan-out of every input element, the one of every spatial position (``None`` unless
        the weight has no zeros: then it is the same for every input channel), and the
        per-event fan-outs and kernel words."""
        key = ("conv", id(w), x_shape, tuple(stride), tuple(padding), tuple(dilation),
               bool(transposed), tuple(output_padding), int(groups))

        def make():
            if not transposed and int(torch.count_nonzero(w)) == w.numel():
                spatial = rules.conv_fanout_spatial(x_shape, w, stride, padding, dilation,
                                                    groups)
                fan = spatial.reshape(1, -1).expand(x_shape[1], -1).reshape(-1)
            else:
                spatial = None
                fan = rules.conv_fanout(x_shape, w, stride, padding, dilation, transposed,
                                        output_padding, groups).reshape(-1)
            kernel = math.prod(w.shape[2:])
            c_out = w.shape[1] * groups if transposed else w.shape[0]
            per_event = c_out // groups
            ops_factor = math.prod(-(-k // s) for k, s in zip(w.shape[2:], stride))
            # host copies of the fan-outs, for the products finalize takes (_DEFER)
            host = [None if f is None or f.device.type != "cpu" else f.numpy()
                    for f in (fan, spatial)]
            return (fan, spatial, per_event * kernel, per_event * ops_factor, c_out * kernel,
                    *host)

        return self._weight_entry(key, w, make)

    def _conv(self, scope: str, name: str, args, out, pre: tuple | None = None) -> None:
        """``pre``: (input, its storage pointer, whether it is known to hold spikes, binary,
        groups, active counts (per channel, or per spatial position when the weight has no
        zeros), the :meth:`_conv_entry`, the shape the operator reads) measured by the
        layer's pre-hook."""
        x, w, bias = args[0], args[1], args[2]
        stride, padding, dilation, transposed, output_padding, groups = args[3:9]
        x_shape = tuple(x.shape) if pre is None else pre[7]  # (a multi-step input's [T*B, ...])
        entry = self._conv_entry(x_shape, w, stride, padding, dilation, transposed,
                                 output_padding, groups) if pre is None else pre[6]
        fan, spatial, fanout, fanout_ops, kernel_words, fan_np, spatial_np = entry
        dense = rules.conv_dense_macs(x_shape, w, tuple(out.shape), transposed)
        n = x_shape[0]
        if pre is None:
            binary = rules.is_binary(x)
            groups = self._groups(n)
            active = rules.active_counts(x, groups, binary, raw=True)
            in_class = self._input_class(x, binary)
        else:  # measured by the layer's pre-hook
            _, ptr, spikes, binary, groups, active, _, _ = pre
            in_class = SPIKE if spikes else self._input_class(x, binary)
            if spatial is not None:  # active inputs per spatial position (a dense weight)
                fan, fan_np = spatial, spatial_np
        if fan_np is not None and active.device.type == "cpu":
            # the raw sums wait for finalize, which takes the products with the fan-out on
            # the host for all layers at once (here each would be two more tensor ops)
            per_group, nnz = (active, fan_np), _DEFER_NNZ if binary else _DEFER
            self._deferred += 1
            spikes_of = ("syn", len(self._syn_t))
        else:
            if active.dtype != torch.float64:
                active = active.to(torch.float64)
            per_group = active @ fan  # exact: integer products and sums below 2**53
            nnz = spikes_of = active.sum(1) if binary else None
        has_bias = isinstance(bias, torch.Tensor)
        n_out = out.numel()
        self._append_synaptic(
            (self._seq, scope, name, binary, n, dense, in_class, x.numel(), REAL, 0, True,
             n_out if has_bias else 0, n_out, w.numel() + (bias.numel() if has_bias else 0),
             fanout, fanout_ops, 0 if binary else kernel_words * n),
            (per_group, nnz), x, binary, groups, spikes_of, out, has_bias)

    def _matmul(self, scope: str, name: str, packet, args, kwargs, out) -> None:
        bias = None
        if packet in (aten.addmm, aten.baddbmm):
            bias, a, b = args[0], args[1], args[2]
        else:
            a, b = args[0], args[1]
        a_bin = rules.is_binary(a)
        param = self._param_ptrs.get(_ptr(b))
        if param is not None:  # a weight: its spike test and fan-out are cached
            key = _matmul_key(param, b)

            def make():
                b_bin = rules.is_binary(b)
                b_nz = rules.nonzero(b, b_bin)
                fan = (b_nz.sum(1, dtype=torch.float64) if b.dim() == 2
                       else b_nz.sum(2, dtype=torch.float64))
                return b_bin, b_nz, fan

            b_bin, b_nz, fan = self._weight_entry(key, param, make)
        else:
            b_bin = rules.is_binary(b)
            b_nz = rules.nonzero(b, b_bin)
            fan = None
        binary = a_bin or b_bin
        if a.dim() == 2:  # [N, K] @ [K, M]
            if fan is None:
                fan = b_nz.sum(1, dtype=torch.float64)  # [K]
            n = a.shape[0]
            active = rules.active_counts(a, self._groups(n), a_bin)
            per_group = active @ fan
            nnz = active.sum(1) if a_bin else None
            dense = a.shape[0] * a.shape[1] * b.shape[1]
        else:  # [G, N, K] @ [G, K, M]: rows are the G batch entries
            if fan is None:
                fan = b_nz.sum(2, dtype=torch.float64)  # [G, K]
            n = a.shape[0]
            a_nz = rules.nonzero(a, a_bin)
            per_row = (a_nz.sum(1).to(torch.float64) * fan).sum(1)  # [G]
            per_group = per_row.reshape(self._groups(n), -1).sum(1)
            nnz = (a_nz.reshape(self._groups(n), -1).sum(1).to(torch.float64) if a_bin
                   else None)
            dense = a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
        weight_is_param = param is not None
        other_in = (REAL, 0) if weight_is_param else (self._input_class(b, b_bin), b.numel())
        has_bias = isinstance(bias, torch.Tensor)
        n_out = out.numel()
        self._syn.append((
            self._seq, scope, name, binary, n, dense,
            self._input_class(a, a_bin), a.numel(), other_in[0], other_in[1], weight_is_param,
            n_out if has_bias else 0, n_out,
            (b.numel() if weight_is_param else 0) + (bias.numel() if has_bias else 0),
            b.shape[-1], b.shape[-1], 0))
        self._syn_t.append((per_group, nnz))
        self._seq += 1
        self._synaptic_storage[_ptr(out)] = has_bias

    # -- results ---------------------------------------------------------------------------------
    def finalize(self) -> CountResult:
        """Move counts to the host (one transfer) and split them per time step and per sample.

        Everything but the data-dependent columns (ops, nonzeros and spikes per step) follows
        from the ops' shapes and classes: it is kept with the model and reused while a call
        records the same ops."""
        T, B = self.T, self.B
        E = self._seq
        if self._pending is not None:
            self._settle()
        # One host transfer for every per-step tensor of the pass: ops per group of every
        # synaptic op, then the nonzeros of those that have them, then the spikes.
        syn_t = self._syn_t
        neu_t = self._neu_t
        if self._deferred:  # on the host: the products with the fan-outs, here
            syn_t = self._deferred_products(syn_t)
            neu_t = [syn_t[t[1]][1] if type(t) is tuple else t for t in neu_t]
        nnz_of = [i for i, (_, nz) in enumerate(syn_t) if nz is not None]
        tensors = [pg for pg, _ in syn_t] + [syn_t[i][1] for i in nnz_of] + neu_t
        if self._deferred:  # all 1-d
            flat = np.concatenate([_host(t) for t in tensors])
        elif tensors:  # all 1-d; float32 spike counts are promoted
            flat = torch.cat(tensors).to(torch.float64).cpu().numpy()
        else:
            flat = np.zeros(0)

        sig = (T, B, self.state.param_key, nnz_of, self._syn, self._el, self._neu)
        cached = self.state.derived.get("finalize")
        if cached is not None and cached[0] == sig:
            structure = cached[1]
        else:
            structure = self._structure(nnz_of)
            self.state.derived["finalize"] = (sig, structure)
        (static, row_event, row_t, layer, op, kinds, single_step, syn_plan,
         neu_plan) = structure

        # the static columns are shared between the calls of one structure (read-only); the
        # measured ones are filled when the rows are read (CountResult.rows)
        return CountResult(T=T, B=B, layer=layer, op=op, kinds=kinds, row_event=row_event,
                           row_t=row_t, unsupported=dict(self.unsupported),
                           folded_bn=sorted(set(self.folded)),
                           module_types=self.state.module_types, single_step=single_step,
                           static_key=structure, measured=flat, static=static,
                           _fill=partial(_fill_rows, static, syn_plan, neu_plan, T, B))

    @staticmethod
    def _deferred_products(syn_t: list) -> list:
        """The synaptic records left raw (``_DEFER``, ``_DEFER_NNZ``) with their products:
        the active counts of each group times the fan-out, summed (and, for the nonzeros,
        without the fan-out), on the host in float64 (exact below 2**53: integer products
        and sums)."""
        syn_t = list(syn_t)
        for i, (pg, nz) in enumerate(syn_t):
            if nz is _DEFER or nz is _DEFER_NNZ:
                active, fan = pg
                a = active.numpy().astype(np.float64)
                syn_t[i] = (a @ fan, a.sum(1) if nz is _DEFER_NNZ else None)
        return syn_t

    def _structure(self, nnz_of: list) -> tuple:
        """What finalize needs that does not depend on the data: the rows' static columns,
        which rows exist, and how to place the per-step counts."""
        T, B = self.T, self.B
        E = self._seq
        # Single-step mode: neurons were called once per step on [B, ...] inputs.
        calls = Counter(e[1] for e in self._neu)
        single_step = bool(self._neu) and all(e[3] == 1 for e in self._neu) and all(
            c == T for c in calls.values()) and T > 1
        layer = [""] * E
        op = [""] * E
        kinds: list = [()] * E
        # t of each event in single-step mode (its k-th call is step k), -1 elsewhere
        t_single = np.full(E, -1, dtype=np.int64)
        if single_step:
            occurrence: dict = defaultdict(int)
            for seq, scope, name, n_rows in sorted(
                    [(e[0], e[1], e[2], e[4]) for e in self._syn]
                    + [(e[0], e[1], e[2], None) for e in self._el]
                    + [(e[0], e[1], None, -1) for e in self._neu]):
                if n_rows == -1:
                    key = ("neuron", scope)
                elif n_rows is None or n_rows == B:  # a call on one step's [B, ...]
                    key = (scope, name)
                else:
                    continue
                t_single[seq] = occurrence[key] % T
                occurrence[key] += 1

        M = np.zeros((E, T, len(ROW_COLUMNS)))
        mask = np.ones((E, T), dtype=bool)
        own = self._own_params()
        syn_plan = neu_plan = None
        if self._syn:
            syn_plan = self._synaptic_rows(M, layer, op, kinds, t_single, nnz_of, own)
        if self._el:
            self._fill_elementwise(M, layer, op, kinds, t_single, own)
        if self._neu:
            neu_plan = self._neuron_rows(M, mask, layer, op, t_single)
        row_event = np.repeat(np.arange(E), T)
        row_t = np.tile(np.arange(T), E)
        mask = mask.reshape(-1)
        row_event, row_t = row_event[mask], row_t[mask]
        # row of each (event, step), -1 for a step a single-step neuron call has no row of
        row_of = np.full(E * T, -1, dtype=np.int64)
        row_of[mask] = np.arange(int(mask.sum()))
        row_of = row_of.reshape(E, T)
        if syn_plan is not None:
            syn_plan = (*syn_plan, row_of[syn_plan[0]])
        if neu_plan is not None:
            neu_plan = (*neu_plan, row_of[neu_plan[0]])
        # one contiguous array per column (the report reads columns), read-only: shared by
        # every call of this structure
        static = {}
        for name, column in zip(ROW_COLUMNS, M.reshape(E * T, len(ROW_COLUMNS))[mask].T):
            column = np.ascontiguousarray(column != 0 if name in FLAG_COLUMNS else column)
            column.flags.writeable = False
            static[name] = column
        return static, row_event, row_t, layer, op, kinds, single_step, syn_plan, neu_plan

    def _own_params(self) -> dict[str, int]:
        """Parameter elements each layer owns (not counting its children)."""
        own = self.state.own_params  # valid while the parameters are (checked on entry)
        modules = self.state.modules
        for s in {e[1] for e in self._syn} | {e[1] for e in self._el}:
            if s not in own:
                m = self.model if s == self.state.root else modules.get(s)
                params = {} if m is None else {
                    id(p): p for p in m._parameters.values() if p is not None}
                own[s] = sum(p.numel() for p in params.values())
        return own

    def _spread(self, whole: np.ndarray, t_single: np.ndarray) -> np.ndarray:
        """``[E, k]`` whole-call values -> ``[E, T, k]`` per step: even (value / T), or all
        at the event's step in single-step mode."""
        T = self.T
        out = np.repeat((whole / T)[:, None, :], T, axis=1)
        single = np.nonzero(t_single >= 0)[0]
        if len(single):
            out[single] = 0.0
            out[single, t_single[single]] = whole[single]
        return out

    def _synaptic_rows(self, M, layer, op, kinds, t_single_all, nnz_of, own) -> tuple:
        """Static columns of the synaptic ops' rows; returns how to place their counts."""
        T, B = self.T, self.B
        syn = self._syn
        n = len(syn)
        for e in syn:
            layer[e[0]], op[e[0]] = e[1], e[2]
            kinds[e[0]] = ("ac",) if e[3] else ("mac",)
        # seq, n_rows, dense, in_numel, other_numel, bias_numel, out_numel, kernel_words,
        # fanout, fanout_ops, binary, in_class, other_class, weight is a parameter
        static = np.array([(e[0], e[4], e[5], e[7], e[9], e[11], e[12], e[16], e[14], e[15],
                            e[3], e[6], e[8], e[10]) for e in syn], dtype=np.float64)
        seq = static[:, 0].astype(np.int64)
        exact = static[:, 1] == T * B  # time-major rows: counts split exactly per step
        ts = np.where(exact, -1, t_single_all[seq])
        spread = self._spread(static[:, [2, 3, 4, 5, 6, 7]], ts) / B  # [E, T, 6]
        in_cls, other_cls = static[:, 11].astype(np.int64), static[:, 12].astype(np.int64)
        capacity = np.array([own.get(e[1]) or e[13] for e in syn], dtype=np.float64)
        conv = np.array([e[2] in ("convolution", "_convolution") for e in syn], dtype=bool)
        wparam = static[:, 13] != 0
        rows = np.zeros((n, T, len(ROW_COLUMNS)))
        rows[:, :, _COL["dense_macs"]] = spread[:, :, 0]
        rows[:, :, _COL["b_reads"]] = spread[:, :, 3]
        idx = np.arange(n)
        in_cols = np.array(_IN_COLS)
        rows[idx, :, in_cols[in_cls]] = spread[:, :, 1]
        rows[idx, :, in_cols[other_cls]] += spread[:, :, 2]
        rows[:, :, _COL["out_real"]] = spread[:, :, 4]
        rows[:, :, _COL["kernel_words"]] = spread[:, :, 5]
        rows[:, :, _COL["param_words"]] = capacity[:, None]
        rows[:, :, _COL["synaptic"]] = wparam[:, None]
        rows[:, :, _COL["conv"]] = conv[:, None]
        M[seq] = rows
        # per-step ops and nonzeros: T values for a time-major op, else one to spread
        size = np.where(exact, T, 1)
        start = np.concatenate([[0], np.cumsum(size)[:-1]])
        used = int(size.sum())
        nz_start = used + np.concatenate([[0], np.cumsum(size[nnz_of])[:-1]])
        used += int(size[nnz_of].sum())
        binary = static[:, 10] != 0
        return (seq, exact, ts, start, nnz_of, nz_start, used, binary[:, None], wparam[:, None],
                static[:, 8:9], static[:, 9:10])

    def _fill_elementwise(self, M, layer, op, kinds, t_single_all, own) -> None:
        el = self._el
        for e in el:
            layer[e[0]], op[e[0]] = e[1], e[2]
            kinds[e[0]] = tuple(k for k, v in e[3].items() if v != 0)
        seq = np.array([e[0] for e in el], dtype=np.int64)
        # ac, mac, other, select, w_reads, b_reads, reads (spike, act, real), writes (same)
        whole = np.array([e[4] for e in el], dtype=np.float64)
        capacity = np.array([float(own.get(e[1]) or e[5]) for e in el], dtype=np.float64)
        rows = np.zeros((len(el), self.T, len(ROW_COLUMNS)))
        rows[:, :, _EL_COLS] = self._spread(whole, t_single_all[seq]) / self.B
        rows[:, :, _COL["param_words"]] = capacity[:, None]
        M[seq] = rows

    def _neuron_rows(self, M, mask, layer, op, t_single_all) -> tuple:
        """Static columns of the neuron rows (and which exist); returns how to place spikes."""
        T, B = self.T, self.B
        neu = self._neu
        for e in neu:
            layer[e[0]], op[e[0]] = e[1], "neuron"
        info = np.array([(e[0], e[2], e[3], e[4], e[5]) for e in neu], dtype=np.int64)
        seq, numel, steps, state_words = info[:, 0], info[:, 1], info[:, 2], info[:, 3]
        multi = steps == T  # one call over [T, ...]: a spike count per step
        at = np.where(multi, -1, np.maximum(t_single_all[seq], 0))  # a one-step call's step
        for i in np.nonzero(~multi)[0]:
            mask[seq[i]] = False
            mask[seq[i], at[i]] = True
        neurons = np.where(multi, numel // T, numel) / B
        rows = np.zeros((len(neu), T, len(ROW_COLUMNS)))
        for col in ("neuron_updates", "in_real", "out_spike"):
            rows[:, :, _COL[col]] = neurons[:, None]
        rows[:, :, _COL["s_reads"]] = (state_words / B)[:, None]
        rows[:, :, _COL["s_writes"]] = (state_words / B)[:, None]
        rows[:, :, _COL["leaky"]] = (info[:, 4] != 0)[:, None]
        M[seq] = rows
        return seq, bool(multi.all()), at


def _fill_rows(static: dict, syn_plan, neu_plan, T: int, B: int, flat: np.ndarray) -> Rows:
    """Count rows: the static columns (shared) and :data:`DATA_COLUMNS` filled from ``flat``,
    the measured vector of :meth:`OpCounter.finalize` (each entry from one value of it)."""
    rows = Rows(static)
    for name in DATA_COLUMNS:
        rows[name] = static[name].copy()
    used = _fill_counts(rows, flat, syn_plan, T, B) if syn_plan is not None else 0
    if neu_plan is not None:
        _fill_spikes(rows, flat[used:], neu_plan, T, B)
    return rows


def _fill_counts(rows: dict, flat, plan, T: int, B: int) -> int:
    """The synaptic rows' data-dependent columns (in ``rows``' own copies of them);
    returns how many values of ``flat`` they used."""
    (seq, exact, ts, start, nnz_of, nz_start, used, binary, wparam, fanout, fanout_ops,
     where) = plan
    counts = _per_step(flat, start, exact, ts, T) / B
    nnz = np.zeros_like(counts)
    if nnz_of:
        nnz[nnz_of] = _per_step(flat, nz_start, exact[nnz_of], ts[nnz_of], T) / B
    rows["ac"][where] = np.where(binary, counts, 0.0)
    rows["mac"][where] = np.where(binary, 0.0, counts)
    rows["w_reads"][where] = np.where(wparam, counts, 0.0)
    rows["nnz_in"][where] = nnz
    rows["ev_mem"][where] = nnz * fanout
    rows["ev_ops"][where] = nnz * fanout_ops
    return used


def _per_step(flat: np.ndarray, start: np.ndarray, exact: np.ndarray, ts: np.ndarray,
              T: int) -> np.ndarray:
    """``[n, T]`` per-step values from ``flat``: the T values at ``start`` of a time-major
    op, else its one value spread evenly or put at its step ``ts``."""
    out = np.empty((len(start), T))
    if exact.any():
        out[exact] = flat[start[exact, None] + np.arange(T)]
    rest = ~exact
    if rest.any():
        total = flat[start[rest]]
        single = ts[rest]
        spread = np.repeat((total / T)[:, None], T, axis=1)
        at = np.nonzero(single >= 0)[0]
        if len(at):
            spread[at] = 0.0
            spread[at, single[at]] = total[at]
        out[rest] = spread
    return out


def _fill_spikes(rows: dict, flat, plan, T: int, B: int) -> None:
    """The neuron rows' spikes per step (from ``flat``, in call order)."""
    seq, all_multi, at, where = plan
    n = len(seq)
    if all_multi:  # the spike counts are consecutive: T per neuron call
        spikes = flat[:n * T].reshape(n, T)
    else:
        spikes = np.zeros((n, T))
        offset = 0
        for i in range(n):
            if at[i] < 0:
                spikes[i] = flat[offset:offset + T]
                offset += T
            else:
                spikes[i, at[i]] = flat[offset]
                offset += 1
    present = where >= 0  # (a single-step call's other steps have no row)
    rows["spikes"][where[present]] = spikes[present] / B
