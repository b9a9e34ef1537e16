"""dta-bench: what spiking-neural-network attention really costs and buys.

Subpackages: :mod:`dta.attention` (attention registry), :mod:`dta.models`
(MS-ResNet backbones), :mod:`dta.data` (datasets), :mod:`dta.measure`
(op counts, firing, energy, latency), :mod:`dta.train`, :mod:`dta.report`.
Tensors are time-first ``[T, B, ...]`` everywhere.
"""

__version__ = "0.1.0"
