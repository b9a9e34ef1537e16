"""Named energy models: picojoules per counted operation.

Energy = sum over op kinds of count x energy per op, plus neuron updates x
energy per update. Every model states its source; pick one with
``--energy-model NAME`` or :func:`get_energy_model`.

=====================  ======  ======  =======  ======  ========  ============================
name                   E_MAC   E_AC    E_other  E_sel   E_neuron  source
=====================  ======  ======  =======  ======  ========  ============================
``horowitz45-fp32``    4.6     0.9     4.6      0       4.6       Horowitz, ISSCC 2014, 45 nm
``horowitz45-fp16``    1.5     0.4     1.5      0       1.5       Horowitz, ISSCC 2014, 45 nm
``horowitz45-int8``    0.23    0.03    0.23     0       0.23      Horowitz, ISSCC 2014, 45 nm
``loihi``              4.6     23.6    4.6      0       52        Davies et al., IEEE Micro 2018
=====================  ======  ======  =======  ======  ========  ============================

Conventions (the same for every model unless its docstring says otherwise):
``other`` (sigmoid, GELU, division, comparisons) is priced as one MAC, a
lower bound for a polynomial or table evaluation; ``select`` (a product with
a {0, 1} spike tensor) is a gate and costs nothing; a neuron update
(leak + integrate, ``v = 0.5 v + x``) is priced as one MAC, its threshold
comparison and reset are not priced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

from ..registry import Registry


@dataclass(frozen=True)
class EnergyModel:
    """Energy per operation in picojoules (pJ)."""

    name: str
    e_mac: float
    e_ac: float
    e_other: float
    e_select: float
    e_neuron: float
    source: str
    notes: str = ""

    def price(self, kind: str) -> float:
        """pJ per operation of ``kind`` (``ac``, ``mac``, ``other``, ``select``, ``neuron``)."""
        try:
            return {"mac": self.e_mac, "ac": self.e_ac, "other": self.e_other,
                    "select": self.e_select, "neuron": self.e_neuron}[kind]
        except KeyError:
            raise ValueError(f"energy model {self.name}: no price for op kind {kind!r}") from None

    def energy_pj(self, counts: Mapping[str, float]) -> float:
        """Energy in pJ of a mapping ``kind -> count`` (kinds as in :meth:`price`)."""
        return sum(self.price(kind) * float(n) for kind, n in counts.items())

    def to_dict(self) -> dict:
        return asdict(self)


_ENERGY: Registry[EnergyModel] = Registry("energy model")


def register_energy_model(model: EnergyModel) -> EnergyModel:
    """Add a user's energy model (a duplicate name is an error)."""
    return _ENERGY.register(model.name, model)


def get_energy_model(name: str) -> EnergyModel:
    return _ENERGY.get(name)


def list_energy_models() -> list[str]:
    return _ENERGY.names()


DEFAULT_ENERGY_MODEL = "horowitz45-fp32"

_HOROWITZ = ("M. Horowitz, '1.1 Computing's energy problem (and what we can do about it)', "
             "ISSCC 2014, 45 nm process, Fig. 1.1.9")

for _name, _mac, _ac, _what in (
    ("horowitz45-fp32", 4.6, 0.9, "32-bit float: MULT 3.7 pJ + ADD 0.9 pJ"),
    ("horowitz45-fp16", 1.5, 0.4, "16-bit float: MULT 1.1 pJ + ADD 0.4 pJ"),
    ("horowitz45-int8", 0.23, 0.03, "8-bit integer: MULT 0.2 pJ + ADD 0.03 pJ"),
):
    register_energy_model(EnergyModel(
        name=_name, e_mac=_mac, e_ac=_ac, e_other=_mac, e_select=0.0, e_neuron=_mac,
        source=_HOROWITZ, notes=f"{_what}; the usual SNN-paper convention (E_MAC, E_AC)",
    ))

register_energy_model(EnergyModel(
    name="loihi", e_mac=4.6, e_ac=23.6, e_other=4.6, e_select=0.0, e_neuron=52.0,
    source=("M. Davies et al., 'Loihi: A Neuromorphic Manycore Processor with On-Chip "
            "Learning', IEEE Micro 38(1), 2018, Table 1: synaptic spike op 23.6 pJ, "
            "neuron update 52 pJ"),
    notes=("per-synaptic-event pricing: every effective AC is one synaptic spike op; "
           "real-valued MACs (the encoding layer, attention arithmetic) are not native to "
           "Loihi and are priced at horowitz45-fp32 as if run on a host processor"),
))
