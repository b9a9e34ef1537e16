"""Named energy models: picojoules per counted operation and, for memory-aware models, per bit moved.

Energy = compute + memory. Compute is the sum over op kinds of count x
energy per op, plus neuron updates x energy per update. Memory prices the
traffic of :mod:`dta.measure.traffic` (weights, biases, neuron states,
activations; spikes 1 bit, real values ``word_bits``). Every model states
its source; pick one with ``--energy-model NAME`` or :func:`get_energy_model`.

Compute only (no memory price; ``memory_uj`` is ``None`` in reports):

=====================  ======  ======  =======  ======  ========  ============================
name                   E_MAC   E_AC    E_other  E_sel   E_neuron  source
=====================  ======  ======  =======  ======  ========  ============================
``horowitz45-fp32``    4.6     0.9     4.6      0       4.6       Horowitz, ISSCC 2014, 45 nm
``horowitz45-fp16``    1.5     0.4     1.5      0       1.5       Horowitz, ISSCC 2014, 45 nm
``horowitz45-int8``    0.23    0.03    0.23     0       0.23      Horowitz, ISSCC 2014, 45 nm
``loihi``              4.6     23.6    4.6      0       52        Davies et al., IEEE Micro 2018
=====================  ======  ======  =======  ======  ========  ============================

Compute and memory:

=====================  ===================================  ===================================
name                   compute                              memory
=====================  ===================================  ===================================
``step45-fp32``        as ``horowitz45-fp32``               3.12 pJ per bit moved, canonical
                                                            traffic (spikingjelly's
                                                            ``estimate_simple_energy``)
``lemaire2022``        ADD 0.1 pJ, MUL 3.1 pJ (32-bit int)  SRAM cost per byte interpolated from
                       plus addressing (Lemaire et al.)     the buffer size: 8 KB 10, 32 KB 20,
                                                            1 MB 100 pJ per 32-bit access
``sram45-hierarchy``   as ``horowitz45-fp32``               8 KB 10, 32 KB 20, 1 MB 100 pJ,
                                                            DRAM 1300 pJ per 64-bit access; each
                                                            layer's weights / states / tensors
                                                            in the smallest level that holds them
=====================  ===================================  ===================================

Conventions (the same for every model unless its docstring says otherwise):
``other`` (sigmoid, GELU, division, comparisons) is priced as one MAC, a
lower bound for a polynomial or table evaluation; ``select`` (a product with
a {0, 1} spike tensor) is a gate and costs nothing; a neuron update
(leak + integrate, ``v = 0.5 v + x``) is priced as one MAC, its threshold
comparison and reset are not priced.

A quantized activation of ``b`` bits (:func:`dta.measure.qnn_energy`) meets
a ``word_bits`` weight in a multiplication that is priced as ``b`` additions
(``min(b * E_AC, E_MAC)``): bit-serial shift-and-add, one accumulation of the
shifted weight per activation bit, the same arithmetic an SNN performs once
per spike. Memory moves those activations at ``b`` bits.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Mapping

import numpy as np

from ..registry import Registry
from .traffic import canonical_bytes, check_bits

_KIND_PRICES = ("mac", "ac", "other", "select")


def _col(rows, name: str) -> np.ndarray:
    return np.asarray(rows[name], dtype=np.float64)


def _flag(rows, name: str) -> np.ndarray:
    return np.asarray(rows[name], dtype=bool)


def _price(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite non-negative number of pJ, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# Memory prices


class MemoryPrice(ABC):
    """How a memory-aware model prices traffic. Subclasses implement both methods.

    ``rows``: ``report.traffic`` (or any mapping of its columns); ``word_bits``:
    width of real values; ``act_bits``: width of activation-function outputs
    (``None``: ``word_bits``). Both return one value per row.
    """

    @abstractmethod
    def memory_pj(self, rows, word_bits: int, act_bits: int | None = None) -> np.ndarray:
        """Memory energy per row, pJ."""

    @abstractmethod
    def bytes_moved(self, rows, word_bits: int, act_bits: int | None = None) -> np.ndarray:
        """Bytes per row that this price charges for."""

    def to_dict(self) -> dict:
        return {"kind": type(self).__name__, **asdict(self)}


@dataclass(frozen=True)
class PerBit(MemoryPrice):
    """A flat price per bit moved, whatever the memory: canonical traffic x ``pj_per_bit``."""

    pj_per_bit: float

    def __post_init__(self):
        if self.pj_per_bit is None or _price(self.pj_per_bit, "PerBit.pj_per_bit") == 0:
            raise ValueError("PerBit.pj_per_bit must be a positive number of pJ per bit "
                             f"(got {self.pj_per_bit!r}); a model that does not price memory "
                             "is a compute-only model: pass memory=None")

    def bytes_moved(self, rows, word_bits, act_bits=None):
        return sum(canonical_bytes(rows, word_bits, act_bits).values())

    def memory_pj(self, rows, word_bits, act_bits=None):
        return self.bytes_moved(rows, word_bits, act_bits) * 8.0 * self.pj_per_bit


#: Horowitz, ISSCC 2014, Fig. 1.1.9: energy per 64-bit access of an SRAM of the given size.


# ---------------------------------------------------------------------------------------------
# Energy models


@dataclass(frozen=True)
class EnergyModel:
    """Energy per operation in picojoules (pJ), and optionally a memory price.

    ``memory=None`` makes a compute-only model: reports give its memory energy
    as ``None``, and :meth:`memory_pj` raises. ``word_bits``: the width of real
    values the model moves and computes on (bytes in reports use it).
    """

    name: str
    e_mac: float
    e_ac: float
    e_other: float
    e_select: float
    e_neuron: float
    source: str
    notes: str = ""
    word_bits: int = 32
    memory: MemoryPrice | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"energy model name must be a non-empty string, got {self.name!r}")
        for attr in ("e_mac", "e_ac", "e_other", "e_select", "e_neuron"):
            _price(getattr(self, attr), f"energy model {self.name}: {attr}")
        check_bits(self.word_bits, f"energy model {self.name}: word_bits")
        if self.memory is not None and not isinstance(self.memory, MemoryPrice):
            raise TypeError(f"energy model {self.name}: memory must be a MemoryPrice (PerBit, "
                            f"Hierarchy, ...) or None for a compute-only model, got "
                            f"{type(self.memory).__name__}")

    @property
    def compute_only(self) -> bool:
        """True when the model prices arithmetic only."""
        return self.memory is None

    @property
    def label(self) -> str:
        """The name, with ``(compute only)`` for models without a memory price."""
        return f"{self.name} (compute only)" if self.compute_only else self.name

    def price(self, kind: str) -> float:
        """pJ per operation of ``kind`` (``ac``, ``mac``, ``other``, ``select``, ``neuron``)."""
        try:
            return {"mac": self.e_mac, "ac": self.e_ac, "other": self.e_other,
                    "select": self.e_select, "neuron": self.e_neuron}[kind]
        except KeyError:
            raise ValueError(f"energy model {self.name}: no price for op kind {kind!r}") from None

    def energy_pj(self, counts: Mapping[str, float]) -> float:
        """Compute energy in pJ of a mapping ``kind -> count`` (kinds as in :meth:`price`)."""
        return sum(self.price(kind) * float(n) for kind, n in counts.items())

    def lowbit_mac_pj(self, bits: int) -> float:
        """pJ of a MAC whose activation has ``bits`` bits: ``min(bits * E_AC, E_MAC)``."""
        return min(check_bits(bits, "activation width") * self.e_ac, self.e_mac)

    def compute_pj(self, rows, act_bits: int | None = None) -> np.ndarray:
        """Compute energy per row of ``report.traffic``, pJ.

        ``act_bits``: price the MACs of synaptic ops whose input is an
        activation-function output as ``act_bits``-bit MACs (the QNN).
        """
        mac_price = np.full(len(_col(rows, "mac")), self.e_mac)
        if act_bits is not None:
            lowbit = _flag(rows, "synaptic") & (_col(rows, "in_act") > 0)
            mac_price[lowbit] = self.lowbit_mac_pj(act_bits)
        return (_col(rows, "mac") * mac_price + _col(rows, "ac") * self.e_ac
                + _col(rows, "other") * self.e_other + _col(rows, "select") * self.e_select
                + _col(rows, "neuron_updates") * self.e_neuron)

    def _no_memory(self):
        return ValueError(f"energy model {self.name} prices compute only (it has no memory "
                          "price): pick a memory-aware model (" + ", ".join(
                              n for n in list_energy_models()
                              if not get_energy_model(n).compute_only)
                          + ") or give it memory=PerBit(...) / Hierarchy(...)")

    def memory_pj(self, rows, act_bits: int | None = None) -> np.ndarray:
        """Memory energy per row of ``report.traffic``, pJ (raises for compute-only models)."""
        if self.memory is None:
            raise self._no_memory()
        return self.memory.memory_pj(rows, self.word_bits, act_bits)

    def bytes_moved(self, rows, act_bits: int | None = None) -> np.ndarray:
        """Bytes per row that the memory price charges for (raises for compute-only models)."""
        if self.memory is None:
            raise self._no_memory()
        return self.memory.bytes_moved(rows, self.word_bits, act_bits)

    def for_network(self, has_neurons: bool) -> "EnergyModel":
        """This model for a network with (SNN) or without (ANN) spiking neurons (most models
        do not care and return themselves)."""
        return self

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "memory"}
        out["memory"] = None if self.memory is None else self.memory.to_dict()
        out["compute_only"] = self.compute_only
        return out


_ENERGY: Registry[EnergyModel] = Registry("energy model")


def register_energy_model(model: EnergyModel) -> EnergyModel:
    """Add a user's energy model (a duplicate name is an error)."""
    if not isinstance(model, EnergyModel):
        raise TypeError(f"register_energy_model takes an EnergyModel, got "
                        f"{type(model).__name__}")
    return _ENERGY.register(model.name, model)


