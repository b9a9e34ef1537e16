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
from functools import cached_property
from typing import Mapping

import numpy as np

from ..registry import Registry
from .traffic import canonical_bytes, check_bits

_KIND_PRICES = ("mac", "ac", "other", "select")


def _col(rows, name: str) -> np.ndarray:
    return np.asarray(rows[name], dtype=np.float64)


def _flag(rows, name: str) -> np.ndarray:
    return np.asarray(rows[name], dtype=bool)


def _overridden(obj, base: type, names) -> bool:
    """A subclass of ``base`` redefines one of the methods a combined method stands for."""
    cls = type(obj)
    return cls is not base and any(getattr(cls, n) is not getattr(base, n) for n in names)


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

    def memory_pj_and_bytes(self, rows, word_bits: int, act_bits: int | None = None
                            ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`memory_pj` and :meth:`bytes_moved` together (override to share work)."""
        return self.memory_pj(rows, word_bits, act_bits), self.bytes_moved(rows, word_bits,
                                                                          act_bits)

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

    def memory_pj_and_bytes(self, rows, word_bits, act_bits=None):
        if _overridden(self, PerBit, ("memory_pj", "bytes_moved")):
            return MemoryPrice.memory_pj_and_bytes(self, rows, word_bits, act_bits)
        moved = self.bytes_moved(rows, word_bits, act_bits)
        return moved * 8.0 * self.pj_per_bit, moved


#: Horowitz, ISSCC 2014, Fig. 1.1.9: energy per 64-bit access of an SRAM of the given size.
HOROWITZ_SRAM_LEVELS = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))


@dataclass(frozen=True)
class Hierarchy(MemoryPrice):
    """SRAM levels plus DRAM; each datum is priced at the smallest level that holds it.

    ``levels``: ``(size in bytes, pJ per access)`` in increasing size;
    ``dram_pj``: pJ per access of anything larger than the last level;
    ``access_bits``: bits per access (64 for Horowitz's figures). A bit costs
    ``pJ per access / access_bits`` (a spike is 1/64 of a 64-bit access).

    Placement: a layer's weights and biases by the layer's parameter bytes;
    a neuron layer's states by its state bytes for one sample and step;
    an op's input activations by their bytes for one sample and step, its
    outputs likewise.
    """

    levels: tuple = HOROWITZ_SRAM_LEVELS
    dram_pj: float = 1300.0
    access_bits: int = 64

    def __post_init__(self):
        levels = tuple(tuple(level) for level in self.levels)
        if not levels:
            raise ValueError("Hierarchy.levels must list at least one (size in bytes, pJ per "
                             "access) level")
        previous = 0
        for level in levels:
            if len(level) != 2:
                raise ValueError(f"Hierarchy level {level!r} must be (size in bytes, pJ per "
                                 "access)")
            size, pj = level
            if isinstance(size, bool) or not isinstance(size, (int, float)) or \
                    not math.isfinite(size) or size <= 0:
                raise ValueError(f"Hierarchy level size must be a positive number of bytes, "
                                 f"got {size!r}")
            if size <= previous:
                raise ValueError("Hierarchy.levels must be in strictly increasing size, got "
                                 f"{[lv[0] for lv in levels]}")
            if _price(pj, "Hierarchy level pJ per access") == 0:
                raise ValueError(f"Hierarchy level {level!r}: pJ per access must be positive")
            previous = size
        if _price(self.dram_pj, "Hierarchy.dram_pj") == 0:
            raise ValueError("Hierarchy.dram_pj must be positive")
        check_bits(self.access_bits, "Hierarchy.access_bits")
        object.__setattr__(self, "levels", levels)

    def pj_per_bit(self, size_bytes) -> np.ndarray:
        """pJ per bit of a datum set of ``size_bytes`` (array-like)."""
        sizes, per_bit = self._level_arrays
        return per_bit[np.searchsorted(sizes, np.asarray(size_bytes, dtype=np.float64),
                                       side="left")]

    @cached_property
    def _level_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Level sizes, and pJ per bit of each level then of DRAM."""
        sizes = np.array([s for s, _ in self.levels], dtype=np.float64)
        prices = np.array([p for _, p in self.levels] + [self.dram_pj], dtype=np.float64)
        return sizes, prices / self.access_bits

    def bytes_moved(self, rows, word_bits, act_bits=None):
        return sum(canonical_bytes(rows, word_bits, act_bits).values())

    def memory_pj(self, rows, word_bits, act_bits=None):
        return self._priced(rows, word_bits, act_bits)[0]

    def memory_pj_and_bytes(self, rows, word_bits, act_bits=None):
        if _overridden(self, Hierarchy, ("memory_pj", "bytes_moved")):
            return MemoryPrice.memory_pj_and_bytes(self, rows, word_bits, act_bits)
        return self._priced(rows, word_bits, act_bits)

    def _priced(self, rows, word_bits, act_bits=None):
        b = canonical_bytes(rows, word_bits, act_bits)
        w = word_bits / 8.0
        a = w if act_bits is None else act_bits / 8.0
        param_size = _col(rows, "param_words") * w
        state_size = _col(rows, "s_reads") * w
        read_size = (_col(rows, "in_spike") / 8.0 + _col(rows, "in_act") * a
                     + _col(rows, "in_real") * w)
        write_size = (_col(rows, "out_spike") / 8.0 + _col(rows, "out_act") * a
                      + _col(rows, "out_real") * w)
        bits = 8.0 * np.stack([b["weight_bytes"] + b["bias_bytes"], b["state_bytes"],
                               b["act_read_bytes"], b["act_write_bytes"]])
        per_bit = np.stack([self.pj_per_bit(param_size), self.pj_per_bit(state_size),
                            self.pj_per_bit(read_size), self.pj_per_bit(write_size)])
        return (bits * per_bit).sum(0), sum(b.values())


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

    def memory_pj_and_bytes(self, rows, act_bits: int | None = None
                            ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`memory_pj` and :meth:`bytes_moved` per row, computed together."""
        if _overridden(self, EnergyModel, ("memory_pj", "bytes_moved")):
            return self.memory_pj(rows, act_bits), self.bytes_moved(rows, act_bits)
        if self.memory is None:
            raise self._no_memory()
        return self.memory.memory_pj_and_bytes(rows, self.word_bits, act_bits)

    def for_network(self, has_neurons: bool) -> "EnergyModel":
        """This model for a network with (SNN) or without (ANN) spiking neurons (most models
        do not care and return themselves)."""
        return self

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("memory", "has_neurons")}
        out["memory"] = (None if self.compute_only else self.memory.to_dict() if self.memory
                         else {"kind": type(self).__name__})  # a model that prices memory itself
        out["compute_only"] = self.compute_only
        return out


@dataclass(frozen=True)
class Lemaire2022(EnergyModel):
    """Lemaire et al.'s analytical model (ICONIP 2022, arXiv 2210.13107), as spikingjelly 2.0.0's
    ``op_counter.estimate_lemaire_energy`` renders it, extended to every op dta-bench counts.

    Compute: 32-bit integer ADD ``e_add`` 0.1 pJ, MUL ``e_mul`` 3.1 pJ (a MAC
    is both). A synaptic layer on spikes costs, per input event, ``C_out/groups
    * prod(ceil(k/s))`` additions (``ev_ops``), ``C_out/groups * prod(k)``
    address additions (``ev_mem``) and, for a convolution, two address MACs; on
    real input its dense MACs, one address addition per input and output element
    and, for a convolution, ``C_out * prod(k)`` per sample and step; a bias adds
    one addition per output. A neuron adds one addition per spike and, if it
    leaks (has ``tau``), one MAC per update.

    Memory (``word_bits`` 32 for everything, spikes too: they travel as events):
    a price per byte interpolated linearly in the size of the buffer that holds
    the datum, through ``memory_breakpoints`` (bytes, pJ per 32-bit access:
    8 KB 10, 32 KB 20, 1 MB 100; clamped above 1 MB). Reuse assumption: no
    reuse; per input event the layer reads the event, and reads its ``ev_mem``
    weights and reads and writes as many membrane potentials (event-driven
    accumulation); on real input it reads an input per dense MAC (convolution)
    or each input once (linear) and a weight per dense MAC; a bias word per
    output; a neuron reads and writes its potential per update and writes one
    event per spike into a FIFO of ``fifo_words`` words; outputs of synaptic
    layers are written only in networks without neurons.

    Buffers: weights in a buffer of the layer's parameter size, potentials of
    its per-sample, per-step output size, real inputs of their per-sample,
    per-step size, events in the FIFO. spikingjelly sizes them per call (all
    samples and time steps of the batch); the two agree at batch 1 and T=1
    (``tests/test_energy_models.py`` pins the rest).

    Outside the paper (BatchNorm is folded first, so it only adds a bias): a
    folded BatchNorm's bias reads and additions as a conv bias; every other op
    (element-wise arithmetic, pools, attention) costs ADD per ``ac``, MAC per
    ``mac`` / ``other``, nothing per ``select``, and moves its canonical
    traffic (:mod:`dta.measure.traffic`, spikes 1 bit), each category priced at
    the size of its own data.
    """

    e_add: float = 0.1
    e_mul: float = 3.1
    fifo_words: int = 1000
    memory_breakpoints: tuple = ((0.0, 0.0), (8.0 * 1024, 10.0), (32.0 * 1024, 20.0),
                                 (1024.0 * 1024, 100.0))
    has_neurons: bool = field(default=True, compare=False)

    def __post_init__(self):
        super().__post_init__()
        _price(self.e_add, "lemaire2022 e_add")
        _price(self.e_mul, "lemaire2022 e_mul")
        check_bits(self.fifo_words, "lemaire2022 fifo_words")
        xs = [x for x, _ in self.memory_breakpoints]
        if any(b <= a for a, b in zip(xs, xs[1:])) or xs[0] < 0:
            raise ValueError("lemaire2022 memory_breakpoints must have strictly increasing, "
                             f"non-negative sizes, got {xs}")

    @property
    def compute_only(self) -> bool:
        return False

    def pj_per_byte(self, size_bytes) -> np.ndarray:
        """Interpolated pJ per byte of a buffer of ``size_bytes`` (clamped to the breakpoints)."""
        xs, ys = self._breakpoint_arrays
        return np.interp(np.asarray(size_bytes, dtype=np.float64), xs, ys)

    @cached_property
    def _breakpoint_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        xs = np.array([x for x, _ in self.memory_breakpoints])
        ys = np.array([y for _, y in self.memory_breakpoints]) / 4.0  # per 32-bit access
        return xs, ys

    def lowbit_mac_pj(self, bits: int) -> float:
        return min(check_bits(bits, "activation width") * self.e_add, self.e_mul + self.e_add)

    def compute_pj(self, rows, act_bits=None) -> np.ndarray:
        syn, conv = _flag(rows, "synaptic"), _flag(rows, "conv")
        spike_in = syn & (_col(rows, "in_spike") > 0)
        real_in = syn & ~spike_in
        neuron = _col(rows, "neuron_updates") > 0
        generic = ~syn & ~neuron
        mac_pj = self.e_mul + self.e_add
        nnz = _col(rows, "nnz_in")
        adds = (np.where(spike_in, _col(rows, "ev_ops") + _col(rows, "ev_mem"), 0.0)
                + np.where(real_in, _col(rows, "in_real") + _col(rows, "in_act")
                           + _col(rows, "out_real") + _col(rows, "kernel_words"), 0.0)
                + _col(rows, "b_reads")  # one addition per biased output (folded BN included)
                + np.where(neuron, _col(rows, "spikes"), 0.0)
                + np.where(generic, _col(rows, "ac"), 0.0))
        macs = (np.where(spike_in & conv, 2.0 * nnz, 0.0)
                + np.where(neuron & _flag(rows, "leaky"), _col(rows, "neuron_updates"), 0.0)
                + np.where(generic, _col(rows, "mac") + _col(rows, "other"), 0.0))
        dense = np.where(real_in, _col(rows, "dense_macs"), 0.0)
        dense_price = np.full(len(dense), mac_pj)
        if act_bits is not None:
            dense_price[real_in & (_col(rows, "in_act") > 0)] = self.lowbit_mac_pj(act_bits)
        return adds * self.e_add + macs * mac_pj + dense * dense_price

    def _memory_terms(self, rows, act_bits=None):
        """``[(bytes, buffer bytes)]`` per row: the accesses of the model and their buffers."""
        w = self.word_bits / 8.0
        a = w if act_bits is None else check_bits(act_bits, "activation width") / 8.0
        syn, conv = _flag(rows, "synaptic"), _flag(rows, "conv")
        spike_in = syn & (_col(rows, "in_spike") > 0)
        real_in = syn & ~spike_in
        neuron = _col(rows, "neuron_updates") > 0
        generic = ~syn & ~neuron
        params = _col(rows, "param_words") * w
        fifo = np.full(len(params), self.fifo_words * w)
        in_real, in_act = _col(rows, "in_real"), _col(rows, "in_act")
        in_size = in_real * w + in_act * a
        in_width = np.where(in_act > 0, a, w)
        ev_mem, b_reads = _col(rows, "ev_mem"), _col(rows, "b_reads")
        out_real = _col(rows, "out_real")
        z = np.zeros(len(params))
        canon = canonical_bytes(rows, self.word_bits, act_bits)
        return [
            # synaptic layers on spikes: events in, weights and potentials per event
            (np.where(spike_in, _col(rows, "nnz_in") * w, z), fifo),
            (np.where(spike_in, ev_mem * w, z), params),
            (np.where(spike_in, 2.0 * ev_mem * w, z), out_real * w),
            # synaptic layers on real input
            (np.where(real_in, np.where(conv, _col(rows, "dense_macs") * in_width, in_size), z),
             in_size),
            (np.where(real_in, _col(rows, "dense_macs") * w, z), params),
            (np.where(real_in & (not self.has_neurons), out_real * w, z), out_real * w),
            # biases (of synaptic layers and folded BatchNorms)
            (np.where(~neuron, b_reads * w, z), params),
            # neurons: potential read + write per update, one event per spike
            (np.where(neuron, (_col(rows, "s_reads") + _col(rows, "s_writes")) * w, z),
             _col(rows, "s_reads") * w),
            (np.where(neuron, _col(rows, "spikes") * w, z), fifo),
            # everything else: canonical traffic, each category at its own size
            (np.where(generic, canon["weight_bytes"], z), params),
            (np.where(generic, canon["act_read_bytes"], z), canon["act_read_bytes"]),
            (np.where(generic, canon["act_write_bytes"], z), canon["act_write_bytes"]),
        ]

    def memory_pj(self, rows, act_bits=None) -> np.ndarray:
        return sum(b * self.pj_per_byte(size) for b, size in self._memory_terms(rows, act_bits))

    def bytes_moved(self, rows, act_bits=None) -> np.ndarray:
        return sum(b for b, _ in self._memory_terms(rows, act_bits))

    def memory_pj_and_bytes(self, rows, act_bits=None) -> tuple[np.ndarray, np.ndarray]:
        if _overridden(self, Lemaire2022, ("memory_pj", "bytes_moved", "_memory_terms")):
            return self.memory_pj(rows, act_bits), self.bytes_moved(rows, act_bits)
        terms = self._memory_terms(rows, act_bits)
        return sum(b * self.pj_per_byte(size) for b, size in terms), sum(b for b, _ in terms)

    def for_network(self, has_neurons: bool) -> "Lemaire2022":
        """This model for a network with (SNN) or without (ANN) spiking neurons."""
        if has_neurons == self.has_neurons:
            return self
        from dataclasses import replace

        return replace(self, has_neurons=has_neurons)


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

register_energy_model(Lemaire2022(
    name="lemaire2022", e_mac=3.2, e_ac=0.1, e_other=3.2, e_select=0.0, e_neuron=3.2,
    word_bits=32, memory=None,
    source=("E. Lemaire, L. Cordone, A. Castagnetti, P.-E. Novac, J. Courtois, B. Miramond, "
            "'An Analytical Estimation of Spiking Neural Networks Energy Efficiency', ICONIP "
            "2022, arXiv 2210.13107 (32-bit integer ADD 0.1 pJ, MUL 3.1 pJ; SRAM 10/20/100 pJ "
            "per access at 8 KB/32 KB/1 MB, 45 nm), as rendered by spikingjelly 2.0.0 "
            "op_counter.analytical_energy"),
    notes=("compute and memory (its own op, addressing and access counts; see "
           "dta.measure.energy.Lemaire2022). BatchNorm folded first. Reuse assumption: no "
           "reuse; event-driven accumulation reads and writes a potential per synaptic event"),
))

register_energy_model(EnergyModel(
    name="sram45-hierarchy", e_mac=4.6, e_ac=0.9, e_other=4.6, e_select=0.0, e_neuron=4.6,
    word_bits=32, memory=Hierarchy(),
    source=(_HOROWITZ + ": 64-bit access of an 8 KB SRAM 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ, "
            "DRAM 1.3-2.6 nJ (1.3 nJ taken: the low end, so memory is not overstated)"),
    notes=("compute as horowitz45-fp32; memory: the canonical traffic (dta.measure.traffic), "
           "each layer's weights and neuron states, and each op's input and output tensors "
           "(one sample, one step) in the smallest level that holds them; a bit costs the "
           "level's 64-bit access / 64. Reuse assumption: no reuse of weights across uses or "
           "time steps (every synaptic op reads its weight from the weight's level), each "
           "activation read and written once per op, one state read and write per update. "
           "Level sizes and prices are parameters: register "
           "EnergyModel(..., memory=Hierarchy(levels=..., dram_pj=...)) under a new name"),
))
