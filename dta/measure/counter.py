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

Counts stay as tensors on the model's device until :meth:`OpCounter.finalize`;
the only host synchronisation during the forward is the spike-tensor test of
each synaptic op's input and of each product's factors (it picks the counting
path). Traffic is computed from shapes alone, and whether an operand is a
spike tensor or an activation-function output is looked up from the storages
this pass has already classified (a neuron's output, an input found binary,
a ReLU's output): no extra synchronisation. Counting is for measurement,
never for timing: latency is measured without it.

Time steps. The input is ``[T, B, ...]``. A synaptic op whose input has
``T*B`` rows (spikingjelly's multi-step layers flatten ``[T, B]``) is split
exactly per step from its per-row counts. A model run in single-step mode
(every neuron called T times on ``[B, ...]``) has each op's k-th call
attributed to step k. Any other op (attention on ``[B, T, C]``, T folded into
channels, ...) is split evenly over the T steps. Per-step counts always sum
to the total.
"""

from __future__ import annotations

import math
import weakref
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.modules import module as nn_module
from torch.utils import _python_dispatch as python_dispatch
from torch.utils._python_dispatch import TorchDispatchMode

from . import rules
from .traffic import TRAFFIC_FIELDS

aten = torch.ops.aten

SPIKE, ACT, REAL = 0, 1, 2  # operand classes: 1-bit spikes, activation outputs, other reals


def is_neuron(module: nn.Module) -> bool:
    """A spiking-neuron layer: any spikingjelly neuron, or a stateful ``*Node`` module."""
    from spikingjelly.activation_based import base
    from spikingjelly.activation_based.neuron import BaseNode, SimpleBaseNode

    if isinstance(module, (BaseNode, SimpleBaseNode)):
        return True
    return isinstance(module, base.MemoryModule) and type(module).__name__.endswith("Node")


@dataclass(slots=True)
class _Synaptic:
    scope: str
    op: str
    per_group: torch.Tensor  # [T] effective ops per step (time-major rows) or [1] total
    binary: bool  # the input is a spike tensor
    dense: int  # dense MACs (fvcore convention)
    n_rows: int
    # traffic (whole call, all samples)
    in_class: int  # SPIKE / ACT / REAL
    in_numel: int
    other_in: tuple  # (class, numel) of an activation operand read instead of weights
    weight_is_param: bool
    bias_numel: int  # output elements that read a bias word (0 without bias)
    out_numel: int
    param_words: int
    nnz: torch.Tensor | None  # [groups] nonzero inputs (spike input only)
    fanout: int  # weights touched per input event
    fanout_ops: int  # Lemaire et al.'s op fan-out per event
    kernel_words: int  # C_out * prod(kernel) for a conv, else 0


@dataclass(slots=True)
class _Elementwise:
    scope: str
    op: str
    counts: dict  # kind -> int
    binary: bool = False  # for products: a factor is a spike tensor (-> select)
    reads: tuple = (0, 0, 0)  # elements read: spike, act, real
    w_reads: int = 0
    b_reads: int = 0
    writes: tuple = (0, 0, 0)  # elements written: spike, act, real
    param_words: int = 0


@dataclass(slots=True)
class _Neuron:
    scope: str
    per_step_spikes: torch.Tensor  # [steps] spike counts (steps = T, or 1 in single-step mode)
    numel: int  # elements of the call's input
    steps: int  # time steps covered by this call
    state_words: int  # state elements of the layer for one step (all samples)
    leaky: bool


@dataclass
class CountResult:
    """Raw counts of one forward, already split per time step and per sample."""

    T: int
    B: int
    ops: list = field(default_factory=list)  # dicts: layer, op, kind, t, count, dense_macs
    neurons: list = field(default_factory=list)  # dicts: layer, t, spikes, neurons
    traffic: list = field(default_factory=list)  # dicts: layer, op, t, kinds, TRAFFIC_FIELDS, ...
    unsupported: dict = field(default_factory=dict)  # "scope: op" -> calls
    folded_bn: list = field(default_factory=list)  # scopes of BatchNorms folded into a conv
    module_types: dict = field(default_factory=dict)  # name -> class name
    single_step: bool = False


def layer_names(model: nn.Module) -> dict[int, str]:
    """``id(module) -> layer name`` as reports show it: ``named_modules`` names, the
    root module (whose name is empty) by its class name."""
    return {id(m): n or type(m).__name__ for n, m in model.named_modules()}


def _ptr(x: torch.Tensor) -> int:
    try:
        return x.untyped_storage().data_ptr()
    except (RuntimeError, AttributeError, NotImplementedError):
        return -1


class OpCounter(TorchDispatchMode):
    """Count one forward of ``model`` on a ``[T, B, ...]`` input.

    Use :func:`dta.measure.profile` unless you need the raw engine::

        with OpCounter(model, T=T, B=B) as counter:
            model(x)
        result = counter.finalize()

    Hooks are removed and state is reset on exit even when the forward raises.
    ``fold_bn=True`` (the default) treats a BatchNorm whose input is the
    output of a convolution / linear layer as folded into it at inference
    (zero cost); unfolded BatchNorm costs one MAC per element.
    """

    def __init__(self, model: nn.Module, *, T: int, B: int, fold_bn: bool = True,
                 fanout_cache: dict | None = None):
        super().__init__()
        self.model = model
        self.T, self.B = int(T), int(B)
        self.fold_bn = fold_bn
        self.names = layer_names(model)
        neurons = [m for m in model.modules() if is_neuron(m)]
        self.neuron_ids = {id(m) for m in neurons}
        self._leaky = {id(m): hasattr(m, "tau") for m in neurons}
        self._fanout = {} if fanout_cache is None else fanout_cache
        self._reset()

    # -- state -----------------------------------------------------------------------------------
    def _reset(self) -> None:
        self._stack: list[str] = []
        self._opaque = 0  # depth inside neuron modules
        self._suspended = False  # this mode is popped while a neuron runs
        self._synaptic_storage: dict[int, bool] = {}  # output storage -> the op had a bias
        # storage pointer -> (weak reference to the storage, SPIKE or ACT): operands already
        # classified in this pass. A dead reference means the address was reused: unclassified.
        self._classes: dict[int, tuple] = {}
        self._param_ptrs: set[int] = set()
        self.events: list = []
        self.unsupported: Counter = Counter()
        self.folded: list[str] = []
        self._hooks: list = []

    def _mark(self, x: torch.Tensor, cls: int) -> None:
        try:
            storage = x.untyped_storage()
            self._classes[storage.data_ptr()] = (weakref.ref(storage), cls)
        except (RuntimeError, AttributeError, NotImplementedError, TypeError):
            pass

    def _class_of(self, x: torch.Tensor) -> int:
        """SPIKE for bool tensors and storages known to hold spikes, ACT for activation
        outputs, else REAL. A lookup, never a synchronisation."""
        if x.dtype == torch.bool:
            return SPIKE
        entry = self._classes.get(_ptr(x))
        if entry is not None and entry[0]() is not None:
            return entry[1]
        return REAL

    # -- module scopes ---------------------------------------------------------------------------
    def _pre_hook(self, module, args):
        key = id(module)
        self._stack.append(self.names.get(key) or type(module).__name__)
        if key in self.neuron_ids:
            self._opaque += 1
            # Neurons are opaque: step out of the dispatch mode while they run, so their
            # internal ops pay no interception cost (they are counted as neuron updates).
            if self._opaque == 1 and python_dispatch._get_current_dispatch_mode() is self:
                python_dispatch._pop_mode()
                self._suspended = True

    def _post_hook(self, module, args, output):
        key = id(module)
        name = self._stack.pop() if self._stack else type(module).__name__
        if key in self.neuron_ids:
            self._opaque = max(0, self._opaque - 1)
            if self._opaque == 0:
                self._resume()
            if self._opaque == 0 and isinstance(output, torch.Tensor) and args:
                self._opaque += 1  # our own bookkeeping ops must not be counted
                try:
                    self._record_neuron(module, name, output)
                finally:
                    self._opaque -= 1

    def _record_neuron(self, module, name: str, out: torch.Tensor) -> None:
        numel = out.numel()
        if numel == 0:
            return
        # Multi-step call on [T, ...]: one spike count per step; single-step call: one.
        steps = self.T if (out.dim() >= 2 and out.shape[0] == self.T and numel % self.T == 0
                           and out.shape[1] == self.B) else 1
        with torch.no_grad():
            # Spikes = sum of |s|: the count for {0, 1} spikes, unit events for integer
            # (multi-spike) neurons, both signs for ternary ones. One fused pass.
            spikes = torch.linalg.vector_norm(out.detach().reshape(steps, -1).float(), ord=1,
                                              dim=1).to(torch.float64)
        # State words of one step: every tensor memory (v for LIF; more for adaptive neurons),
        # one per neuron when the memories are not tensors yet.
        memories = getattr(module, "_memories", None) or {}
        state = sum(v.numel() for v in memories.values() if isinstance(v, torch.Tensor))
        self.events.append(_Neuron(name, spikes, numel, steps, state or numel // steps,
                                   self._leaky.get(id(module), False)))
        self._mark(out, SPIKE)

    @property
    def scope(self) -> str:
        return self._stack[-1] if self._stack else ""

    # -- context ---------------------------------------------------------------------------------
    def __enter__(self):
        self._reset()
        self._param_ptrs = {_ptr(p) for p in self.model.parameters()}
        self._hooks = [
            nn_module.register_module_forward_pre_hook(self._pre_hook),
            nn_module.register_module_forward_hook(self._post_hook, always_call=True),
        ]
        return super().__enter__()

    def _resume(self) -> None:
        if self._suspended:
            python_dispatch._push_mode(self)
            self._suspended = False

    def __exit__(self, exc_type, exc, tb):
        self._resume()  # a neuron that raised never ran its post-hook
        try:
            return super().__exit__(exc_type, exc, tb)
        finally:
            for handle in self._hooks:
                handle.remove()
            self._hooks = []
            self._stack = []
            self._opaque = 0
            self._classes = {}

    # -- dispatch --------------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self._opaque:
            return out
        packet = func.overloadpacket
        if packet in rules.FREE_OPS:
            return out
        if torch.is_grad_enabled():
            with torch.no_grad():
                self._count(func, packet, args, kwargs, out)
        else:
            self._count(func, packet, args, kwargs, out)
        return out

    def _count(self, func, packet, args, kwargs, out) -> None:
        scope = self.scope
        name = packet.__name__
        if packet in rules.CONV_OPS:
            self._conv(scope, name, args, out)
        elif packet in rules.MATMUL_OPS:
            self._matmul(scope, name, packet, args, kwargs, out)
        elif packet in rules.BATCH_NORM_OPS:
            x = args[0]
            had_bias = self._synaptic_storage.get(_ptr(x)) if self.fold_bn else None
            if had_bias is not None and name.endswith(
                    ("batch_norm", "no_training", "legit", "functional")):
                self.folded.append(scope)
                # Folded: the shift becomes the conv's bias, read once per output element.
                self.events.append(_Elementwise(scope, name, {}, b_reads=0 if had_bias
                                                else x.numel(), param_words=2 * x.shape[1]))
            else:
                n = x.numel()
                params = sum(a.numel() for a in args[1:3] if isinstance(a, torch.Tensor))
                self._element(scope, name, {"mac": n}, args[:1], out, w_reads=2 * n,
                              param_words=params)
        elif packet in rules.ADD_OPS:
            self._element(scope, name, {"ac": rules.out_numel(out)}, args, out)
        elif packet in rules.MUL_OPS:
            self._mul(scope, name, args, out)
        elif packet in rules.DIV_OPS:
            b = args[1]
            scalar = not isinstance(b, torch.Tensor) or b.numel() == 1
            self._element(scope, name, {"mac" if scalar else "other": rules.out_numel(out)},
                          args, out)
        elif packet in rules.OTHER_OPS:
            self._element(scope, name, {"other": rules.out_numel(out)}, args, out,
                          out_class=ACT if packet in rules.ACTIVATION_OPS else None)
        elif packet in rules.SUM_OPS or packet in rules.MEAN_OPS:
            n_in, n_out = rules.reduction_inputs(args), rules.out_numel(out)
            counts = {"ac": max(n_in - n_out, 0)}
            if packet in rules.MEAN_OPS:
                counts["mac"] = n_out
            self._element(scope, name, counts, args[:1], out)
        elif packet in rules.MAX_REDUCE_OPS:
            n_in, n_out = rules.reduction_inputs(args), rules.out_numel(out)
            self._element(scope, name, {"other": max(n_in - n_out, 0)}, args[:1], out)
        elif packet in rules.AVG_POOL_OPS or packet in rules.MAX_POOL_OPS:
            x, y = args[0], rules.first_tensor(out)
            window = rules.pool_kernel(name, args, y) or (
                rules.pool_window(x.shape[-(y.dim() - 2):], y.shape[-(y.dim() - 2):])
                if y is not None and y.dim() > 2 else 1)
            n_out = y.numel() if y is not None else 0
            if packet in rules.AVG_POOL_OPS:
                counts = {"ac": n_out * (window - 1), "mac": n_out}
            else:
                counts = {"other": n_out * (window - 1)}
            self._element(scope, name, counts, args[:1], y)
        else:
            self.unsupported[f"{scope}: {func}"] += 1

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
            if _ptr(a) in self._param_ptrs:  # a learnable operand: a weight read per use
                w_reads += n_out
                param_words += a.numel()
            elif a.dim() > 0:  # 0-d constants are immediates
                cls = classes[i] if classes and i in classes else self._class_of(a)
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
        self.events.append(_Elementwise(scope, name, counts, binary, tuple(reads), w_reads, 0,
                                        tuple(writes), param_words))

    def _mul(self, scope: str, name: str, args, out) -> None:
        factors = [(i, t) for i, t in enumerate(args[:2])
                   if isinstance(t, torch.Tensor) and t.dim() > 0]
        classes = {}
        binary = False
        for i, t in factors:  # short-circuits: one spike factor makes the product a select
            if rules.is_binary(t):
                binary = True
                classes[i] = SPIKE
                self._mark(t, SPIKE)
                break
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

    def _conv(self, scope: str, name: str, args, out) -> None:
        x, w, bias = args[0], args[1], args[2]
        stride, padding, dilation, transposed, output_padding, groups = args[3:9]
        key = (id(w), w._version, tuple(x.shape[1:]), tuple(stride), tuple(padding),
               tuple(dilation), bool(transposed), tuple(output_padding), int(groups))
        fan = self._fanout.get(key)
        if fan is None:
            fan = rules.conv_fanout(x.shape, w, stride, padding, dilation, transposed,
                                    output_padding, groups).reshape(-1)
            self._fanout[key] = fan
        n = x.shape[0]
        binary = rules.is_binary(x)
        active = rules.active_counts(x, self._groups(n), binary)
        per_group = active @ fan
        dense = rules.conv_dense_macs(tuple(x.shape), w, tuple(out.shape), transposed)
        kernel = math.prod(w.shape[2:])
        c_out = w.shape[1] * groups if transposed else w.shape[0]
        per_event = c_out // groups
        ops_factor = math.prod(-(-k // s) for k, s in zip(w.shape[2:], stride))
        has_bias = isinstance(bias, torch.Tensor)
        self.events.append(_Synaptic(
            scope, name, per_group, binary, dense, n,
            self._input_class(x, binary), x.numel(), (REAL, 0), True,
            out.numel() if has_bias else 0, out.numel(),
            w.numel() + (bias.numel() if has_bias else 0),
            active.sum(1) if binary else None, per_event * kernel, per_event * ops_factor,
            0 if binary else c_out * kernel * n))
        self._synaptic_storage[_ptr(out)] = has_bias

    def _matmul(self, scope: str, name: str, packet, args, kwargs, out) -> None:
        bias = None
        if packet in (aten.addmm, aten.baddbmm):
            bias, a, b = args[0], args[1], args[2]
        else:
            a, b = args[0], args[1]
        a_bin, b_bin = rules.is_binary(a), rules.is_binary(b)
        binary = a_bin or b_bin
        b_nz = rules.nonzero(b, b_bin)
        if a.dim() == 2:  # [N, K] @ [K, M]
            fan = b_nz.sum(1, dtype=torch.float64)  # [K]
            n = a.shape[0]
            active = rules.active_counts(a, self._groups(n), a_bin)
            per_group = active @ fan
            nnz = active.sum(1) if a_bin else None
            dense = a.shape[0] * a.shape[1] * b.shape[1]
        else:  # [G, N, K] @ [G, K, M]: rows are the G batch entries
            fan = b_nz.sum(2, dtype=torch.float64)  # [G, K]
            n = a.shape[0]
            a_nz = rules.nonzero(a, a_bin)
            per_row = (a_nz.sum(1).to(torch.float64) * fan).sum(1)  # [G]
            per_group = per_row.reshape(self._groups(n), -1).sum(1)
            nnz = (a_nz.reshape(self._groups(n), -1).sum(1).to(torch.float64) if a_bin
                   else None)
            dense = a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
        weight_is_param = _ptr(b) in self._param_ptrs
        other_in = (REAL, 0) if weight_is_param else (self._input_class(b, b_bin), b.numel())
        has_bias = isinstance(bias, torch.Tensor)
        self.events.append(_Synaptic(
            scope, name, per_group, binary, dense, n,
            self._input_class(a, a_bin), a.numel(), other_in, weight_is_param,
            out.numel() if has_bias else 0, out.numel(),
            (b.numel() if weight_is_param else 0) + (bias.numel() if has_bias else 0),
            nnz, b.shape[-1], b.shape[-1], 0))
        self._synaptic_storage[_ptr(out)] = has_bias

    # -- results ---------------------------------------------------------------------------------
    def finalize(self) -> CountResult:
        """Move counts to the host and split them per time step and per sample."""
        T, B = self.T, self.B
        neuron_events = [e for e in self.events if isinstance(e, _Neuron)]
        # Single-step mode: neurons were called once per step on [B, ...] inputs.
        calls = Counter(e.scope for e in neuron_events)
        single_step = bool(neuron_events) and all(e.steps == 1 for e in neuron_events) and all(
            c == T for c in calls.values()) and T > 1
        occurrence: dict = defaultdict(int)

        result = CountResult(T=T, B=B, single_step=single_step)
        result.module_types = {self.names[id(m)]: type(m).__name__ for m in self.model.modules()}
        result.unsupported = dict(self.unsupported)
        result.folded_bn = sorted(set(self.folded))
        own_params = {self.names[id(m)]: sum(p.numel() for p in m.parameters(recurse=False))
                      for m in self.model.modules()}

        def steps_of(key, n_rows):
            """Which step an N==B call belongs to in single-step mode, else None."""
            if single_step and n_rows in (B, None):
                k = occurrence[key]
                occurrence[key] += 1
                return k % T
            return None

        def spread(total, t_single):
            """Per-step shares of a whole-call quantity: even, or all at one step."""
            if t_single is None:
                return [total / T] * T
            return [float(total) if s == t_single else 0.0 for s in range(T)]

        zero = dict.fromkeys(TRAFFIC_FIELDS, 0.0)

        def traffic_row(scope, op, t, **values):
            row = {"layer": scope, "op": op, "t": t, **zero, "param_words": 0.0,
                   "synaptic": False, "conv": False, "leaky": False, "spikes": 0.0,
                   "ac": 0.0, "mac": 0.0, "other": 0.0, "select": 0.0, "neuron_updates": 0.0,
                   "dense_macs": 0.0}
            row.update(values)
            result.traffic.append(row)

        for e in self.events:
            if isinstance(e, _Neuron):
                spikes = e.per_step_spikes.cpu().tolist()
                if e.steps == T:
                    per_step = [(t, s) for t, s in enumerate(spikes)]
                    neurons = e.numel // T
                else:
                    t = steps_of(("neuron", e.scope), None)
                    per_step = [(t if t is not None else 0, spikes[0])]
                    neurons = e.numel
                for t, s in per_step:
                    result.neurons.append({"layer": e.scope, "t": t, "spikes": s / B,
                                           "neurons": neurons / B})
                    traffic_row(e.scope, "neuron", t, neuron_updates=neurons / B,
                                spikes=s / B, s_reads=e.state_words / B,
                                s_writes=e.state_words / B, in_real=neurons / B,
                                out_spike=neurons / B, leaky=e.leaky)
            elif isinstance(e, _Synaptic):
                kind = "ac" if e.binary else "mac"
                groups = e.per_group.cpu().tolist()
                nnz = e.nnz.cpu().tolist() if e.nnz is not None else None
                if len(groups) == T and T > 1 or e.n_rows == T * B:
                    per_step = groups if len(groups) == T else [groups[0] / T] * T
                    if nnz is not None:
                        nnz = nnz if len(nnz) == T else [nnz[0] / T] * T
                    t_single = None
                else:
                    t_single = steps_of((e.scope, e.op), e.n_rows)
                    per_step = spread(float(sum(groups)), t_single)
                    if nnz is not None:
                        nnz = spread(float(sum(nnz)), t_single)
                dense_step = spread(e.dense, t_single)
                in_step = spread(e.in_numel, t_single)
                other_step = spread(e.other_in[1], t_single)
                bias_step = spread(e.bias_numel, t_single)
                out_step = spread(e.out_numel, t_single)
                kernel_step = spread(e.kernel_words, t_single)
                capacity = own_params.get(e.scope) or e.param_words
                for t in range(T):
                    result.ops.append({"layer": e.scope, "op": e.op, "kind": kind, "t": t,
                                       "count": per_step[t] / B, "dense_macs": dense_step[t] / B})
                    reads = [0.0, 0.0, 0.0]
                    reads[e.in_class] += in_step[t] / B
                    reads[e.other_in[0]] += other_step[t] / B
                    events = nnz[t] / B if nnz is not None else 0.0
                    traffic_row(
                        e.scope, e.op, t, synaptic=e.weight_is_param, conv=e.op in ("convolution",
                                                                         "_convolution"),
                        **{kind: per_step[t] / B}, dense_macs=dense_step[t] / B,
                        w_reads=per_step[t] / B if e.weight_is_param else 0.0,
                        b_reads=bias_step[t] / B, in_spike=reads[SPIKE], in_act=reads[ACT],
                        in_real=reads[REAL], out_real=out_step[t] / B, nnz_in=events,
                        ev_mem=events * e.fanout, ev_ops=events * e.fanout_ops,
                        kernel_words=kernel_step[t] / B, param_words=float(capacity))
            else:
                counts = dict(e.counts)
                if e.binary:
                    counts = {"select": sum(counts.values())}
                t_single = steps_of((e.scope, e.op), None) if single_step else None
                for kind, total in counts.items():
                    if total == 0:
                        continue
                    for t, value in enumerate(spread(total, t_single)):
                        result.ops.append({"layer": e.scope, "op": e.op, "kind": kind, "t": t,
                                           "count": value / B, "dense_macs": 0.0})
                shares = {k: spread(v, t_single) for k, v in counts.items() if v}
                traffic = {"w_reads": e.w_reads, "b_reads": e.b_reads,
                           "in_spike": e.reads[SPIKE], "in_act": e.reads[ACT],
                           "in_real": e.reads[REAL], "out_spike": e.writes[SPIKE],
                           "out_act": e.writes[ACT], "out_real": e.writes[REAL]}
                traffic = {k: spread(v, t_single) for k, v in traffic.items() if v}
                capacity = float(own_params.get(e.scope) or e.param_words)
                for t in range(T):
                    traffic_row(e.scope, e.op, t, param_words=capacity,
                                **{k: v[t] / B for k, v in shares.items()},
                                **{k: v[t] / B for k, v in traffic.items()})
        return result
