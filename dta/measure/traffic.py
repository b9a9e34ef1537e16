"""Memory traffic: what every counted op reads and writes, and its conversion to bytes.

The counter (:mod:`dta.measure.counter`) records, beside the op counts of
each (layer, op, time step), how many *elements* the op moves, per sample.
Bytes depend on the energy model's word width, so they are computed here,
after the forward, from the element counts:

* spikes (``{0, 1}`` tensors) move as **1 bit** per element;
* real values move at the model's **word width** (``word_bits``, 32 for
  every built-in model but ``horowitz45-fp16`` / ``-int8``);
* activation-function outputs (ReLU & co., see
  :data:`dta.measure.rules.ACTIVATION_OPS`) are real values kept apart
  (``in_act`` / ``out_act``) so that :func:`dta.measure.qnn_energy` can
  re-price them at a quantized width.

The canonical traffic rules (the ``*_bytes`` columns of ``report.layers``).
Reuse assumption: **no reuse of weights in registers, across output
positions, samples or time steps** (every synaptic operation reads its
weight, as spikingjelly's ``op_counter`` assumes), and **perfect reuse of
activations within one op** (each input element is read once, each output
element written once):

=====================  =========================================================
op class               traffic per call
=====================  =========================================================
conv / linear / mm     weights: one word per synaptic operation (the effective
                       ACs or MACs); bias: one word per output element; input:
                       every element once; output: every element once. A matrix
                       product of two activations reads both operands instead
                       of weights.
element-wise, sums,    every tensor operand read once (a parameter operand, e.g.
means, pools, GELU,    a learnable scale, is a weight read once per output
sigmoid, comparisons   element); the output written once. 0-d constants are free.
BatchNorm, folded      nothing moves but the folded shift: one bias word per
                       element when the conv it folds into had no bias.
BatchNorm, unfolded    input once, output once, scale and shift: two weight
(and Layer/GroupNorm)  words per element.
spiking neuron         per membrane update: one state read and one state write
                       per state tensor (``v`` for LIF); input current read once
                       (word); spikes written once (1 bit each).
data movement          views, copies, padding, concatenation, casts
(``FREE_OPS``)         (:data:`dta.measure.rules.FREE_OPS`): no traffic; the
                       consumer of the data pays for reading it.
=====================  =========================================================

Any other op is unsupported for traffic exactly as for operations: it is
listed in ``report.unsupported`` and counts nothing.

Columns of ``report.traffic`` (per sample and time step; words and
elements, never bytes):

``w_reads``, ``b_reads``
    weight and bias words read.
``s_reads``, ``s_writes``
    neuron-state words read and written (also the state size of that
    neuron layer for one step, which the hierarchy model uses).
``in_spike``, ``in_act``, ``in_real``; ``out_spike``, ``out_act``, ``out_real``
    activation elements read / written: spikes, activation-function outputs,
    other real values.
``nnz_in``
    nonzero input elements of a synaptic op whose input is a spike tensor
    (the input events of Lemaire et al.'s model).
``ev_mem``, ``ev_ops``
    per input event, the weights touched (``C_out/groups * prod(kernel)``,
    or the output features) and Lemaire et al.'s operation fan-out
    (``C_out/groups * prod(ceil(kernel/stride))``), summed over events.
``kernel_words``
    ``C_out * prod(kernel)`` once per sample and step of a convolution on a
    real input (Lemaire et al.'s addressing term).
``param_words``
    capacity, not traffic: the parameter elements of the layer (all its own
    parameters; the op's weight and bias when the layer owns none).
"""

from __future__ import annotations

import math

import numpy as np

#: Additive traffic columns (elements or words per sample and step).
TRAFFIC_FIELDS = ("w_reads", "b_reads", "s_reads", "s_writes", "in_spike", "in_act", "in_real",
                  "out_spike", "out_act", "out_real", "nnz_in", "ev_mem", "ev_ops", "kernel_words")

#: Byte categories of the canonical rules, as ``report.layers`` columns.
BYTE_COLUMNS = ("weight_bytes", "bias_bytes", "state_bytes", "act_read_bytes",
                "act_write_bytes")


def check_bits(bits, what: str = "word width") -> int:
    """A positive integer number of bits, or a one-line ``ValueError`` that says how to fix it."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits <= 0:
        raise ValueError(f"{what} must be a positive integer number of bits, got {bits!r} "
                         "(e.g. 32 for float32, 8 for int8)")
    return int(bits)


def activation_bits(T: int) -> int:
    """Bits of the QNN activation equivalent to ``T`` binary time steps: ``ceil(log2(T + 1))``.

    A spike train of ``T`` steps carries a count in ``0..T`` (Yan et al.,
    arXiv 2409.08290): ``T + 1`` levels need ``ceil(log2(T + 1))`` bits.
    """
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be a positive integer number of time steps, got {T!r}")
    return max(1, math.ceil(math.log2(int(T) + 1)))


def canonical_bytes(rows, word_bits: int, act_bits: int | None = None) -> dict[str, np.ndarray]:
    """Bytes per row of ``rows`` (a frame or mapping with :data:`TRAFFIC_FIELDS`), by category.

    ``word_bits``: width of real values; ``act_bits``: width of activation-function
    outputs (default ``word_bits``). Spikes are 1 bit. Returns arrays keyed by
    :data:`BYTE_COLUMNS`.
    """
    memo = getattr(rows, "memo", None)  # count rows keep what was computed from them
    if memo is not None and (word_bits, act_bits) in memo:
        return memo[word_bits, act_bits]
    w = check_bits(word_bits) / 8.0
    a = w if act_bits is None else check_bits(act_bits, "activation width") / 8.0
    col = lambda name: np.asarray(rows[name], dtype=np.float64)  # noqa: E731
    out = {
        "weight_bytes": col("w_reads") * w,
        "bias_bytes": col("b_reads") * w,
        "state_bytes": (col("s_reads") + col("s_writes")) * w,
        "act_read_bytes": col("in_spike") / 8.0 + col("in_act") * a + col("in_real") * w,
        "act_write_bytes": col("out_spike") / 8.0 + col("out_act") * a + col("out_real") * w,
    }
    if memo is not None:
        memo[word_bits, act_bits] = out
    return out