def get_energy_model(name: str) -> EnergyModel:
    return _ENERGY.get(name)


def list_energy_models() -> list[str]:
    return _ENERGY.names()


DEFAULT_ENERGY_MODEL = "horowitz45-fp32"

_HOROWITZ = ("M. Horowitz, '1.1 Computing's energy problem (and what we can do about it)', "
             "ISSCC 2014, 45 nm process, Fig. 1.1.9")

for _name, _mac, _ac, _bits, _what in (
    ("horowitz45-fp32", 4.6, 0.9, 32, "32-bit float: MULT 3.7 pJ + ADD 0.9 pJ"),
    ("horowitz45-fp16", 1.5, 0.4, 16, "16-bit float: MULT 1.1 pJ + ADD 0.4 pJ"),
    ("horowitz45-int8", 0.23, 0.03, 8, "8-bit integer: MULT 0.2 pJ + ADD 0.03 pJ"),
):
    register_energy_model(EnergyModel(
        name=_name, e_mac=_mac, e_ac=_ac, e_other=_mac, e_select=0.0, e_neuron=_mac,
        source=_HOROWITZ, word_bits=_bits,
        notes=f"compute only. {_what}; the usual SNN-paper convention (E_MAC, E_AC)",
    ))

register_energy_model(EnergyModel(
    name="loihi", e_mac=4.6, e_ac=23.6, e_other=4.6, e_select=0.0, e_neuron=52.0,
    source=("M. Davies et al., 'Loihi: A Neuromorphic Manycore Processor with On-Chip "
            "Learning', IEEE Micro 38(1), 2018, Table 1: synaptic spike op 23.6 pJ, "
            "neuron update 52 pJ"),
    notes=("compute only. Per-synaptic-event pricing: every effective AC is one synaptic "
           "spike op; real-valued MACs (the encoding layer, attention arithmetic) are not "
           "native to Loihi and are priced at horowitz45-fp32 as if run on a host processor"),
))

register_energy_model(EnergyModel(
    name="step45-fp32", e_mac=4.6, e_ac=0.9, e_other=4.6, e_select=0.0, e_neuron=4.6,
    word_bits=32, memory=PerBit(3.12),
    source=(_HOROWITZ + " (arithmetic); 3.12 pJ per bit moved, the memory cost of "
            "spikingjelly 2.0.0 op_counter.estimate_simple_energy (SimpleEnergyCostConfig: "
            "24.96 pJ/byte, 'the 3.12 pJ/bit reference used by STEP')"),
    notes=("compute as horowitz45-fp32; memory: every bit of the canonical traffic "
           "(dta.measure.traffic) at 3.12 pJ, wherever it is stored. Reuse assumption: no "
           "reuse of weights (one read per synaptic op, re-read at every time step), each "
           "activation read and written once per op, neuron state read and written once per "
           "update. spikingjelly prices weights, biases and states only, on dense MACs and "
           "without neuron updates; the differences are pinned in "
           "tests/test_energy_models.py"),
))


