"""``profile(model, inputs)``: op counts, firing and energy of one forward, as a report.

All numbers are per sample (divided by the batch size B) and per time step;
per-step numbers sum to the totals. See :mod:`dta.measure.rules` for what is
counted and :mod:`dta.measure.energy` for the energy models.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from ..io import atomic_write_text
from ..shapes import check_time_first
from .counter import CountResult, OpCounter, is_neuron
from .energy import DEFAULT_ENERGY_MODEL, get_energy_model, list_energy_models
from .rules import KINDS

COMPONENTS = ("encoding", "attention", "backbone", "neurons")


def _match(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _default_components(model: nn.Module, counts: CountResult) -> dict[str, tuple[str, ...]]:
    """Components of a model that does not declare ``dta_components``.

    Encoding: the first synaptic layer that ran. Attention: modules whose class
    or attribute name mentions attention (``Attention``, ``attn``).
    """
    declared = getattr(model, "dta_components", None)
    if declared:
        return {k: tuple(v) for k, v in declared.items()}
    synaptic = [r["layer"] for r in counts.ops if r["dense_macs"] > 0]
    attention = tuple(
        n for n, m in model.named_modules()
        if n and ("attention" in type(m).__name__.lower() or "attn" in n.lower()
                  or "attention" in n.lower())
    )
    return {"encoding": tuple(synaptic[:1]), "attention": attention}


@dataclass
class ProfileReport:
    """The result of :func:`profile`.

    ``ops``: long-form op counts (layer, type, component, op, kind, t, count, dense_macs).
    ``layers``: one row per (layer, t) with columns per op kind, neuron updates and firing.
    ``firing``: one row per (neuron layer, t): spikes, neurons, rate, sparsity.
    ``totals``: per-sample totals, per component, energy under every energy model.
    """

    ops: pd.DataFrame
    layers: pd.DataFrame
    firing: pd.DataFrame
    totals: dict
    per_step: pd.DataFrame
    unsupported: dict
    folded_bn: list
    meta: dict = field(default_factory=dict)

    def energy(self, model: str | None = None) -> pd.DataFrame:
        """Energy per component and time step in pJ under ``model`` (default: the report's)."""
        em = get_energy_model(model or self.meta["energy_model"])
        rows = []
        for (component, t), group in self.per_step.groupby(["component", "t"]):
            counts = {k: group[k].sum() for k in KINDS}
            counts["neuron"] = group["neuron_updates"].sum()
            rows.append({"component": component, "t": t, "energy_pj": em.energy_pj(counts)})
        return pd.DataFrame(rows)

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
            f"energy {t['energy_uj']:.4f} uJ: " + ", ".join(
                f"{c} {t['energy_uj_by_component'][c]:.4f}" for c in COMPONENTS)
            + f"  (attention share {t['attention_share']:.1%})",
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


def _reset(model: nn.Module) -> None:
    from spikingjelly.activation_based import functional

    functional.reset_net(model)


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
    """
    x, args = split_inputs(inputs)
    if T is None:
        T = getattr(model, "T", None)
        T = int(T) if isinstance(T, int) else int(x.shape[0]) if x.dim() >= 1 else None
    check_time_first(x, where="profile inputs", T=T)
    for i, a in enumerate(args):
        if a.is_floating_point() and not torch.isfinite(a).all():
            raise ValueError(
                f"profile inputs[{i}] contain NaN or infinite values; counts of effective "
                "operations are undefined for them: clean or clamp the input first")
    get_energy_model(energy_model)  # unknown names fail before the forward
    B = int(x.shape[1])
    if not any(is_neuron(m) for m in model.modules()):
        warnings.warn(
            f"{type(model).__name__} has no spiking neurons: counting MACs of a non-spiking "
            "network (ACs stay zero unless an input is a spike tensor)", UserWarning,
            stacklevel=2)

    was_training = model.training
    model.eval()
    _reset(model)
    try:
        with torch.no_grad(), OpCounter(model, T=T, B=B, fold_bn=fold_bn) as counter:
            model(*args)
        counts = counter.finalize()
    finally:
        _reset(model)
        model.train(was_training)
    return build_report(model, counts, energy_model=energy_model, fold_bn=fold_bn,
                        components=components)


def build_report(model: nn.Module, counts: CountResult, *, energy_model: str, fold_bn: bool,
                 components: Mapping[str, Sequence[str]] | None = None) -> ProfileReport:
    """Turn raw :class:`CountResult` rows into tables, totals and energy."""
    comps = ({k: tuple(v) for k, v in components.items()} if components
             else _default_components(model, counts))

    def component(layer: str) -> str:
        if _match(layer, comps.get("attention", ())):
            return "attention"
        if _match(layer, comps.get("encoding", ())):
            return "encoding"
        return "backbone"

    types = counts.module_types
    ops = pd.DataFrame(counts.ops, columns=["layer", "op", "kind", "t", "count", "dense_macs"])
    ops.insert(1, "type", ops["layer"].map(lambda n: types.get(n, "")))
    ops.insert(2, "component", ops["layer"].map(component))

    firing = pd.DataFrame(counts.neurons, columns=["layer", "t", "spikes", "neurons"])
    firing = firing.groupby(["layer", "t"], as_index=False, sort=False).agg(
        spikes=("spikes", "sum"), neurons=("neurons", "sum"))
    firing.insert(1, "type", firing["layer"].map(lambda n: types.get(n, "")))
    firing["rate"] = firing["spikes"] / firing["neurons"].where(firing["neurons"] > 0)
    firing["sparsity"] = 1.0 - firing["rate"]

    # Wide per-(layer, t) table: one column per kind, plus neuron updates and firing.
    wide = ops.pivot_table(index=["layer", "type", "component", "t"], columns="kind",
                           values="count", aggfunc="sum", fill_value=0.0, sort=False)
    wide = wide.reindex(columns=list(KINDS), fill_value=0.0)
    dense = ops.groupby(["layer", "type", "component", "t"], sort=False)["dense_macs"].sum()
    wide["dense_macs"] = dense
    wide = wide.reset_index()
    neuron_rows = firing.rename(columns={"neurons": "neuron_updates"})[
        ["layer", "type", "t", "neuron_updates", "spikes"]].copy()
    neuron_rows["component"] = "neurons"
    layers = pd.concat([wide, neuron_rows], ignore_index=True, sort=False).fillna(0.0)
    layers = layers[["layer", "type", "component", "t", *KINDS, "dense_macs",
                     "neuron_updates", "spikes"]]
    layers["firing_rate"] = layers["spikes"] / layers["neuron_updates"].where(
        layers["neuron_updates"] > 0)

    per_step = layers.groupby(["component", "t"], as_index=False)[
        [*KINDS, "dense_macs", "neuron_updates", "spikes"]].sum()
    per_step = (pd.MultiIndex.from_product([COMPONENTS, range(counts.T)], names=["component", "t"])
                .to_frame(index=False).merge(per_step, how="left").fillna(0.0))

    totals: dict[str, Any] = {k: float(layers[k].sum()) for k in KINDS}
    totals["dense_macs"] = float(layers["dense_macs"].sum())
    totals["neuron_updates"] = float(firing["neurons"].sum())
    totals["spikes"] = float(firing["spikes"].sum())
    totals["firing_rate"] = (totals["spikes"] / totals["neuron_updates"]
                             if totals["neuron_updates"] else 0.0)
    totals["sparsity"] = 1.0 - totals["firing_rate"]
    totals["by_component"] = {
        c: {k: float(per_step.loc[per_step.component == c, k].sum())
            for k in (*KINDS, "dense_macs", "neuron_updates")}
        for c in COMPONENTS
    }

    def energy_of(name: str) -> dict:
        em = get_energy_model(name)
        by_comp = {}
        for c in COMPONENTS:
            sub = per_step[per_step.component == c]
            kinds = {k: sub[k].sum() for k in KINDS}
            kinds["neuron"] = sub["neuron_updates"].sum()
            by_comp[c] = em.energy_pj(kinds) / 1e6
        total = sum(by_comp.values())
        return {"energy_uj": total, "by_component": by_comp,
                "attention_share": by_comp["attention"] / total if total else 0.0}

    energies = {name: energy_of(name) for name in list_energy_models()}
    chosen = energies[energy_model]
    totals["energy_model"] = energy_model
    totals["energy_uj"] = chosen["energy_uj"]
    totals["energy_uj_by_component"] = chosen["by_component"]
    totals["attention_share"] = chosen["attention_share"]
    totals["energy_uj_by_model"] = {n: e["energy_uj"] for n, e in energies.items()}
    totals["attention_share_by_model"] = {n: e["attention_share"] for n, e in energies.items()}
    step_energy = []
    em = get_energy_model(energy_model)
    for t in range(counts.T):
        sub = per_step[per_step.t == t]
        kinds = {k: sub[k].sum() for k in KINDS}
        kinds["neuron"] = sub["neuron_updates"].sum()
        step_energy.append(em.energy_pj(kinds) / 1e6)
    totals["energy_uj_per_step"] = step_energy
    totals["firing_rate_per_step"] = (
        firing.groupby("t")["spikes"].sum() / firing.groupby("t")["neurons"].sum()
    ).reindex(range(counts.T), fill_value=0.0).fillna(0.0).tolist()

    meta = {"T": counts.T, "B": counts.B, "energy_model": energy_model, "fold_bn": fold_bn,
            "single_step": counts.single_step, "components": {k: list(v) for k, v in comps.items()},
            "model": type(model).__name__}
    return ProfileReport(ops=ops, layers=layers, firing=firing, totals=totals, per_step=per_step,
                         unsupported=counts.unsupported, folded_bn=counts.folded_bn, meta=meta)
