"""The counting engine: a dispatch-level op counter with module scopes.

:class:`OpCounter` records, during one forward pass of any ``nn.Module``:

* every ATen operator outside spiking neurons, counted by the rule table of
  :mod:`dta.measure.rules` and attributed to the innermost module that ran it
  (its ``named_modules`` name);
* for every spiking-neuron module, membrane updates and output spikes per
  time step (neurons are opaque: their internal arithmetic is the neuron
  update, counted once per neuron per step, not op by op).

Counts stay as tensors on the model's device until :meth:`OpCounter.finalize`;
the only host synchronisation during the forward is the spike-tensor test of
each synaptic op's input and of each product's factors (it picks the counting
path). Counting is for measurement, never for timing: latency is measured
without it.

Time steps. The input is ``[T, B, ...]``. A synaptic op whose input has
``T*B`` rows (spikingjelly's multi-step layers flatten ``[T, B]``) is split
exactly per step from its per-row counts. A model run in single-step mode
(every neuron called T times on ``[B, ...]``) has each op's k-th call
attributed to step k. Any other op (attention on ``[B, T, C]``, T folded into
channels, ...) is split evenly over the T steps. Per-step counts always sum
to the total.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.modules import module as nn_module
from torch.utils import _python_dispatch as python_dispatch
from torch.utils._python_dispatch import TorchDispatchMode

from . import rules

aten = torch.ops.aten


def is_neuron(module: nn.Module) -> bool:
    """A spiking-neuron layer: any spikingjelly neuron, or a stateful ``*Node`` module."""
    from spikingjelly.activation_based import base
    from spikingjelly.activation_based.neuron import BaseNode, SimpleBaseNode

    if isinstance(module, (BaseNode, SimpleBaseNode)):
        return True
    return isinstance(module, base.MemoryModule) and type(module).__name__.endswith("Node")


@dataclass
class _Synaptic:
    scope: str
    op: str
    per_group: torch.Tensor  # [T] effective ops per step (time-major rows) or [1] total
    binary: bool  # the input is a spike tensor
    dense: int  # dense MACs (fvcore convention)
    n_rows: int


@dataclass
class _Elementwise:
    scope: str
    op: str
    counts: dict  # kind -> int
    binary: bool = False  # for products: a factor is a spike tensor (-> select)


@dataclass
class _Neuron:
    scope: str
    per_step_spikes: torch.Tensor  # [steps] spike counts (steps = T, or 1 in single-step mode)
    numel: int  # elements of the call's input
    steps: int  # time steps covered by this call


@dataclass
class CountResult:
    """Raw counts of one forward, already split per time step and per sample."""

    T: int
    B: int
    ops: list = field(default_factory=list)  # dicts: layer, op, kind, t, count, dense_macs
    neurons: list = field(default_factory=list)  # dicts: layer, t, spikes, neurons
    unsupported: dict = field(default_factory=dict)  # "scope: op" -> calls
    folded_bn: list = field(default_factory=list)  # scopes of BatchNorms folded into a conv
    module_types: dict = field(default_factory=dict)  # name -> class name
    single_step: bool = False


def layer_names(model: nn.Module) -> dict[int, str]:
    """``id(module) -> layer name`` as reports show it: ``named_modules`` names, the
    root module (whose name is empty) by its class name."""
    return {id(m): n or type(m).__name__ for n, m in model.named_modules()}


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
        self.neuron_ids = {id(m) for m in model.modules() if is_neuron(m)}
        self._fanout = {} if fanout_cache is None else fanout_cache
        self._reset()

    # -- state -----------------------------------------------------------------------------------
    def _reset(self) -> None:
        self._stack: list[str] = []
        self._opaque = 0  # depth inside neuron modules
        self._suspended = False  # this mode is popped while a neuron runs
        self._synaptic_storage: set[int] = set()
        self.events: list = []
        self.unsupported: Counter = Counter()
        self.folded: list[str] = []
        self._hooks: list = []

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
                    self._record_neuron(name, output)
                finally:
                    self._opaque -= 1

    def _record_neuron(self, name: str, out: torch.Tensor) -> None:
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
        self.events.append(_Neuron(name, spikes, numel, steps))

    @property
    def scope(self) -> str:
        return self._stack[-1] if self._stack else ""

    # -- context ---------------------------------------------------------------------------------
    def __enter__(self):
        self._reset()
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
            if self.fold_bn and self._storage(x) in self._synaptic_storage and name.endswith(
                    ("batch_norm", "no_training", "legit", "functional")):
                self.folded.append(scope)
            else:
                self._element(scope, name, {"mac": x.numel()})
        elif packet in rules.ADD_OPS:
            self._element(scope, name, {"ac": rules.out_numel(out)})
        elif packet in rules.MUL_OPS:
            binary = any(rules.is_binary(t) for t in args[:2]  # short-circuits
                         if isinstance(t, torch.Tensor) and t.dim() > 0)
            self.events.append(_Elementwise(scope, name, {"mac": rules.out_numel(out)}, binary))
        elif packet in rules.DIV_OPS:
            b = args[1]
            scalar = not isinstance(b, torch.Tensor) or b.numel() == 1
            self._element(scope, name, {"mac" if scalar else "other": rules.out_numel(out)})
        elif packet in rules.OTHER_OPS:
            self._element(scope, name, {"other": rules.out_numel(out)})
        elif packet in rules.SUM_OPS or packet in rules.MEAN_OPS:
            n_in, n_out = rules.reduction_inputs(args), rules.out_numel(out)
            counts = {"ac": max(n_in - n_out, 0)}
            if packet in rules.MEAN_OPS:
                counts["mac"] = n_out
            self._element(scope, name, counts)
        elif packet in rules.MAX_REDUCE_OPS:
            n_in, n_out = rules.reduction_inputs(args), rules.out_numel(out)
            self._element(scope, name, {"other": max(n_in - n_out, 0)})
        elif packet in rules.AVG_POOL_OPS or packet in rules.MAX_POOL_OPS:
            x, y = args[0], rules.first_tensor(out)
            window = rules.pool_window(x.shape[-(y.dim() - 2):], y.shape[-(y.dim() - 2):]) \
                if y is not None and y.dim() > 2 else 1
            n_out = y.numel() if y is not None else 0
            if packet in rules.AVG_POOL_OPS:
                self._element(scope, name, {"ac": n_out * (window - 1), "mac": n_out})
            else:
                self._element(scope, name, {"other": n_out * (window - 1)})
        else:
            self.unsupported[f"{scope}: {func}"] += 1

    def _element(self, scope: str, name: str, counts: dict) -> None:
        self.events.append(_Elementwise(scope, name, counts))

    @staticmethod
    def _storage(x) -> int:
        try:
            return x.untyped_storage().data_ptr()
        except (RuntimeError, AttributeError):
            return -1

    def _groups(self, n_rows: int) -> int:
        """T when the rows are time-major ``[T*B]``, else 1 (split decided at finalize)."""
        return self.T if n_rows == self.T * self.B else 1

    def _conv(self, scope: str, name: str, args, out) -> None:
        x, w = args[0], args[1]
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
        per_group = rules.active_counts(x, self._groups(n), binary) @ fan
        dense = rules.conv_dense_macs(tuple(x.shape), w, tuple(out.shape), transposed)
        self.events.append(_Synaptic(scope, name, per_group, binary, dense, n))
        self._synaptic_storage.add(self._storage(out))

    def _matmul(self, scope: str, name: str, packet, args, kwargs, out) -> None:
        if packet in (aten.addmm, aten.baddbmm):
            a, b = args[1], args[2]
        else:
            a, b = args[0], args[1]
        a_bin, b_bin = rules.is_binary(a), rules.is_binary(b)
        binary = a_bin or b_bin
        b_nz = rules.nonzero(b, b_bin)
        if a.dim() == 2:  # [N, K] @ [K, M]
            fan = b_nz.sum(1, dtype=torch.float64)  # [K]
            n = a.shape[0]
            per_group = rules.active_counts(a, self._groups(n), a_bin) @ fan
            dense = a.shape[0] * a.shape[1] * b.shape[1]
        else:  # [G, N, K] @ [G, K, M]: rows are the G batch entries
            fan = b_nz.sum(2, dtype=torch.float64)  # [G, K]
            n = a.shape[0]
            a_nz = rules.nonzero(a, a_bin)
            per_row = (a_nz.sum(1).to(torch.float64) * fan).sum(1)  # [G]
            per_group = per_row.reshape(self._groups(n), -1).sum(1)
            dense = a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
        self.events.append(_Synaptic(scope, name, per_group, binary, dense, n))
        self._synaptic_storage.add(self._storage(out))

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

        def steps_of(key, n_rows):
            """Which step an N==B call belongs to in single-step mode, else None."""
            if single_step and n_rows in (B, None):
                k = occurrence[key]
                occurrence[key] += 1
                return k % T
            return None

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
            elif isinstance(e, _Synaptic):
                kind = "ac" if e.binary else "mac"
                groups = e.per_group.cpu().tolist()
                if len(groups) == T and T > 1 or e.n_rows == T * B:
                    per_step = groups if len(groups) == T else [groups[0] / T] * T
                    dense_step = [e.dense / T] * T
                else:
                    t = steps_of((e.scope, e.op), e.n_rows)
                    total = float(sum(groups))
                    if t is not None:
                        per_step = [total if s == t else 0.0 for s in range(T)]
                        dense_step = [e.dense if s == t else 0.0 for s in range(T)]
                    else:
                        per_step = [total / T] * T
                        dense_step = [e.dense / T] * T
                for t in range(T):
                    result.ops.append({"layer": e.scope, "op": e.op, "kind": kind, "t": t,
                                       "count": per_step[t] / B, "dense_macs": dense_step[t] / B})
            else:
                counts = dict(e.counts)
                if e.binary:
                    counts = {"select": sum(counts.values())}
                t_single = steps_of((e.scope, e.op), None) if single_step else None
                for kind, total in counts.items():
                    if total == 0:
                        continue
                    for t in range(T):
                        if t_single is not None:
                            value = float(total) if t == t_single else 0.0
                        else:
                            value = total / T
                        result.ops.append({"layer": e.scope, "op": e.op, "kind": kind, "t": t,
                                           "count": value / B, "dense_macs": 0.0})
        return result

