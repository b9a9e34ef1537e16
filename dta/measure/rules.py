"""The rule table: how each ATen operator is counted.

Op kinds (what a count means):

``ac``
    An accumulate (an addition). Synaptic layers (convolutions, linear layers,
    matrix products) whose input is a spike tensor count their *effective*
    ACs here; element-wise additions, subtractions and the sums inside means
    and average pools count one AC per addition.
``mac``
    A multiply-accumulate. Synaptic layers with real-valued input count their
    effective MACs here; real x real element-wise products, products by a
    real scalar, the scale of a mean / average pool and unfolded BatchNorm
    (one fused multiply-add per element) count one MAC each.
``other``
    Everything that is neither: sigmoid, GELU, tanh, exp, division, ReLU and
    comparisons (max-pool, max), softmax. One per output element, or per
    comparison for reductions.
``select``
    A product with a spike tensor (every element in {0, 1}): a gate that
    passes or zeroes a value, no arithmetic. Counted, priced by the energy model.

Spike tensor: every element is 0 or 1 (``bool`` or floating), the rule of
spikingjelly's ``op_counter`` (``is_binary_tensor``).

Effective counts (NeuroBench's Effective_ACs): the layer run on the nonzero
indicator of its input with every nonzero weight set to 1 and no bias,
summed. We compute it as ``indicator(x) . F`` where ``F`` (the fan-out of each
input element, a property of the layer) comes from the adjoint of the
operator, so it is exact at borders and for stride, dilation and groups.
Dense MACs use fvcore's convention: output elements x (C_in / groups) x kernel.

Data movement (views, copies, padding, concatenation, dtype casts) is free
and listed in ``FREE_OPS``. Any other operator is reported as *unsupported*;
nothing is silently counted as zero.

Every operator class below also has a memory-traffic rule (weights, biases,
activations read and written); :mod:`dta.measure.traffic` states them. An
unsupported operator has neither rule.
"""

from __future__ import annotations

import math
import re
from typing import Callable

import torch

aten = torch.ops.aten

KINDS = ("ac", "mac", "other", "select")


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_floating_point() else x.to(torch.float32)


def indicator(x: torch.Tensor) -> torch.Tensor:
    """Float indicator of the nonzero elements (NaN counts as nonzero)."""
    return x.bool().to(x.dtype if x.is_floating_point() else torch.float32)


def nonzero(x: torch.Tensor, binary: bool) -> torch.Tensor:
    """Float indicator of the nonzero elements; a spike tensor (``binary``) is its own."""
    return _as_float(x) if binary else indicator(x)


