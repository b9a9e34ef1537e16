"""``profile(model, inputs)``: op counts, memory traffic, firing and energy of one forward.

All numbers are per sample (divided by the batch size B) and per time step;
per-step numbers sum to the totals. See :mod:`dta.measure.rules` for what is
counted, :mod:`dta.measure.traffic` for the bytes and :mod:`dta.measure.energy`
for the energy models.

Keys of ``report.totals`` (per sample; energies in uJ, bytes in bytes):

* op counts: ``ac``, ``mac``, ``other``, ``select``, ``dense_macs``,
  ``neuron_updates``, ``spikes``, ``firing_rate``, ``sparsity``,
  ``firing_rate_per_step`` (list over t), ``by_component`` (component -> counts
  and bytes);
* bytes, canonical traffic at the report model's ``word_bits``: ``bytes``,
  ``bytes_by_kind`` (``weight``, ``bias``, ``state``, ``act_read``,
  ``act_write``), ``bytes_by_component``, ``word_bits``; ``bytes_by_model``
  (name -> bytes that model charges for; ``None`` for compute-only models);
* energy of the report's model (``energy_model``): ``energy_uj`` (compute +
  memory), ``compute_uj``, ``memory_uj`` (``None`` if compute only),
  ``memory_share``, ``energy_uj_by_component`` / ``compute_uj_by_component`` /
  ``memory_uj_by_component`` (component -> uJ), ``energy_uj_per_step`` /
  ``compute_uj_per_step`` / ``memory_uj_per_step`` (lists over t),
  ``attention_share``;
* every registered model: ``energy_uj_by_model``, ``compute_uj_by_model``,
  ``memory_uj_by_model`` (``None`` for compute-only models),
  ``attention_share_by_model``, and ``compute_only_models`` (names).
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..io import atomic_write_text
from ..shapes import check_time_first
from .counter import DATA_COLUMNS, CountResult, OpCounter, model_state
from .energy import (DEFAULT_ENERGY_MODEL, EnergyModel, Hierarchy, Lemaire2022, PerBit,
                     get_energy_model, list_energy_models)
from .rules import KINDS
from .traffic import BYTE_COLUMNS, TRAFFIC_FIELDS, canonical_bytes

COMPONENTS = ("encoding", "attention", "backbone", "neurons")


def _match(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _default_components(model: nn.Module, counts: CountResult,
                        state=None) -> dict[str, tuple[str, ...]]:
    """Components of a model that does not declare ``dta_components``.

    Encoding: the first synaptic layer that ran. Attention: modules whose class
    or attribute name mentions attention (``Attention``, ``attn``).
    """
    declared = getattr(model, "dta_components", None)
    if declared:
        return {k: tuple(v) for k, v in declared.items()}
    first = np.flatnonzero(counts.column("dense_macs") > 0)[:1] if counts.n_rows else []
    synaptic = [counts.layer[counts.row_event[i]] for i in first]
    attention = state.derived.get("attention") if state is not None else None
    if attention is None:
        attention = tuple(
            n for n, m in model.named_modules()
            if n and ("attention" in type(m).__name__.lower() or "attn" in n.lower()
                      or "attention" in n.lower())
        )
        if state is not None:
            state.derived["attention"] = attention
    return {"encoding": tuple(synaptic), "attention": attention}


class ProfileReport:
    """The result of :func:`profile`.

    ``ops``: long-form op counts (layer, type, component, op, kind, t, count, dense_macs).
    ``layers``: one row per (layer, t) with columns per op kind, neuron updates, firing,
    bytes moved (``weight_bytes``, ``bias_bytes``, ``state_bytes``, ``act_read_bytes``,
    ``act_write_bytes``, ``bytes``, at ``meta["word_bits"]``) and the energy of the
    report's model in pJ (``compute_pj``, ``memory_pj``: NaN if it is compute only).
    ``firing``: one row per (neuron layer, t): spikes, neurons, rate, sparsity.
    ``per_step``: one row per (component, t) with the sums of ``layers``.
    ``traffic``: one row per (layer, op, t): counts and traffic in elements
    (:mod:`dta.measure.traffic`), what the energy models price.
    ``totals``: per-sample totals, per component, energy under every energy model
    (keys in the module docstring), computed with the report.
    The tables are pandas frames built on first access (and kept).
    """

    def __init__(self, *, totals: dict, meta: dict, unsupported: dict, folded_bn: list,
                 tables: "_Tables"):
        self.totals = totals
        self.meta = meta
        self.unsupported = unsupported
        self.folded_bn = folded_bn
        self._tables = tables

    @property
    def ops(self) -> pd.DataFrame:
        return self._tables.get("ops")

    @property
    def layers(self) -> pd.DataFrame:
        return self._tables.get("layers")

    @property
    def firing(self) -> pd.DataFrame:
        return self._tables.get("firing")

    @property
    def per_step(self) -> pd.DataFrame:
        return self._tables.get("per_step")

    @property
    def traffic(self) -> pd.DataFrame:
        return self._tables.get("traffic")

    def __repr__(self) -> str:
        return (f"ProfileReport(model={self.meta.get('model')}, T={self.meta.get('T')}, "
                f"B={self.meta.get('B')}, energy_model={self.meta.get('energy_model')}, "
                f"energy_uj={self.totals.get('energy_uj')})")

    def energy(self, model: str | EnergyModel | None = None) -> pd.DataFrame:
        """Energy per component and time step in pJ under ``model`` (default: the report's).

        Columns: component, t, compute_pj, memory_pj (NaN for a compute-only
        model), energy_pj (their sum; compute alone for a compute-only model).
        """
        em = _model(model or self.meta["energy_model"]).for_network(self.has_neurons)
        tables = self._tables
        frame = pd.DataFrame({"component": tables.row_component(), "t": tables.counts.row_t})
        frame["compute_pj"] = em.compute_pj(tables.rows)
        frame["memory_pj"] = np.nan if em.compute_only else em.memory_pj(tables.rows)
        out = frame.groupby(["component", "t"])[["compute_pj", "memory_pj"]].sum(min_count=1)
        grid = pd.MultiIndex.from_product([COMPONENTS, range(self.meta["T"])],
                                          names=["component", "t"])
        out = out.reindex(grid).reset_index()
        out["compute_pj"] = out["compute_pj"].fillna(0.0)
        if not em.compute_only:
            out["memory_pj"] = out["memory_pj"].fillna(0.0)
        out["energy_pj"] = out["compute_pj"] + out["memory_pj"].fillna(0.0)
        return out

    @property
    def has_neurons(self) -> bool:
        """The profiled network has spiking neurons."""
        return bool(self.totals.get("neuron_updates", 0) > 0)

    def to_dict(self) -> dict:
        """Plain Python data (missing values such as a conv's firing rate become None)."""
        return {
            "meta": self.meta,
            "totals": self.totals,
            "per_step": _records(self.per_step),
            "layers": _records(self.layers),
            "firing": _records(self.firing),
            "unsupported": self.unsupported,
            "folded_bn": self.folded_bn,
        }

    def to_json(self, path=None, indent: int = 1) -> str:
        """JSON text of :meth:`to_dict`; written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, default=_json_default)
        if path is not None:
            atomic_write_text(path, text + "\n")
        return text

    def summary(self) -> str:
        """A short human-readable summary of the totals."""
        t = self.totals
        em = self.meta["energy_model"]
        lines = [
            f"T={self.meta['T']}, batch={self.meta['B']}, per sample; energy model {em}",
            f"ACs {t['ac']:,.0f}  MACs {t['mac']:,.0f}  other {t['other']:,.0f}  "
            f"select {t['select']:,.0f}  dense MACs {t['dense_macs']:,.0f}",
            f"neuron updates {t['neuron_updates']:,.0f}  spikes {t['spikes']:,.0f}  "
            f"firing rate {t['firing_rate']:.4f}",
            f"bytes moved {t['bytes']:,.0f} at {t['word_bits']}-bit words: " + ", ".join(
                f"{k} {v:,.0f}" for k, v in t["bytes_by_kind"].items()),
            f"energy {t['energy_uj']:.4f} uJ: " + ", ".join(
                f"{c} {t['energy_uj_by_component'][c]:.4f}" for c in COMPONENTS)
            + f"  (attention share {t['attention_share']:.1%})",
            (f"compute {t['compute_uj']:.4f} uJ (compute only: {em} has no memory price)"
             if t["memory_uj"] is None else
             f"compute {t['compute_uj']:.4f} uJ, memory {t['memory_uj']:.4f} uJ "
             f"({t['memory_share']:.1%} memory)"),
        ]
        if self.unsupported:
            lines.append("unsupported ops (not counted): " + ", ".join(
                f"{k} x{v}" for k, v in sorted(self.unsupported.items())))
        return "\n".join(lines)


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def _json_default(obj):
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def split_inputs(inputs) -> tuple[torch.Tensor, tuple]:
    if isinstance(inputs, torch.Tensor):
        return inputs, (inputs,)
    if isinstance(inputs, (tuple, list)) and inputs and isinstance(inputs[0], torch.Tensor):
        return inputs[0], tuple(inputs)
    raise TypeError("profile: inputs must be a tensor [T, B, ...] or a tuple whose first "
                    f"element is one, got {type(inputs).__name__}")


def _reset(state) -> None:
    """``spikingjelly.activation_based.functional.reset_net``: ``reset()`` every module that
    has one, from the module table of this call (spikingjelly keeps its own list per model,
    which misses a module swapped in while the one it replaced is still referenced)."""
    for m in state.resettable:
        m.reset()


def profile(
    model: nn.Module,
    inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    T: int | None = None,
    energy_model: str = DEFAULT_ENERGY_MODEL,
    fold_bn: bool = True,
    components: Mapping[str, Sequence[str]] | None = None,
) -> ProfileReport:
    """Count operations, firing and energy of one forward of ``model`` on ``inputs``.

    ``inputs``: a time-first tensor ``[T, B, ...]`` (or a tuple whose first
    element is one). ``T`` defaults to ``model.T`` if the model has one, else
    ``inputs.shape[0]``. The model runs in eval mode under ``no_grad`` (its
    training flag is restored) with ``reset_net`` before and after.
    ``components`` maps ``encoding`` / ``attention`` to module-name prefixes;
    by default the model's ``dta_components`` or a heuristic is used.
    ``fold_bn`` (default True): BatchNorm after a conv/linear costs nothing.
    Totals are computed here; the report's tables are built on first access.
    What does not depend on the data is kept with the model between calls; after a
    write to its weights through ``.data`` (no version bump), call
    :func:`dta.measure.forget` first.
    """
    x, args = split_inputs(inputs)
    if T is None:
        T = getattr(model, "T", None)
        T = int(T) if isinstance(T, int) else int(x.shape[0]) if x.dim() >= 1 else None
    check_time_first(x, where="profile inputs", T=T)
    for i, a in enumerate(args):
        # A sum is finite when every element is (or overflows: then look element-wise).
        if a.is_floating_point() and not (torch.isfinite(a.sum()).item()
                                          or torch.isfinite(a).all().item()):
            raise ValueError(
                f"profile inputs[{i}] contain NaN or infinite values; counts of effective "
                "operations are undefined for them: clean or clamp the input first")
    get_energy_model(energy_model)  # unknown names fail before the forward
    B = int(x.shape[1])
    if B == 0:
        raise ValueError("profile inputs have batch size 0 (shape [T, B, ...] with B = 0): "
                         "counts are per sample, pass at least one sample")
    state = model_state(model)
    state.current.check_thread(model)  # (before the model is reset)
    if not state.neuron_ids:
        warnings.warn(
            f"{type(model).__name__} has no spiking neurons: counting MACs of a non-spiking "
            "network (ACs stay zero unless an input is a spike tensor)", UserWarning,
            stacklevel=2)

    was_training = model.training
    # eval() and train() walk every module: skip both when nothing is in training mode
    switch = was_training or any(m.training for m in state.modules.values())  # submodules
    if switch:
        model.eval()
    _reset(state)
    try:
        with torch.no_grad(), OpCounter(model, T=T, B=B, fold_bn=fold_bn,
                                        state=state) as counter:
            model(*args)
        counts = counter.finalize()
    finally:
        _reset(state)
        if switch:
            model.train(was_training)
    return build_report(model, counts, energy_model=energy_model, fold_bn=fold_bn,
                        components=components, state=state)


def _model(model: str | EnergyModel) -> EnergyModel:
    return model if isinstance(model, EnergyModel) else get_energy_model(model)


_TRAFFIC_COLUMNS = ["layer", "op", "t", *TRAFFIC_FIELDS, "param_words", "synaptic", "conv",
                    "leaky", "spikes", *KINDS, "neuron_updates", "dense_macs"]


def price(em: EnergyModel, traffic, *, has_neurons: bool,
          act_bits: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-row compute and memory energy (pJ) of ``traffic`` (a frame or a mapping of its
    columns) under ``em``; memory ``None`` for a compute-only model."""
    em = em.for_network(has_neurons)
    compute = em.compute_pj(traffic, act_bits=act_bits)
    memory = None if em.compute_only else em.memory_pj(traffic, act_bits=act_bits)
    return compute, memory


_COMPONENT_INDEX = {c: i for i, c in enumerate(COMPONENTS)}
_NEURONS = _COMPONENT_INDEX["neurons"]
_ATTENTION = _COMPONENT_INDEX["attention"]


class _Tables:
    """Builds the report's frames on first access from the count rows (and keeps them)."""

    def __init__(self, counts: CountResult, event_component: list, em: EnergyModel,
                 word_bits: int):
        self.counts = counts
        self.event_component = event_component  # component of each event's layer
        self.em, self.word_bits = em, word_bits  # the report's model (for the network)
        self._priced: tuple | None = None
        self._built: dict[str, pd.DataFrame] = {}

    @property
    def rows(self) -> dict:
        return self.counts.rows

    def priced(self) -> tuple:
        """Compute pJ, memory pJ (None for a compute-only model) and bytes by kind per row."""
        if self._priced is None:
            compute, memory, _ = _evaluate(self.em, self.rows)
            self._priced = (compute, memory, canonical_bytes(self.rows, self.word_bits))
        return self._priced

    def get(self, name: str) -> pd.DataFrame:
        frame = self._built.get(name)
        if frame is None:
            frame = self._built[name] = getattr(self, "_" + name)()
        return frame

    def row_component(self) -> np.ndarray:
        c = self.counts
        comp = np.array(self.event_component, dtype=object)[c.row_event] if c.n_rows else \
            np.zeros(0, dtype=object)
        neuron = np.array([op == "neuron" for op in c.op], dtype=bool)[c.row_event] \
            if c.n_rows else np.zeros(0, dtype=bool)
        comp[neuron] = "neurons"
        return comp

    def _row_strings(self):
        c = self.counts
        ev = c.row_event
        layer = np.array(c.layer, dtype=object)[ev] if c.n_rows else np.zeros(0, dtype=object)
        op = np.array(c.op, dtype=object)[ev] if c.n_rows else np.zeros(0, dtype=object)
        types = np.array([c.module_types.get(n, "") for n in c.layer], dtype=object)[ev] \
            if c.n_rows else np.zeros(0, dtype=object)
        return layer, types, op

    def _traffic(self) -> pd.DataFrame:
        c = self.counts
        if not c.n_rows:
            frame = pd.DataFrame([], columns=_TRAFFIC_COLUMNS)
            frame.insert(1, "type", frame["layer"].map(lambda n: c.module_types.get(n, "")))
            frame.insert(2, "component", pd.Series([], dtype=object))
            return frame
        layer, types, op = self._row_strings()
        return pd.DataFrame({"layer": layer, "type": types, "component": self.row_component(),
                             "op": op, "t": c.row_t,
                             **{k: self.rows[k] for k in _TRAFFIC_COLUMNS[3:]}})

    def _ops(self) -> pd.DataFrame:
        c = self.counts
        first = c._first_rows()
        idx, kind_of = [], []
        for e, kinds in enumerate(c.kinds):
            for kind in kinds:
                idx.extend(range(first[e], first[e] + c.T))
                kind_of.extend([kind] * c.T)
        idx = np.array(idx, dtype=np.int64)
        ev = c.row_event[idx]
        count = np.array([c.rows[k][i] for k, i in zip(kind_of, idx.tolist())], dtype=np.float64)
        layers = [c.layer[e] for e in ev.tolist()]
        frame = pd.DataFrame({"layer": layers, "op": [c.op[e] for e in ev.tolist()],
                              "kind": kind_of, "t": c.row_t[idx], "count": count,
                              "dense_macs": c.rows["dense_macs"][idx]},
                             columns=["layer", "op", "kind", "t", "count", "dense_macs"])
        types = c.module_types
        frame.insert(1, "type", frame["layer"].map(lambda n: types.get(n, "")))
        comp = dict(zip(c.layer, self.event_component))
        frame.insert(2, "component", frame["layer"].map(comp))
        return frame

    def _firing(self) -> pd.DataFrame:
        c = self.counts
        neuron = np.array([op == "neuron" for op in c.op], dtype=bool)[c.row_event] \
            if c.n_rows else np.zeros(0, dtype=bool)
        ev = c.row_event[neuron]
        firing = pd.DataFrame({"layer": [c.layer[e] for e in ev.tolist()], "t": c.row_t[neuron],
                               "spikes": c.rows["spikes"][neuron],
                               "neurons": c.rows["neuron_updates"][neuron]},
                              columns=["layer", "t", "spikes", "neurons"])
        if not len(firing):
            firing = pd.DataFrame([], columns=["layer", "t", "spikes", "neurons"])
        firing = firing.groupby(["layer", "t"], as_index=False, sort=False).agg(
            spikes=("spikes", "sum"), neurons=("neurons", "sum"))
        types = c.module_types
        firing.insert(1, "type", firing["layer"].map(lambda n: types.get(n, "")))
        firing["rate"] = firing["spikes"] / firing["neurons"].where(firing["neurons"] > 0)
        firing["sparsity"] = 1.0 - firing["rate"]
        return firing

    def _layers(self) -> pd.DataFrame:
        traffic = self._traffic()  # a private copy: the user's frame may have been edited
        compute, memory, nbytes = self.priced()
        sums = {**{k: traffic[k] for k in (*KINDS, "dense_macs", "neuron_updates", "spikes")},
                **nbytes}
        wide = pd.DataFrame({"layer": traffic["layer"], "type": traffic["type"],
                             "component": traffic["component"], "t": traffic["t"], **sums,
                             "compute_pj": compute,
                             "memory_pj": memory if memory is not None else np.nan})
        keys = ["layer", "type", "component", "t"]
        value_cols = [*KINDS, "dense_macs", "neuron_updates", "spikes", *BYTE_COLUMNS]
        layers = wide.groupby(keys, sort=False, as_index=False)[
            [*value_cols, "compute_pj", "memory_pj"]].sum(min_count=1)
        layers[value_cols] = layers[value_cols].fillna(0.0)
        layers["bytes"] = layers[list(BYTE_COLUMNS)].sum(axis=1)
        layers["firing_rate"] = layers["spikes"] / layers["neuron_updates"].where(
            layers["neuron_updates"] > 0)
        return layers[[*keys, *KINDS, "dense_macs", "neuron_updates", "spikes", "firing_rate",
                       *BYTE_COLUMNS, "bytes", "compute_pj", "memory_pj"]]

    def _per_step(self) -> pd.DataFrame:
        layers = self.get("layers").copy()
        step_cols = [*KINDS, "dense_macs", "neuron_updates", "spikes", *BYTE_COLUMNS, "bytes",
                     "compute_pj", "memory_pj"]
        per_step = layers.groupby(["component", "t"], as_index=False)[step_cols].sum(min_count=1)
        per_step = (pd.MultiIndex.from_product([COMPONENTS, range(self.counts.T)],
                                               names=["component", "t"])
                    .to_frame(index=False).merge(per_step, how="left"))
        per_step[step_cols[:-1]] = per_step[step_cols[:-1]].fillna(0.0)
        if not self.em.compute_only:
            per_step["memory_pj"] = per_step["memory_pj"].fillna(0.0)
        return per_step


def _row_components(state, comps: dict, counts: CountResult) -> tuple:
    """The component of each event's layer, each row's component index (neuron rows:
    ``neurons``), and whether the network has neurons; kept per model while
    ``counts.static_key`` and the components are the same."""
    key = (counts.static_key, tuple(sorted((k, tuple(v)) for k, v in comps.items())))
    cached = state.derived.get("row_components")
    if counts.static_key is not None and cached is not None and cached[0][0] is key[0] \
            and cached[0][1] == key[1]:
        return cached[1]
    event_component = _components_of(state, comps, counts.layer)
    R = counts.n_rows
    if R:
        comp = np.array([_COMPONENT_INDEX[c] for c in event_component], dtype=np.int64)[
            counts.row_event]
        comp[np.array([op == "neuron" for op in counts.op], dtype=bool)[counts.row_event]] = \
            _NEURONS
    else:
        comp = np.zeros(0, dtype=np.int64)
    has_neurons = bool(counts.column("neuron_updates").sum() > 0) if R else False
    value = (event_component, comp, has_neurons)
    if counts.static_key is not None:
        state.derived["row_components"] = (key, value)
    return value


def _components_of(state, comps: dict, layers: list) -> list:
    """Component (encoding / attention / backbone) of each layer name, cached per model."""
    key = ("components", tuple(sorted((k, tuple(v)) for k, v in comps.items())))
    cache = state.derived.setdefault(key, {})
    out = []
    attention, encoding = comps.get("attention", ()), comps.get("encoding", ())
    for layer in layers:
        c = cache.get(layer)
        if c is None:
            c = cache[layer] = ("attention" if _match(layer, attention) else
                                "encoding" if _match(layer, encoding) else "backbone")
        out.append(c)
    return out


#: energy-model classes (exact, with exactly these memory prices) whose energy per row is an
#: affine function of the row's DATA_COLUMNS, as their code reads: a sum of those columns
#: times prices that depend on the other columns only (buffer sizes, flags, op kinds)
_AFFINE_MODELS = (EnergyModel, Lemaire2022)
_AFFINE_MEMORY = (type(None), PerBit, Hierarchy)
#: the column value the coefficients are read at: f(S + 2**30 k) - f(S) carries a unit in
#: the last place of that large difference, not of S (read at 1, a row with S = 1e7 pJ gave
#: its K to 1.6e-11 relative, which 1e6 counts carry into the total:
#: test_energies_from_per_row_coefficients_equal_the_models_own_functions)
_UNIT = float(2 ** 30)
#: the count columns the totals sum
_SUMMED = (*KINDS, "dense_macs", "neuron_updates", "spikes")


def _evaluate(m: EnergyModel, rows) -> list:
    """Compute pJ, memory pJ and bytes per row of ``rows`` under ``m`` (None: compute only)."""
    c = m.compute_pj(rows)
    if m.compute_only:
        return [c, None, None]
    return [c, *m.memory_pj_and_bytes(rows)]


class _Layout:
    """Where each per-row quantity of :func:`_features` is, and what the totals vector of
    :func:`_aggregate` holds: every feature per component, then the report model's compute
    (and memory) energy per step, then the neurons' spikes and updates per step."""

    def __init__(self, models: list, chosen: int, T: int):
        f = len(_SUMMED)
        self.bytes = list(range(f, f + len(BYTE_COLUMNS)))
        f += len(BYTE_COLUMNS)
        self.model = []  # per model: rows of its compute pJ, memory pJ and bytes (or None)
        for m in models:
            self.model.append((f, None, None) if m.compute_only else (f, f + 1, f + 2))
            f += 1 if m.compute_only else 3
        self.n = f
        self.T = T
        self.step_rows = [r for r in self.model[chosen][:2] if r is not None]
        self.neuron_rows = [_SUMMED.index("spikes"), _SUMMED.index("neuron_updates")]


def _layout(state, models: list, chosen: int, T: int) -> _Layout:
    """The :class:`_Layout` of these models (what it depends on: which are compute-only),
    kept with the model between calls."""
    key = (tuple(m.compute_only for m in models), chosen, T)
    cached = state.derived.get("layout")
    if cached is None or cached[0] != key:
        cached = state.derived["layout"] = (key, _Layout(models, chosen, T))
    return cached[1]


def _features(rows, models: list, word_bits: int) -> np.ndarray:
    """``[F, R]``: per row, the summed count columns, the canonical bytes by kind and every
    model's compute pJ (memory pJ and bytes), in :class:`_Layout`'s order."""
    nbytes = canonical_bytes(rows, word_bits)
    out = [np.asarray(rows[k], dtype=np.float64) for k in _SUMMED]
    out += [np.asarray(nbytes[k], dtype=np.float64) for k in BYTE_COLUMNS]
    for m in models:
        out += [v for v in _evaluate(m, rows) if v is not None]
    return np.stack(out)


def _groups(counts: CountResult, comp: np.ndarray) -> tuple:
    """Each row's component index, its step, and whether it is a neuron row."""
    return comp, counts.row_t, comp == _NEURONS


def _aggregate(phi: np.ndarray, groups: tuple, layout: _Layout) -> np.ndarray:
    """The totals vector (see :class:`_Layout`) of the per-row features ``phi``."""
    comp, step, neuron = groups
    T = layout.T
    n_comp = len(COMPONENTS)
    parts = [np.bincount(comp, weights=f, minlength=n_comp)[:n_comp] for f in phi]
    parts += [np.bincount(step, weights=phi[r], minlength=T)[:T] for r in layout.step_rows]
    parts += [np.bincount(step[neuron], weights=phi[r][neuron], minlength=T)[:T]
              for r in layout.neuron_rows]
    return np.concatenate(parts) if parts else np.zeros(0)


def _linear_map(counts: CountResult, models: list, word_bits: int, groups: tuple,
                layout: _Layout) -> tuple | None:
    """``(z0, A)`` with the totals vector of every result of this count structure equal to
    ``z0 + A @ measured``, or None when it is not such a map (a model not affine in the
    measured columns, or a fill that is not one scaled value per entry).

    Every quantity the totals sum is affine in the rows' :data:`DATA_COLUMNS` (the counts
    and bytes are those columns or linear in them; :data:`_AFFINE_MODELS` price them
    affinely), and every entry of those columns is one value of the measured vector times
    a factor fixed by the structure (``CountResult.rows_from``). Both are read from the
    code that computes them, never restated: the fill at measured vectors of zeros, ones
    and 1..D gives each entry's constant, factor and source; the features at rows whose
    data columns are zero, then :data:`_UNIT` one at a time, give their constant and
    coefficients. The map is checked against the direct evaluation on these counts."""
    if not all(type(m) in _AFFINE_MODELS and type(m.memory) in _AFFINE_MEMORY for m in models):
        return None
    R, D = counts.n_rows, len(counts.measured)
    rows = counts.rows
    n = len(DATA_COLUMNS)
    # the fill: data[c, r] = base[c, r] + scale[c, r] * measured[src[c, r]]
    at0 = counts.rows_from(np.zeros(D))
    at1 = counts.rows_from(np.ones(D))
    at_i = counts.rows_from(np.arange(1.0, D + 1.0))
    base = np.stack([at0[c] for c in DATA_COLUMNS])
    scale = np.stack([at1[c] for c in DATA_COLUMNS]) - base
    moved = scale != 0
    src = np.full((n, R), -1, dtype=np.int64)
    src[moved] = np.rint((np.stack([at_i[c] for c in DATA_COLUMNS])[moved] - base[moved])
                         / scale[moved]).astype(np.int64) - 1
    if (src[moved] < 0).any() or (src[moved] >= D).any():
        return None
    # the features: phi[:, r] = S[:, r] + sum_c K[:, c, r] * data[c, r]
    stacked = {k: np.tile(np.asarray(v), n + 1) for k, v in rows.items()}
    for j, c in enumerate(DATA_COLUMNS):
        col = np.zeros((n + 1) * R)
        col[(j + 1) * R:(j + 2) * R] = _UNIT
        stacked[c] = col
    value = _features(stacked, models, word_bits).reshape(layout.n, n + 1, R)
    S = value[:, 0]
    K = (value[:, 1:] - S[:, None]) / _UNIT  # [F, n, R]
    z0 = _aggregate(S + (K * base).sum(1), groups, layout)
    # A[:, j]: what one unit of measured[j] adds to the totals, through every entry it fills
    pc, pr = np.nonzero(moved)
    pj = src[pc, pr]
    contrib = (K[:, pc, pr] * scale[pc, pr]).T  # [pairs, F]
    comp, step, neuron = groups
    parts = []
    for width, slot, live, features in (
            (len(COMPONENTS), comp[pr], None, list(range(layout.n))),
            (layout.T, step[pr], None, layout.step_rows),
            (layout.T, step[pr], neuron[pr], layout.neuron_rows)):
        keep = slice(None) if live is None else live
        acc = np.zeros((width * D, len(features)))  # [group, measured value] x feature
        np.add.at(acc, slot[keep] * D + pj[keep], contrib[keep][:, features])
        parts.append(acc.T.reshape(len(features) * width, D))
    A = np.concatenate(parts)
    direct = _aggregate(_features(rows, models, word_bits), groups, layout)
    if not np.allclose(z0 + A @ counts.measured, direct, rtol=1e-9, atol=1e-9):
        return None
    return z0, A


def _totals_vector(state, counts: CountResult, comps: dict, comp: np.ndarray, models: list,
                   names: list, chosen: int, word_bits: int, layout: _Layout) -> np.ndarray:
    """The totals vector of ``counts`` (see :class:`_Layout`): through the linear map of its
    count structure (:func:`_linear_map`, built on the structure's first call and kept
    with the model), else from the rows."""
    key = (counts.static_key, tuple(sorted((k, tuple(v)) for k, v in comps.items())),
           tuple(names), chosen, word_bits)
    cached = state.derived.get("linear_totals") if state is not None else None
    if (cached is None or counts.static_key is None or cached[0][0] is not key[0]
            or cached[0][1:] != key[1:] or len(cached[1]) != len(models)
            or not all(a is b or a == b for a, b in zip(cached[1], models))):
        cached = None
        if counts.n_rows:
            groups = _groups(counts, comp)
            linear = _linear_map(counts, models, word_bits, groups, layout)
            if state is not None and counts.static_key is not None:
                state.derived["linear_totals"] = cached = (key, models, linear)
    if cached is not None and cached[2] is not None:
        z0, A = cached[2]
        return z0 + A @ counts.measured
    if not counts.n_rows:
        return np.zeros(layout.n * len(COMPONENTS) + (len(layout.step_rows) + 2) * counts.T)
    return _aggregate(_features(counts.rows, models, word_bits), _groups(counts, comp), layout)


def build_report(model: nn.Module, counts: CountResult, *, energy_model: str, fold_bn: bool,
                 components: Mapping[str, Sequence[str]] | None = None,
                 state=None) -> ProfileReport:
    """Totals and energy under every model from the counts; tables on first access."""
    state = state if state is not None else model_state(model)
    comps = ({k: tuple(v) for k, v in components.items()} if components
             else _default_components(model, counts, state))
    T = counts.T
    n_comp = len(COMPONENTS)
    event_component, comp, has_neurons = _row_components(state, comps, counts)

    em = get_energy_model(energy_model)
    word_bits = em.word_bits
    names = list_energy_models()
    models = [get_energy_model(n).for_network(has_neurons) for n in names]
    chosen = names.index(energy_model)
    layout = _layout(state, models, chosen, T)
    z = _totals_vector(state, counts, comps, comp, models, names, chosen, word_bits, layout)

    # the totals from the vector as one host list (a few hundred floats); sums run in the
    # components' order
    zl = z.tolist()
    per_comp = [zl[f * n_comp:(f + 1) * n_comp] for f in range(layout.n)]  # feature x component
    total = [sum(row) for row in per_comp]
    offset = layout.n * n_comp
    step = [zl[offset + r * T:offset + (r + 1) * T] for r in range(len(layout.step_rows))]
    offset += len(layout.step_rows) * T
    spikes_t, neurons_t = zl[offset:offset + T], zl[offset + T:offset + 2 * T]

    totals: dict[str, Any] = {k: total[i] for i, k in enumerate(_SUMMED)}
    totals["firing_rate"] = (totals["spikes"] / totals["neuron_updates"]
                             if totals["neuron_updates"] else 0.0)
    totals["sparsity"] = 1.0 - totals["firing_rate"]
    bytes_comp = [sum(per_comp[f][i] for f in layout.bytes) for i in range(n_comp)]
    totals["by_component"] = {
        c: {**{k: per_comp[f][i] for f, k in enumerate(_SUMMED[:-1])}, "bytes": bytes_comp[i]}
        for i, c in enumerate(COMPONENTS)}
    totals["word_bits"] = word_bits
    totals["bytes"] = sum(total[f] for f in layout.bytes)
    totals["bytes_by_kind"] = {k[:-len("_bytes")]: total[f]
                               for k, f in zip(BYTE_COLUMNS, layout.bytes)}
    totals["bytes_by_component"] = {c: totals["by_component"][c]["bytes"] for c in COMPONENTS}

    # every model's compute and memory energy per component (uJ), its total and shares
    zero = [0.0] * n_comp
    compute_c = [[v / 1e6 for v in per_comp[f]] for f, _, _ in layout.model]
    memory_c = [zero if f is None else [v / 1e6 for v in per_comp[f]]
                for _, f, _ in layout.model]
    by = [[c + m for c, m in zip(cs, ms)] for cs, ms in zip(compute_c, memory_c)]
    energy = [sum(row) for row in by]
    share = [row[_ATTENTION] / e if e != 0 else 0.0 for row, e in zip(by, energy)]
    compute = [sum(row) for row in compute_c]
    memory = [sum(row) for row in memory_c]
    priced = [f_memory is not None for _, f_memory, _ in layout.model]
    k = chosen
    totals["energy_model"] = energy_model
    totals["energy_uj"] = energy[k]
    totals["compute_uj"] = compute[k]
    totals["memory_uj"] = memory[k] if priced[k] else None
    totals["memory_share"] = (None if not priced[k] else
                              memory[k] / energy[k] if energy[k] else 0.0)
    totals["energy_uj_by_component"] = dict(zip(COMPONENTS, by[k]))
    totals["compute_uj_by_component"] = dict(zip(COMPONENTS, compute_c[k]))
    totals["memory_uj_by_component"] = dict(zip(COMPONENTS, memory_c[k])) if priced[k] else None
    totals["attention_share"] = share[k]
    totals["energy_uj_by_model"] = dict(zip(names, energy))
    totals["compute_uj_by_model"] = dict(zip(names, compute))
    totals["memory_uj_by_model"] = {n: m if p else None for n, m, p in zip(names, memory, priced)}
    totals["bytes_by_model"] = {n: None if f is None else total[f]
                                for n, (_, _, f) in zip(names, layout.model)}
    totals["attention_share_by_model"] = dict(zip(names, share))
    totals["compute_only_models"] = [n for n, p in zip(names, priced) if not p]
    totals["compute_uj_per_step"] = [v / 1e6 for v in step[0]]
    totals["memory_uj_per_step"] = None if len(step) < 2 else [v / 1e6 for v in step[1]]
    totals["energy_uj_per_step"] = [
        c + m for c, m in zip(totals["compute_uj_per_step"],
                              totals["memory_uj_per_step"] or [0.0] * T)]
    # (a step without neuron updates, or a non-finite rate, reads 0)
    totals["firing_rate_per_step"] = [
        r if math.isfinite(r) else 0.0
        for r in (s / n if n else 0.0 for s, n in zip(spikes_t, neurons_t))]

    meta = {"T": counts.T, "B": counts.B, "energy_model": energy_model, "fold_bn": fold_bn,
            "single_step": counts.single_step, "components": {k: list(v) for k, v in comps.items()},
            "model": type(model).__name__, "word_bits": word_bits,
            "energy_model_label": em.label}
    return ProfileReport(totals=totals, meta=meta, unsupported=counts.unsupported,
                         folded_bn=counts.folded_bn,
                         tables=_Tables(counts, event_component, models[chosen], word_bits))
