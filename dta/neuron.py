"""The faithful DTA-SNN neuron: a spikingjelly ``LIFNode`` that fires strictly above threshold.

The released DTA-SNN code (``LIFSpike``, models/layers.py) runs, per time step::

    mem   = 0.5 * mem + x
    spike = (mem - 1.0 > 0)            # Heaviside, strictly greater
    mem   = (1 - spike) * mem          # hard reset to 0, not detached

with the triangular surrogate gradient ``max(0, 1 - |mem - 1|)``.

Why not spikingjelly's own ``LIFNode`` configuration. ``LIFNode(tau=2.0,
decay_input=False, v_threshold=1.0, v_reset=0.0,
surrogate_function=PiecewiseQuadratic(alpha=1.0), detach_reset=False)`` has the
same charge, reset and surrogate, but every one of its code paths (the Python
reference, the ``sj_lif`` CPU op, the CUDA/Triton kernels) fires at
``v >= v_threshold``. In DTA-SNN equality is common: the block output
``sigmoid(...) * S`` saturates to exactly 1.0 in float32, so the first stage's
membrane lands exactly on the threshold (measured in ``tests/test_equivalence.py``
on a random-weight ``ms_resnet18`` + ``dta``), and a constant input of 1.0 spikes
``0,1,0,1,...`` in the released code but ``1,1,1,...`` with ``>=``.

:class:`FaithfulLIF` is therefore a ``LIFNode`` subclass (so ``reset_net``,
monitors, ``is_neuron`` and the counters keep working) that replaces both
functional transitions:

* single step: spikingjelly's charge/fire/reset with :class:`StrictPiecewiseQuadratic`,
  a spikingjelly surrogate whose forward is the strict Heaviside;
* multi step: the custom op ``dta::lif_multistep`` (one op per layer per call,
  CPU and CUDA, any floating dtype; on CUDA it ran the forwards and training steps of
  ``make gpu-check`` on an H200, float32 and bf16 autocast, but its spikes were not
  compared with the released loop there) whose
  forward issues three element-wise
  kernels per step and whose hand-written BPTT backward issues five, with the
  released rule's spikes and gradients bit for bit. Measured with torch.profiler
  on a [T, 64, 16, 8, 8] input (``tests/test_neuron.py`` asserts ours <= released):
  78 element-wise ATen calls for forward + backward at T=4 against the released
  loop's 146, and 106 against 220 at T=6. ``store_v_seq=True`` uses the single-step
  path, as spikingjelly does.

Floating point: ``0.5 * mem`` is exact, so ``mem + 0.5 * v`` rounds once either
way and the membranes (hence spikes) are bit-identical to the released loop;
``fl(mem - 1) > 0`` iff ``mem > 1`` (with gradual underflow), so comparing ``mem >
1`` directly is the same test. The backward rounds in autograd's order, so
gradients are bit-identical too (``tests/test_neuron.py``, float32 and float64).
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import neuron, surrogate
from torch import nn

#: Keyword arguments of the faithful LIF's spikingjelly base class.
FAITHFUL_LIF_KWARGS = dict(
    tau=2.0,  # spikingjelly 2.0 asserts a float tau
    decay_input=False,
    v_threshold=1.0,
    v_reset=0.0,
    detach_reset=False,
)


# ---------------------------------------------------------------------------------------------
# Single step: a spikingjelly surrogate with the strict Heaviside.
class _StrictHeaviside(torch.autograd.Function):
    """``(x > 0)`` forward, triangular ``max(0, 1 - alpha^2 |x|)``-style gradient backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        if x.requires_grad:
            ctx.save_for_backward(x)
            ctx.alpha = alpha
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        alpha = ctx.alpha
        # PiecewiseQuadratic's gradient: -alpha^2 |x| + alpha on |x| < 1/alpha, 0 outside.
        sg = (alpha - alpha * alpha * x.abs()).clamp_min(0)
        return grad * sg, None


class StrictPiecewiseQuadratic(surrogate.SurrogateFunctionBase):
    """spikingjelly's ``PiecewiseQuadratic`` surrogate with a strict Heaviside forward.

    Forward ``x > 0`` (spikingjelly's surrogates fire at ``x >= 0``); backward
    ``max(0, alpha - alpha^2 |x|)``, with ``alpha = 1`` the released ``1 - |x|``.
    """

    def __init__(self, alpha: float = 1.0, spiking: bool = True):
        super().__init__(spiking=spiking, alpha=alpha)

    @staticmethod
    def spiking_function(x, alpha):
        return _StrictHeaviside.apply(x, alpha)

    @staticmethod
    def primitive_function(x, alpha):
        return surrogate.PiecewiseQuadratic.primitive_function(x, alpha)


