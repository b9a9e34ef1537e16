"""Cross-check the counts against NeuroBench's ``SynapticOperations`` and the energy against
spikingjelly's ``op_counter.estimate_simple_energy``.

NeuroBench (Yik et al., "The neurobench framework for benchmarking
neuromorphic computing algorithms and systems", Nature Communications 2025;
code: github.com/NeuroBench/neurobench) defines the effective synaptic
operations this package counts: a Conv/Linear layer run on the nonzero
indicator of its input, with nonzero weights set to 1 and no bias, summed;
ACs when the input holds only 0/±1, MACs otherwise. Its metric hooks
``nn.Conv1d/2d/3d`` and ``nn.Linear`` modules only, so the comparison is over
those modules; the attention and element-wise arithmetic counted here by the
rule table, and matrix products, have no NeuroBench counterpart.

Where the definitions differ on purpose:

* ``Dense``: NeuroBench runs the layer on an all-ones input, so taps that
  fall on zero padding are not counted. ``dense_macs`` here follows fvcore
  (every kernel tap of every output, padding included), so that the dense
  count of a released module equals fvcore's. The two agree for layers
  without padding.
* NeuroBench divides by ``data[0].size(0)``, the batch of a batch-first
  input. Models here are time-first, so the model is wrapped to take
  ``[B, T, ...]`` and the counts are per sample, as in :func:`profile`.

:func:`compare_spikingjelly` sets ``step45-fp32`` beside spikingjelly 2.0.0's
``estimate_simple_energy`` (the model it follows: Horowitz 45 nm arithmetic,
3.12 pJ per bit of weights, biases and neuron states) on a copy of the model
whose BatchNorms are folded into their convolutions (:func:`fold_batchnorm`),
which is what ``fold_bn=True`` counts. Where the two differ by definition
(each difference is pinned in ``tests/test_energy_models.py``):

* real-input synaptic layers: spikingjelly counts dense MACs and reads a
  weight per dense MAC (padding taps and zero inputs included); here the
  effective MACs, and a weight read per effective MAC;
* arithmetic outside synaptic layers: spikingjelly counts additions (adds,
  sums, means' additions, average pools, in-place sigmoids) but not
  products, divisions, comparisons or the scale of a mean, which the rule
  table here counts and ``step45-fp32`` prices; an addition of two {0, 1}
  tensors is their nonzeros there, every output element here;
* neurons: spikingjelly counts the additions inside a neuron's forward when
  they reach the dispatcher (spikingjelly's Python neurons) and nothing for a
  custom op (dta-bench's faithful LIF); here one MAC per membrane update;
* activations: spikingjelly moves weights, biases and states only; here
  every op's input and output activations move too (spikes 1 bit);
* spikingjelly's memory counter sums an occupancy tensor per spike-driven
  convolution outside its dispatch guard, and its own AC counter counts that
  sum (``N*groups*H'*W' - 1`` additions per call).

NeuroBench is a test dependency (``pip install -e '.[test]'`` or
``pip install neurobench==2.3.0``), imported only when these functions run.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from ..shapes import check_time_first
from .counter import layer_names
from .profile import profile, split_inputs

NEUROBENCH_KEYS = ("Effective_ACs", "Effective_MACs", "Dense")


def _neurobench():
    try:
        from neurobench.blocks.layer import STATELESS_LAYERS
        from neurobench.metrics.workload import SynapticOperations
        from neurobench.models import TorchModel
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the NeuroBench cross-check needs the neurobench package: "
            "pip install neurobench==2.3.0 (it is in dta-bench's [test] extra)") from exc
    return TorchModel, SynapticOperations, STATELESS_LAYERS


class _BatchFirst(nn.Module):
    """Present a time-first model to NeuroBench, which expects ``[B, T, ...]``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.transpose(0, 1))


def neurobench_synops(model: nn.Module, inputs: torch.Tensor | Sequence[torch.Tensor],
                      *, T: int | None = None) -> dict[str, float]:
    """NeuroBench's ``SynapticOperations`` of one forward, per sample.

    ``inputs`` is time-first ``[T, B, ...]``, as for :func:`dta.measure.profile`.
    Returns ``{"Effective_ACs", "Effective_MACs", "Dense"}``. The model runs in
    eval mode under ``no_grad`` with ``reset_net`` before and after; its
    training flag is restored and NeuroBench's hooks are removed even when the
    forward raises.
    """
    from spikingjelly.activation_based import functional

    TorchModel, SynapticOperations, _ = _neurobench()
    x, args = split_inputs(inputs)
    if len(args) != 1:
        raise ValueError("the NeuroBench cross-check takes a single input tensor [T, B, ...]")
    check_time_first(x, where="neurobench_synops inputs", T=T)
    was_training = model.training
    functional.reset_net(model)
    wrapped = TorchModel(_BatchFirst(model))  # sets eval()
    wrapped.register_hooks()
    try:
        xb = x.transpose(0, 1)
        with torch.no_grad():
            preds = wrapped(xb)
            result = SynapticOperations()(wrapped, preds, (xb, None))
    finally:
        wrapped.cleanup_hooks()
        functional.reset_net(model)
        model.train(was_training)
    return {k: float(result[k]) for k in NEUROBENCH_KEYS}