def is_binary(x: torch.Tensor, head: bool = True, work: torch.Tensor | None = None) -> bool:
    """Every element of ``x`` is 0 or 1 (spikingjelly's spike-tensor rule), exactly.

    ``x*x == x`` element for element (``torch.equal``, which compares values: -0 equals
    0, NaN equals nothing), then ``max(x) <= 1``: ``fl(x*x) == x`` only at 0, 1 and +inf
    (below 1 the square is smaller, above 1 larger, negative numbers square to
    positives, tiny ones underflow). Two answers are read on the host (the comparison's
    and the max's), no sum. ``head=False`` skips the
    look at a sample of the elements first (for tensors expected to hold spikes);
    ``work``: a tensor shaped like ``x`` of its dtype to write the square into (instead
    of a new one).
    """
    if x.dtype == torch.bool:
        return True
    n = x.numel()
    if n == 0:
        return False
    xf = _as_float(x)
    if head and n > 4 * _HEAD and xf.device.type == "cpu" and xf.is_contiguous():
        # A real-valued tensor almost always shows a non-{0, 1} value among ~1000 elements
        # taken across it (not only the first ones: a region may be all zeros): that settles
        # it without squaring the whole tensor. The sample is _CHUNKS runs of contiguous
        # elements spread over the tensor (one strided view).
        sample = xf.as_strided((_CHUNKS, _HEAD // _CHUNKS), (n // _CHUNKS, 1),
                               xf.storage_offset())
        if not torch.equal(sample * sample, sample):
            return False
    if work is not None and xf is x:
        square = torch.mul(xf, xf, out=work)
    else:
        square = xf * xf
    return torch.equal(square, xf) and bool(xf.amax() <= 1)


_HEAD = 1024
_CHUNKS = 16


def active_counts(x: torch.Tensor, groups: int, binary: bool,
                  work: torch.Tensor | None = None, per_channel: bool = True,
                  lead: int = 1, raw: bool = False) -> torch.Tensor:
    """``[groups, features]`` float64 counts of nonzero rows per feature.

    ``x`` is ``[N, ...]``; its N rows are summed in ``groups`` equal consecutive
    blocks (``groups=T`` for a time-major ``[T*B, ...]`` input). A spike tensor
    is its own indicator; other inputs are counted through their nonzero mask
    (NaN counts as nonzero). Sums accumulate in float32
    while every count stays below 2**24 (exact), else in float64, and are
    returned as float64 for the dot product with the fan-out (exact below
    2**53). ``work``: a float32 tensor shaped like ``x`` to write the mask into as
    0/1 values, summed as it is (one comparison pass and one sum: a bool mask would
    be converted to float32 in a temporary as large again as the work tensor).
    ``lead``: how many leading dimensions make the rows (2 for a multi-step
    ``[T, B, ...]`` input, read as ``[T*B, ...]`` without a view of its own).
    ``raw=True``: the sums as accumulated (float32, or float64 past 2**24), not
    converted.

    ``per_channel=False`` (for ``x`` of shape ``[N, C, *spatial]`` read by a
    convolution whose fan-out is the same for every input channel, see
    :func:`conv_fanout_spatial`): the channels are summed too, features are the
    spatial positions (``[groups, prod(spatial)]``).
    """
    shape = x.shape
    n = shape[0] if lead == 1 else math.prod(shape[:lead])
    rows = n // groups
    channels = per_channel or x.dim() < lead + 2
    c = 1 if channels else shape[lead]
    dtype = torch.float32 if rows * c < 1 << 24 else torch.float64
    if binary:
        src = x
    elif work is None:
        src = x.bool().view(torch.uint8)
    else:
        src = torch.ne(x, 0, out=work)
    if channels:
        out = src.reshape(groups, rows, -1).sum(1, dtype=dtype)
    else:
        s = x.numel() // (n * c) if n * c else 0  # spatial positions (shapes only: no op)
        if s >= _WIDE_ROWS:  # one reduction over (rows, channels): fastest with long rows
            out = src.reshape(groups, rows * c, s).sum(1, dtype=dtype)
        else:  # short rows: over the rows first (wide features), then the few channels
            out = src.reshape(groups, rows, c * s).sum(1, dtype=dtype).reshape(
                groups, c, s).sum(1)
    return out if raw else out.to(torch.float64)


#: spatial size from which :func:`active_counts` sums ``[groups, rows*C, S]`` over its
#: middle dimension in one pass; below it, over the rows then the channels (which order is
#: faster was timed on CPU for the conv inputs of ``tests/perf``'s networks; either gives
#: the same counts).
_WIDE_ROWS = 16


# ---------------------------------------------------------------------------
# Fan-out vectors (cached by the counter: they depend on weights and shapes only)


def conv_fanout(x_shape, weight, stride, padding, dilation, transposed, output_padding, groups):
    """``F`` of shape ``x_shape[1:]``: how many (output, nonzero-weight) pairs each input feeds.

    ``sum(conv(x, w != 0)) == (x * F).sum()`` for every ``x``: ``F`` is the
    adjoint operator (a transposed convolution for a convolution and vice
    versa) applied to a tensor of ones shaped like one output sample.
    """
    d = weight.dim() - 2
    in_spatial = list(x_shape[2:])
    k = list(weight.shape[2:])
    if not transposed and int(torch.count_nonzero(weight)) == weight.numel():
        return _dense_conv_fanout(x_shape, weight, stride, padding, dilation, groups)
    mask = (weight != 0).to(torch.float64)
    if transposed:
        out_spatial = [
            (i - 1) * s - 2 * p + dl * (kk - 1) + op + 1
            for i, s, p, dl, kk, op in zip(in_spatial, stride, padding, dilation, k, output_padding)
        ]
        ones = torch.ones((1, weight.shape[1] * groups, *out_spatial), dtype=torch.float64,
                          device=weight.device)
        fan = _conv(d)(ones, mask, None, stride, padding, dilation, groups)
    else:
        out_spatial = [
            (i + 2 * p - dl * (kk - 1) - 1) // s + 1
            for i, s, p, dl, kk in zip(in_spatial, stride, padding, dilation, k)
        ]
        # output_padding recovers the input size lost to the forward's floor division
        adj_pad = [
            i - ((o - 1) * s - 2 * p + dl * (kk - 1) + 1)
            for i, o, s, p, dl, kk in zip(in_spatial, out_spatial, stride, padding, dilation, k)
        ]
        ones = torch.ones((1, weight.shape[0], *out_spatial), dtype=torch.float64,
                          device=weight.device)
        fan = _convt(d)(ones, mask, None, stride, padding, adj_pad, groups, dilation)
    return fan[0]


def conv_fanout_spatial(x_shape, weight, stride, padding, dilation, groups) -> torch.Tensor:
    """:func:`conv_fanout` of a (not transposed) convolution whose weight has no zeros, for
    one input channel: ``[prod(spatial)]``, the same for every channel. Each input element
    feeds ``C_out / groups`` channels at every (output position, kernel tap) pair that lands
    on it, a product over spatial dimensions of per-dimension counts (closed form)."""
    fan = torch.tensor(float(weight.shape[0] // groups), dtype=torch.float64)
    for i, s, p, dl, kk in zip(x_shape[2:], stride, padding, dilation, weight.shape[2:]):
        o = (i + 2 * p - dl * (kk - 1) - 1) // s + 1
        pos = (torch.arange(max(o, 0))[:, None] * s - p
               + torch.arange(kk)[None, :] * dl).reshape(-1)
        pos = pos[(pos >= 0) & (pos < i)]
        count = torch.bincount(pos, minlength=i).to(torch.float64)
        fan = fan[..., None] * count
    return fan.reshape(-1).to(weight.device)


def _dense_conv_fanout(x_shape, weight, stride, padding, dilation, groups) -> torch.Tensor:
    """:func:`conv_fanout` of a weight without zeros (every channel has the spatial one)."""
    fan = conv_fanout_spatial(x_shape, weight, stride, padding, dilation, groups)
    return fan.reshape(x_shape[2:]).expand(x_shape[1], *x_shape[2:])


def _conv(d: int) -> Callable:
    return {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
            3: torch.nn.functional.conv3d}[d]


def _convt(d: int) -> Callable:
    return {1: torch.nn.functional.conv_transpose1d, 2: torch.nn.functional.conv_transpose2d,
            3: torch.nn.functional.conv_transpose3d}[d]


def conv_dense_macs(x_shape, weight, out_shape, transposed) -> int:
    """fvcore's convention: MACs = output elements x (C_in / groups) x kernel elements."""
    kernel = math.prod(weight.shape[2:])
    if transposed:  # each input element meets C_out/groups x kernel weights
        return math.prod(x_shape) * weight.shape[1] * kernel
    return math.prod(out_shape) * weight.shape[1] * kernel


# ---------------------------------------------------------------------------
# Operator classes


#: Operators that only move or re-view data.
FREE_OPS = frozenset(
    getattr(aten, name)
    for name in (
        "view", "_unsafe_view", "reshape", "_reshape_alias", "transpose", "permute", "t",
        "expand", "expand_as", "unsqueeze", "squeeze", "select", "slice", "alias", "detach",
        "clone", "contiguous", "_to_copy", "to", "copy_", "copy", "empty", "empty_like",
        "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full", "full_like",
        "fill_", "zero_", "new_empty", "new_zeros", "new_ones", "new_full", "lift_fresh",
        "lift_fresh_copy", "cat", "stack", "split", "split_with_sizes", "chunk", "unbind",
        "narrow", "as_strided", "flatten", "unflatten", "constant_pad_nd", "repeat",
        "view_as", "_local_scalar_dense", "scalar_tensor", "arange", "index_select",
        "gather", "flip", "roll", "randn", "rand", "randint", "normal_", "uniform_",
        "bernoulli_", "set_", "resize_", "_has_compatible_shallow_copy_type", "item",
        "is_same_size", "sym_size", "sym_stride", "sym_numel", "sym_storage_offset",
        "_index_put_impl_", "squeeze_", "unsqueeze_", "as_strided_", "detach_",
    )
    if hasattr(aten, name)
)

#: Free operators that only re-view their input (they never write to it).
VIEW_OPS = frozenset(
    getattr(aten, name)
    for name in (
        "view", "_unsafe_view", "reshape", "_reshape_alias", "transpose", "permute", "t",
        "expand", "expand_as", "unsqueeze", "squeeze", "select", "slice", "alias", "detach",
        "split", "split_with_sizes", "chunk", "unbind", "narrow", "as_strided", "flatten",
        "unflatten", "view_as", "sym_size", "sym_stride", "sym_numel", "sym_storage_offset",
        "is_same_size",
    )
    if hasattr(aten, name)
)

#: One ``ac`` per output element.
ADD_OPS = frozenset(getattr(aten, n) for n in ("add", "add_", "sub", "sub_", "rsub"))
#: One ``mac`` per output element (``select`` when one factor is a spike tensor).
MUL_OPS = frozenset(getattr(aten, n) for n in ("mul", "mul_"))
#: One ``other`` per output element.
OTHER_OPS = frozenset(
    getattr(aten, n)
    for n in (
        "sigmoid", "sigmoid_", "tanh", "tanh_", "gelu", "gelu_", "silu", "silu_", "exp",
        "exp_", "log", "sqrt", "rsqrt", "erf", "pow", "reciprocal", "relu", "relu_",
        "threshold", "clamp", "clamp_", "clamp_min", "clamp_max", "hardtanh", "hardtanh_",
        "abs", "neg", "sign", "ge", "gt", "le", "lt", "eq", "ne", "maximum", "minimum",
        "_softmax", "_log_softmax", "softplus", "leaky_relu", "leaky_relu_", "elu", "where",
        "heaviside", "logical_and", "logical_or", "logical_not", "bitwise_and",
        "bitwise_or", "masked_fill", "masked_fill_",
    )
    if hasattr(aten, n)
)
#: Activation functions (a subset of ``OTHER_OPS``): their outputs are the real-valued
#: activations that a quantized network stores at low width (``qnn_energy``).
ACTIVATION_OPS = frozenset(
    getattr(aten, n)
    for n in ("relu", "relu_", "threshold", "hardtanh", "hardtanh_", "leaky_relu",
              "leaky_relu_", "clamp_min")
    if hasattr(aten, n)
)
DIV_OPS = frozenset(getattr(aten, n) for n in ("div", "div_"))
#: Sums along dims: (in - out) additions.
SUM_OPS = frozenset(getattr(aten, n) for n in ("sum",))
MEAN_OPS = frozenset(getattr(aten, n) for n in ("mean",))
#: Comparisons along dims: (in - out) comparisons, kind ``other``.
MAX_REDUCE_OPS = frozenset(getattr(aten, n) for n in ("max", "amax", "min", "amin", "argmax"))
AVG_POOL_OPS = frozenset(
    getattr(aten, n)
    for n in ("avg_pool1d", "avg_pool2d", "avg_pool3d", "_adaptive_avg_pool2d",
              "_adaptive_avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
              "adaptive_avg_pool3d")
    if hasattr(aten, n)
)
MAX_POOL_OPS = frozenset(
    getattr(aten, n)
    for n in ("max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices",
              "max_pool3d_with_indices", "adaptive_max_pool1d", "adaptive_max_pool2d",
              "adaptive_max_pool3d")
    if hasattr(aten, n)
)
BATCH_NORM_OPS = frozenset(
    getattr(aten, n)
    for n in ("native_batch_norm", "_native_batch_norm_legit",
              "_native_batch_norm_legit_no_training", "_native_batch_norm_legit_functional",
              "batch_norm", "cudnn_batch_norm", "miopen_batch_norm", "native_layer_norm",
              "native_group_norm")
    if hasattr(aten, n)
)
CONV_OPS = frozenset(getattr(aten, n) for n in ("convolution", "_convolution"))
MATMUL_OPS = frozenset(getattr(aten, n) for n in ("mm", "addmm", "bmm", "baddbmm"))


def out_numel(out) -> int:
    if isinstance(out, torch.Tensor):
        return out.numel()
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0].numel()
    return 0


def first_tensor(out) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for item in out:
            if isinstance(item, torch.Tensor):
                return item
    return None


def reduction_inputs(args) -> int:
    """Number of input elements of a reduction or pooling op."""
    x = args[0]
    return x.numel() if isinstance(x, torch.Tensor) else 0


def pool_kernel(name: str, args, out) -> int | None:
    """Elements per window of a fixed-kernel pool (its ``kernel_size``), ``None`` for an
    adaptive pool (whose window follows from the shapes)."""
    if "adaptive" in name or len(args) < 2 or out is None:
        return None
    kernel = args[1]
    kernel = [kernel] if isinstance(kernel, int) else list(kernel)
    match = re.search(r"pool([123])d", name)
    if len(kernel) == 1 and match:  # a single size stands for every spatial dimension
        kernel = kernel * int(match.group(1))
    return math.prod(kernel) if kernel else None


def pool_window(in_shape, out_shape) -> int:
    """Elements per window of an (adaptive) pool: prod(ceil(in / out)) over spatial dims."""
    window = 1
    for i, o in zip(in_shape, out_shape):
        window *= -(-i // max(o, 1))
    return window