# ---------------------------------------------------------------------------------------------
# Multi step: one custom op with a hand-written BPTT backward.
@torch.library.custom_op("dta::lif_multistep", mutates_args=())
def lif_multistep(x_seq: torch.Tensor, v: torch.Tensor, threshold: float
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Released LIF over ``x_seq [T, ...]`` from membrane ``v [...]``.

    Returns ``(spikes [T, ...], v_last [...], h [T, ...])``: spikes in ``x_seq``'s dtype,
    the membrane after the last reset, and the charged membranes before each reset
    (saved for the backward pass).
    """
    h = torch.empty_like(x_seq, memory_format=torch.contiguous_format)
    spikes = torch.empty_like(h)
    v = v.to(x_seq.dtype)
    for t in range(x_seq.shape[0]):
        ht = torch.add(x_seq[t], v, alpha=0.5, out=h[t])  # mem = 0.5 * mem + x (0.5*v exact)
        st = torch.gt(ht, threshold, out=spikes[t])  # strictly above, written as 0/1 floats
        v = torch.addcmul(ht, ht, st, value=-1)  # hard reset: h - h*s is h or exactly 0
    return spikes, v.clone() if x_seq.shape[0] == 0 else v, h


@lif_multistep.register_fake
def _(x_seq, v, threshold):
    # Contiguous, as the kernel's outputs (compilers check the strides against the kernel's).
    h = torch.empty_like(x_seq, memory_format=torch.contiguous_format)
    return torch.empty_like(h), h.new_empty(h.shape[1:]), h


def _lif_setup(ctx, inputs, output):
    ctx.threshold = inputs[2]
    ctx.save_for_backward(output[2])
    ctx.mark_non_differentiable(output[2])
    ctx.set_materialize_grads(False)


def _lif_backward(ctx, g_spikes, g_v, g_h):
    """BPTT of the released recurrence, from the charged membranes ``h``.

    With ``s_t = H(h_t - thr)``, ``sg_t = max(0, 1 - |h_t - thr|)`` and the reset
    ``v_t = (1 - s_t) h_t`` (not detached), ``u_t = dL/dh_t`` is
    ``u_t = g_t (1 - s_t) + (gs_t - g_t h_t) sg_t`` with ``g_t = dL/dv_t`` and
    ``dL/dv_{t-1} = u_t / 2``. The terms are rounded in the order autograd
    rounds them on the released loop, so the gradients are bit-identical
    (``tests/test_neuron.py``); ``sg`` and ``1 - s`` are computed for all steps
    at once, leaving five element-wise kernels per step.
    """
    (h,) = ctx.saved_tensors
    thr = ctx.threshold
    T = h.shape[0]
    gx = torch.empty_like(h)
    if T == 0:
        return gx, g_v, None
    sg = (1 - (h - thr).abs()).clamp_min_(0)
    keep = torch.le(h, thr, out=torch.empty_like(h))  # 1 - s
    gs = g_spikes if g_spikes is not None else torch.zeros_like(h)
    last = T - 1

    def step(t, g, g_keep, g_h):  # u_t = g (1 - s_t) + (gs_t - g h_t) sg_t, rounded as autograd
        a = g * g_keep
        b = torch.mul(g, g_h)
        torch.sub(gs[t], b, out=b).mul_(sg[t])  # (no fused multiply-add: it rounds once)
        torch.add(a, b, out=gx[t])

    if g_v is None:
        torch.mul(gs[last], sg[last], out=gx[last])
    else:
        step(last, g_v, keep[last], h[last])
    # For t < T-1, g_t = u_{t+1} / 2: fold the (exact) halving into keep and h, so that
    # g*keep = u*(keep/2) and g*h = u*(h/2) round exactly as autograd's products do.
    half_keep, half_h = keep.mul_(0.5), h * 0.5
    for t in range(last - 1, -1, -1):
        step(t, gx[t + 1], half_keep[t], half_h[t])
    return gx, gx[0] * 0.5, None


lif_multistep.register_autograd(_lif_backward, setup_context=_lif_setup)


class FaithfulLIF(neuron.LIFNode):
    """The released DTA-SNN LIF as a spikingjelly ``LIFNode`` (strict ``>`` threshold).

    ``tau=2``, no input decay, threshold 1, hard reset to 0 (not detached),
    triangular surrogate. Input and output ``[T, B, ...]`` in step mode ``'m'``
    (``[B, ...]`` in ``'s'``); spikes in the input's dtype (0/1).
    """

    def __init__(self, step_mode: str = "m", store_v_seq: bool = False):
        super().__init__(surrogate_function=StrictPiecewiseQuadratic(alpha=1.0),
                         step_mode=step_mode, store_v_seq=store_v_seq, **FAITHFUL_LIF_KWARGS)

    def single_step_functional_forward(self, inputs, states, **kwargs):
        x, v = inputs[0], states[0]
        h = v * 0.5 + x  # v - v / tau + x with tau = 2, v_reset = 0: exact
        spike = self.surrogate_function(h - self.v_threshold)
        v = (1.0 - spike) * h
        return (spike,), (v, *states[1:])

    def multi_step_functional_forward(self, inputs, states, **kwargs):
        spikes, v, _ = lif_multistep(inputs[0], states[0], float(self.v_threshold))
        return (spikes,), (v, *states[1:])

    def multi_step_forward(self, x_seq: torch.Tensor, *args, **kwargs):
        if self.store_v_seq:  # spikingjelly's per-step loop over our single step
            return neuron.BaseNode.multi_step_forward(self, x_seq, *args, **kwargs)
        states = self.materialize_states((x_seq,), tuple(self._memories.values()), "m")
        (spikes,), (v,) = self.multi_step_functional_forward((x_seq,), states)
        self._memories["v"] = v
        return spikes


def faithful_lif(step_mode: str = "m") -> FaithfulLIF:
    """A fresh LIF layer that reproduces the released DTA-SNN neuron."""
    return FaithfulLIF(step_mode=step_mode)


def _relu() -> nn.Module:
    return nn.ReLU()


#: Activation layers a backbone can be built with: ``lif`` (the SNN) or ``relu``
#: (the ANN it would replace: same layers, ReLU in every neuron's place, run at T=1).
NEURONS = {"lif": faithful_lif, "relu": _relu}


def create_neuron(kind: str = "lif") -> nn.Module:
    """A fresh activation layer of ``kind`` (one of :data:`NEURONS`), time-first ``[T, B, ...]``."""
    try:
        return NEURONS[kind]()
    except KeyError:
        raise ValueError(f"unknown neuron {kind!r}; known: {', '.join(NEURONS)}") from None
