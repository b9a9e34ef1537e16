"""Model-agnostic instrumentation: op counts, firing, energy and latency.

Works on any ``nn.Module`` that takes a time-first ``[T, B, ...]`` input:
dta-bench's models, spikingjelly's model zoo, a user's network, even a
network without spiking neurons. Models are never modified.

>>> from dta.measure import profile
>>> report = profile(model, x)           # x: [T, B, C, H, W]
>>> report.layers                        # per layer, per time step
>>> report.totals["energy_uj"]           # per inference, horowitz45-fp32
"""

from .counter import CountResult, OpCounter, is_neuron
from .energy import (
    DEFAULT_ENERGY_MODEL,
    EnergyModel,
    get_energy_model,
    list_energy_models,
    register_energy_model,
)
from .profile import COMPONENTS, ProfileReport, profile

__all__ = [
    "COMPONENTS",
    "CountResult",
    "DEFAULT_ENERGY_MODEL",
    "EnergyModel",
    "OpCounter",
    "ProfileReport",
    "get_energy_model",
    "is_neuron",
    "list_energy_models",
    "profile",
    "register_energy_model",
]
