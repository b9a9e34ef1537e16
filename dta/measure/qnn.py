"""The quantized-ANN (QNN) equivalent of an SNN, priced from the ANN's counts.

Yan et al. ("Reconsidering the energy efficiency of spiking neural networks",
arXiv 2409.08290) map a rate-coded SNN of ``T`` time steps to the QNN whose
activations carry the same information: a spike count in ``0..T``, i.e.
``ceil(log2(T + 1))`` bits. :func:`qnn_energy` prices a ReLU network's
report (one time step, no spiking neurons) as that QNN:

* compute: MACs of synaptic layers whose input is an activation-function
  output (ReLU & co.) are ``b``-bit MACs, priced ``min(b * E_AC, E_MAC)``
  (bit-serial shift-and-add: one accumulation of the shifted weight per
  activation bit, the arithmetic an SNN performs once per spike); every
  other op keeps its price (the encoding layer's MACs on the real input
  stay full MACs);
* memory: activation-function outputs are written, and read by the next
  layer, at ``b`` bits; weights, biases and other real values keep the
  model's word width. Zero activations cost no MAC (effective counts), as
  zero spikes cost no AC.
"""

from __future__ import annotations

from typing import Any

from .energy import DEFAULT_ENERGY_MODEL, get_energy_model, list_energy_models
from .profile import COMPONENTS, ProfileReport, price
from .traffic import activation_bits, canonical_bytes


def qnn_energy(ann_report: ProfileReport, T: int, *,
               energy_model: str = DEFAULT_ENERGY_MODEL) -> dict[str, Any]:
    """Energy per inference (uJ) of the QNN equivalent to a ``T``-step SNN, from its ANN's report.

    ``ann_report``: :func:`dta.measure.profile` of the ReLU network (``T=1``,
    no spiking neurons). Returns ``T``, ``activation_bits`` (``ceil(log2(T+1))``),
    ``energy_model`` and its ``energy_uj`` / ``compute_uj`` / ``memory_uj``
    (``None`` if compute only) / ``energy_uj_by_component``; ``bytes`` (canonical
    traffic at the model's word width, activations at ``activation_bits``), and
    for every registered model ``energy_uj_by_model``, ``compute_uj_by_model``,
    ``memory_uj_by_model`` (``None`` for compute-only models), ``bytes_by_model``
    and ``compute_only_models``.
    """
    if not isinstance(ann_report, ProfileReport):
        raise TypeError("qnn_energy takes the ProfileReport of the ReLU network (profile(ann, "
                        f"x)), got {type(ann_report).__name__}")
    bits = activation_bits(T)
    get_energy_model(energy_model)  # unknown names list the known ones
    if ann_report.meta.get("T") != 1:
        raise ValueError(f"qnn_energy prices a one-step ReLU network; this report has "
                         f"T={ann_report.meta.get('T')}: profile the ANN on a [1, B, ...] input")
    if ann_report.has_neurons:
        raise ValueError("qnn_energy prices a ReLU network; this report has spiking-neuron "
                         "updates: profile the ANN equivalent (ReLU instead of LIF)")
    traffic = ann_report.traffic
    if not ((traffic["in_act"] > 0) | (traffic["out_act"] > 0)).any():
        raise ValueError("qnn_energy found no activation-function outputs (ReLU & co., "
                         "dta.measure.rules.ACTIVATION_OPS) in this report: nothing to quantize")

    comp = traffic["component"].to_numpy()
    out: dict[str, Any] = {"T": int(T), "activation_bits": bits, "energy_model": energy_model}
    by_model: dict[str, dict] = {}
    for name in list_energy_models():
        em = get_energy_model(name)
        compute, memory = price(em, traffic, has_neurons=False, act_bits=bits)
        by_model[name] = {
            "compute": compute, "memory": memory,
            "bytes": None if memory is None else float(
                em.for_network(False).bytes_moved(traffic, act_bits=bits).sum()),
        }
    chosen = by_model[energy_model]
    total = chosen["compute"] + (chosen["memory"] if chosen["memory"] is not None else 0.0)
    out["compute_uj"] = float(chosen["compute"].sum()) / 1e6
    out["memory_uj"] = None if chosen["memory"] is None else float(chosen["memory"].sum()) / 1e6
    out["energy_uj"] = float(total.sum()) / 1e6
    out["energy_uj_by_component"] = {c: float(total[comp == c].sum()) / 1e6 for c in COMPONENTS}
    word_bits = get_energy_model(energy_model).word_bits
    out["word_bits"] = word_bits
    out["bytes"] = float(sum(v.sum() for v in canonical_bytes(traffic, word_bits, bits).values()))
    out["energy_uj_by_model"] = {
        n: float((v["compute"] + (v["memory"] if v["memory"] is not None else 0.0)).sum()) / 1e6
        for n, v in by_model.items()}
    out["compute_uj_by_model"] = {n: float(v["compute"].sum()) / 1e6 for n, v in by_model.items()}
    out["memory_uj_by_model"] = {n: None if v["memory"] is None else float(v["memory"].sum()) / 1e6
                                 for n, v in by_model.items()}
    out["bytes_by_model"] = {n: v["bytes"] for n, v in by_model.items()}
    out["compute_only_models"] = [n for n, v in by_model.items() if v["memory"] is None]
    return out
