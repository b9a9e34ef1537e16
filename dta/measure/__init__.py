"""Model-agnostic instrumentation: op counts, firing, energy and latency.

Works on any ``nn.Module`` that takes a time-first ``[T, B, ...]`` input:
dta-bench's models, spikingjelly's model zoo, a user's network, even a
network without spiking neurons. Models are never modified.

>>> from dta.measure import profile
>>> report = profile(model, x)           # x: [T, B, C, H, W]
>>> report.layers                        # per layer, per time step
>>> report.totals["energy_uj"]           # per inference, horowitz45-fp32
>>> report.totals["memory_uj_by_model"]  # memory energy, per memory-aware model
>>> report.layers[["layer", "t", "ac", "bytes"]]  # bytes beside op counts
>>> qnn_energy(ann_report, T=4)          # the quantized-ANN equivalent of a T=4 SNN
>>> compare_neurobench(model, x)         # the same counts beside NeuroBench's
"""

from .counter import CountResult, OpCounter, forget, is_neuron
from .crosscheck import (compare_neurobench, compare_spikingjelly, fold_batchnorm,
                         neurobench_synops, spikingjelly_simple_energy)
from .energy import (
    DEFAULT_ENERGY_MODEL,
    EnergyModel,
    Hierarchy,
    Lemaire2022,
    MemoryPrice,
    PerBit,
    get_energy_model,
    list_energy_models,
    register_energy_model,
)
from .profile import COMPONENTS, ProfileReport, profile
from .qnn import qnn_energy
from .traffic import activation_bits

__all__ = [
    "COMPONENTS",
    "CountResult",
    "DEFAULT_ENERGY_MODEL",
    "EnergyModel",
    "Hierarchy",
    "Lemaire2022",
    "MemoryPrice",
    "PerBit",
    "activation_bits",
    "OpCounter",
    "compare_neurobench",
    "compare_spikingjelly",
    "fold_batchnorm",
    "forget",
    "spikingjelly_simple_energy",
    "ProfileReport",
    "get_energy_model",
    "is_neuron",
    "list_energy_models",
    "neurobench_synops",
    "profile",
    "qnn_energy",
    "register_energy_model",
]
