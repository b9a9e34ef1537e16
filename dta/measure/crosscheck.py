"""Cross-check the counts against NeuroBench's ``SynapticOperations``.

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
