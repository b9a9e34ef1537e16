"""The faithful DTA-SNN neuron as a spikingjelly ``LIFNode`` configuration.

The released DTA-SNN code (``LIFSpike``) runs, per time step::

    mem   = 0.5 * mem + x
    spike = (mem - 1.0 > 0)            # Heaviside, strictly greater
    mem   = (1 - spike) * mem          # hard reset to 0, not detached

with a triangular surrogate gradient ``max(0, 1 - |mem - 1|)``.

In spikingjelly terms that is ``LIFNode(tau=2.0, decay_input=False,
v_threshold=1.0, v_reset=0.0, surrogate_function=PiecewiseQuadratic(alpha=1.0),
detach_reset=False)``: with ``decay_input=False`` and ``v_reset=0`` the charge
is ``H = V - V/tau + X = 0.5*V + X``; ``PiecewiseQuadratic(alpha=1)`` has the
gradient ``1 - |x|`` on ``|x| <= 1`` (0 outside).

Equality edge case: spikingjelly fires when ``H >= v_threshold``; the released
code fires when ``mem > 1``. The two differ only when the membrane equals the
threshold exactly (``mem == 1.0`` in floating point), an event of probability
zero for continuous inputs; ``tests/test_neuron.py`` checks identical spikes
and gradients on random inputs and pins the edge case down explicitly.
"""

from __future__ import annotations

from spikingjelly.activation_based import neuron, surrogate

#: Keyword arguments of the faithful LIF, for users who build their own layers.
FAITHFUL_LIF_KWARGS = dict(
    tau=2.0,  # spikingjelly 2.0 asserts a float tau
    decay_input=False,
    v_threshold=1.0,
    v_reset=0.0,
    detach_reset=False,
)


def faithful_lif(step_mode: str = "m") -> neuron.LIFNode:
    """A fresh LIF layer that reproduces the released DTA-SNN neuron.

    Input and output are ``[T, B, ...]`` in step mode ``'m'`` (spikes are float 0/1).
    """
    return neuron.LIFNode(
        surrogate_function=surrogate.PiecewiseQuadratic(alpha=1.0),
        step_mode=step_mode,
        **FAITHFUL_LIF_KWARGS,
    )
