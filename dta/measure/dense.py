"""Dense reference counts through fvcore, with handles for what it misses.

fvcore's ``FlopCountAnalysis`` (one fused multiply-add = one flop) traces the
model with ``torch.jit`` and counts convolutions, linear layers, BatchNorm
and pooling. On an SNN it misses: spikingjelly's neuron op
(``sj_lif::forward`` and friends), convolutions with string padding such as
``padding='same'`` (they reach the trace as ``aten::_convolution_mode``; all
of DTA's T-XA convolutions), and every element-wise op (add, mul, sigmoid,
GELU, mean). :func:`dense_reference` adds handles for those and reports the
fvcore part and the added part side by side, so plain-fvcore numbers stay
comparable with published ones.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

#: Keys of the counts produced by our handles (everything else is fvcore's own).
ADDED_PREFIX = "+"


def _shape(value) -> list[int] | None:
    t = value.type()
    try:
        sizes = t.sizes()
    except RuntimeError:
        return None
    return list(sizes) if sizes is not None else None


def _numel(value) -> int:
    shape = _shape(value)
    return math.prod(shape) if shape else 0


def _elementwise(name: str, per_element: int = 1):
    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        return Counter({f"{ADDED_PREFIX}{name}": per_element * _numel(outputs[0])})

    return handle


def _reduction(name: str):
    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        # One addition per input element (fvcore's convention for pooling).
        return Counter({f"{ADDED_PREFIX}{name}": _numel(inputs[0])})

    return handle


def _neuron(name: str):
    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        # One membrane update per neuron per step: the input's elements.
        return Counter({f"{ADDED_PREFIX}neuron:{name}": _numel(inputs[0])})

    return handle


def _conv_mode(inputs: list[Any], outputs: list[Any]) -> Counter:
    """``aten::_convolution_mode(input, weight, bias, stride, padding_str, dilation, groups)``."""
    w = _shape(inputs[1])
    out = _shape(outputs[0])
    if not w or not out:
        return Counter()
    # fvcore's conv convention: output elements x (C_in / groups) x kernel elements.
    return Counter({f"{ADDED_PREFIX}conv(padding=str)": math.prod(out) * math.prod(w[1:])})


def _free(inputs: list[Any], outputs: list[Any]) -> Counter:
    return Counter()


#: op name -> handle, installed on top of fvcore's defaults.
EXTRA_HANDLES = {
    "aten::_convolution_mode": _conv_mode,
    "aten::add": _elementwise("add"),
    "aten::add_": _elementwise("add"),
    "aten::sub": _elementwise("sub"),
    "aten::rsub": _elementwise("sub"),
    "aten::mul": _elementwise("mul"),
    "aten::mul_": _elementwise("mul"),
    "aten::div": _elementwise("div"),
    "aten::sigmoid": _elementwise("sigmoid"),
    "aten::gelu": _elementwise("gelu"),
    "aten::relu": _elementwise("relu"),
    "aten::relu_": _elementwise("relu"),
    "aten::mean": _reduction("mean"),
    "aten::sum": _reduction("sum"),
    "aten::adaptive_max_pool3d": _reduction("adaptive_max_pool3d"),
    "aten::adaptive_max_pool2d": _reduction("adaptive_max_pool2d"),
    "aten::max": _reduction("max"),
    "aten::unflatten": _free,
    "aten::clone": _free,
    "sj_lif::forward": _neuron("lif"),
    "sj_if::forward": _neuron("if"),
    "sj_plif::forward": _neuron("plif"),
    # dta-bench's faithful LIF (dta/neuron.py): one op per layer per multi-step call
    "dta::lif_multistep": _neuron("lif"),
}


@dataclass
class DenseReference:
    """fvcore counts (one fused multiply-add = one) with what fvcore misses beside them."""

    total: int  # fvcore + added
    fvcore: int  # what plain fvcore counts
    added: int  # what our handles add
    by_operator: dict  # op key -> count (added keys start with '+')
    by_module: dict  # module name -> (fvcore part, added part)
    unsupported: dict  # ops neither fvcore nor we count

    def module(self, name: str) -> tuple[int, int]:
        """``(fvcore part, added part)`` of module ``name``."""
        try:
            return self.by_module[name]
        except KeyError:
            raise KeyError(f"no module {name!r} in the dense reference") from None


def dense_reference(model: nn.Module, inputs, *, extra_handles: dict | None = None) -> DenseReference:
    """Trace ``model`` on ``inputs`` with fvcore plus our handles; eval mode, no_grad."""
    from fvcore.nn import FlopCountAnalysis
    from spikingjelly.activation_based import functional

    handles = dict(EXTRA_HANDLES)
    handles.update(extra_handles or {})
    was_training = model.training
    model.eval()
    functional.reset_net(model)
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(model, inputs).set_op_handle(**handles)
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            by_op = dict(analysis.by_operator())
            by_module_op = analysis.by_module_and_operator()
            unsupported = dict(analysis.unsupported_ops())
    finally:
        functional.reset_net(model)
        model.train(was_training)

    def split(counter: dict) -> tuple[int, int]:
        added = sum(v for k, v in counter.items() if k.startswith(ADDED_PREFIX))
        return sum(counter.values()) - added, added

    fv, added = split(by_op)
    return DenseReference(
        total=fv + added, fvcore=fv, added=added, by_operator=by_op,
        by_module={name: split(ops) for name, ops in by_module_op.items()},
        unsupported=unsupported,
    )