def compare_neurobench(model: nn.Module, inputs: torch.Tensor | Sequence[torch.Tensor],
                       *, T: int | None = None, fold_bn: bool = True) -> pd.DataFrame:
    """Counts of :func:`profile` over the modules NeuroBench hooks, beside NeuroBench's.

    One row per quantity (``Effective_ACs``, ``Effective_MACs``, ``Dense``)
    with columns ``dta``, ``neurobench`` and ``difference`` (dta minus
    NeuroBench), all per sample. Effective counts are expected to agree
    exactly; ``Dense`` differs by the padding taps (see the module docstring).
    """
    _, _, stateless = _neurobench()
    names = layer_names(model)
    names = {names[id(m)] for m in model.modules() if isinstance(m, stateless)}
    report = profile(model, inputs, T=T, fold_bn=fold_bn)
    rows = report.layers[report.layers["layer"].isin(names)]
    ours = {"Effective_ACs": float(rows["ac"].sum()),
            "Effective_MACs": float(rows["mac"].sum()),
            "Dense": float(rows["dense_macs"].sum())}
    theirs = neurobench_synops(model, inputs, T=T)
    frame = pd.DataFrame({"dta": ours, "neurobench": theirs}).loc[list(NEUROBENCH_KEYS)]
    frame["difference"] = frame["dta"] - frame["neurobench"]
    frame.index.name = "quantity"
    return frame


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) with every BatchNorm that directly follows a
    convolution among its parent's children folded into that convolution (which
    gains a bias) and replaced by ``nn.Identity``. The model itself is untouched.

    This is the network that ``profile(..., fold_bn=True)`` counts, for tools
    that cannot fold (spikingjelly's estimators). BatchNorms that do not follow a
    convolution in their parent's child order stay.
    """
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_weights

    folded = copy.deepcopy(model).eval()
    for parent in list(folded.modules()):
        children = list(parent.named_children())
        for (_, conv), (bn_name, bn) in zip(children, children[1:]):
            if (isinstance(conv, nn.modules.conv._ConvNd) and not conv.transposed
                    and isinstance(bn, nn.modules.batchnorm._BatchNorm)
                    and bn.track_running_stats and bn.num_features == conv.out_channels):
                weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean,
                                                    bn.running_var, bn.eps, bn.weight, bn.bias)
                conv.weight, conv.bias = weight, bias
                setattr(parent, bn_name, nn.Identity())
    return folded


SPIKINGJELLY_ROWS = ("mac", "ac", "other", "neuron_updates", "weight_bytes", "bias_bytes",
                     "state_bytes", "activation_bytes", "compute_pj", "memory_pj", "energy_pj")


def spikingjelly_simple_energy(model: nn.Module, inputs: torch.Tensor | Sequence[torch.Tensor]):
    """spikingjelly's ``estimate_simple_energy`` of one forward (its report; totals over the
    batch). ``reset_net`` before and after; the training flag is restored."""
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.op_counter import SimpleEnergyProfiler

    _, args = split_inputs(inputs)
    was_training = model.training
    model.eval()
    functional.reset_net(model)
    profiler = SimpleEnergyProfiler()
    profiler.bind_model(model)
    try:
        with profiler, torch.no_grad():
            model(*args)
    finally:
        functional.reset_net(model)
        model.train(was_training)
    return profiler.get_report()


def compare_spikingjelly(model: nn.Module, inputs: torch.Tensor | Sequence[torch.Tensor],
                         *, T: int | None = None) -> pd.DataFrame:
    """``step45-fp32`` beside spikingjelly's ``estimate_simple_energy``, per sample.

    spikingjelly runs on :func:`fold_batchnorm` of the model, this package on the
    model with ``fold_bn=True``. One row per quantity (:data:`SPIKINGJELLY_ROWS`:
    counts, bytes by kind, energies in pJ) with columns ``dta``,
    ``spikingjelly`` and ``difference`` (dta minus spikingjelly); the module
    docstring lists why they differ.
    """
    x, _ = split_inputs(inputs)
    B = int(x.shape[1])
    report = profile(model, inputs, T=T, energy_model="step45-fp32", fold_bn=True)
    t, kinds = report.totals, report.totals["bytes_by_kind"]
    ours = {"mac": t["mac"], "ac": t["ac"], "other": t["other"],
            "neuron_updates": t["neuron_updates"], "weight_bytes": kinds["weight"],
            "bias_bytes": kinds["bias"], "state_bytes": kinds["state"],
            "activation_bytes": kinds["act_read"] + kinds["act_write"],
            "compute_pj": t["compute_uj"] * 1e6, "memory_pj": t["memory_uj"] * 1e6,
            "energy_pj": t["energy_uj"] * 1e6}
    sj = spikingjelly_simple_energy(fold_batchnorm(model), inputs)
    c = sj.counts
    theirs = {"mac": c["mac"], "ac": c["ac"], "other": 0.0, "neuron_updates": 0.0,
              "weight_bytes": c["weight_read_bytes"], "bias_bytes": c["bias_read_bytes"],
              "state_bytes": c["neuron_state_read_bytes"] + c["neuron_state_write_bytes"],
              "activation_bytes": 0.0, "compute_pj": sj.energy_compute_pj,
              "memory_pj": sj.energy_memory_pj, "energy_pj": sj.energy_total_pj}
    theirs = {k: float(v) / B for k, v in theirs.items()}
    frame = pd.DataFrame({"dta": ours, "spikingjelly": theirs}).loc[list(SPIKINGJELLY_ROWS)]
    frame["difference"] = frame["dta"] - frame["spikingjelly"]
    frame.index.name = "quantity"
    return frame
