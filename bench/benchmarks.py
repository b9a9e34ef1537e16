"""airspeed velocity suite: accuracy, energy and speed of every attention method.

``EmbeddedDefault`` trains each (method, T) once per commit in ``setup_cache``
(deterministic: same seed, same preset as ``dta bench``) and tracks what it
measured. asv treats higher as worse, so accuracy is tracked as the error
rate. ``Forward`` times and memory-profiles one forward pass.

Benchmark versions are pinned (``.version``): refactors keep the history;
bump a version only when a benchmark's meaning changes.
"""

import os
import tempfile

import torch
from spikingjelly.activation_based import functional

from dta.attention import list_attention
from dta.bench import train_and_measure
from dta.models import create_model, repeat_static
from dta.report import MEMORY_MODEL

METHODS = list_attention()
DATASET = "digits"


def _tracked(key: str, unit: str, version: str = "1"):
    """A ``track_*`` benchmark reading ``key`` of the cached results (pinned version)."""

    def track(self, results, method, T):
        return results[f"{method}-T{T}"][key]

    track.unit = unit
    track.version = version
    return track


class EmbeddedDefault:
    """Each method trained on the embedded default (digits preset), then measured."""

    params = (METHODS, [4])
    param_names = ["method", "T"]
    timeout = 3600

    def setup_cache(self):
        torch.set_num_threads(min(2, os.cpu_count() or 1))
        work = tempfile.mkdtemp(prefix="dta-asv-")
        data_root = os.environ.get("DTA_DATA_ROOT", os.path.join(work, "data"))
        results = {}
        for method in METHODS:
            for T in self.params[1]:
                record, _, _ = train_and_measure(DATASET, method, T=T, seed=0,
                                                 runs=os.path.join(work, "runs"),
                                                 data_root=data_root)
                results[f"{method}-T{T}"] = {
                    "error_rate": 1.0 - record["accuracy"],
                    "energy_uj": record["energy"]["uj"],
                    "acs": record["ops"]["ac"],
                    "macs": record["ops"]["mac"],
                    "firing_rate": record["firing"]["rate"],
                    "energy_memory_uj": record["energy"]["by_model"][MEMORY_MODEL],
                }
        return results

    track_error_rate = _tracked("error_rate", "error rate (1 - test accuracy)")
    track_energy_uj = _tracked("energy_uj", "uJ per inference (horowitz45-fp32)")
    track_acs = _tracked("acs", "effective ACs per inference")
    track_macs = _tracked("macs", "effective MACs per inference")
    track_firing_rate = _tracked("firing_rate", "spikes per neuron per step")
    track_energy_memory_uj = _tracked("energy_memory_uj",
                                      f"uJ per inference, compute + memory ({MEMORY_MODEL})")


class Equivalents:
    """The networks the SNNs would replace: ``ann`` (ReLU, T=1, trained with the same recipe)
    and ``qnn`` (its activations quantized to ceil(log2(T+1)) bits), tracked like the methods."""

    params = (["ann", "qnn"], [4])
    param_names = ["method", "T"]
    timeout = 1800

    def setup_cache(self):
        from dta.bench import qnn_records

        torch.set_num_threads(min(2, os.cpu_count() or 1))
        work = tempfile.mkdtemp(prefix="dta-asv-")
        data_root = os.environ.get("DTA_DATA_ROOT", os.path.join(work, "data"))
        ann, _, _ = train_and_measure(DATASET, "ann", seed=0, runs=os.path.join(work, "runs"),
                                      data_root=data_root, qnn_T=tuple(self.params[1]))
        def tracked(record):
            return {"error_rate": 1.0 - record["accuracy"], "energy_uj": record["energy"]["uj"],
                    "energy_memory_uj": record["energy"]["by_model"][MEMORY_MODEL]}

        # the ANN (T=1) is the reference of every T; each qnn row belongs to one T
        results = {f"ann-T{T}": tracked(ann) for T in self.params[1]}
        results.update({f"qnn-T{q['T']}": tracked(q) for q in qnn_records(ann)})
        return results

    track_error_rate = _tracked("error_rate", "error rate (1 - test accuracy)")
    track_energy_uj = _tracked("energy_uj", "uJ per inference (horowitz45-fp32)")
    track_energy_memory_uj = _tracked("energy_memory_uj",
                                      f"uJ per inference, compute + memory ({MEMORY_MODEL})")


def _default_net(method, T, device="cpu"):
    """The width-16 embedded-default network (eval) and 16 random 8x8 digits over T."""
    torch.manual_seed(0)
    model = create_model("ms_resnet18", attention=method, T=T, num_classes=10, in_channels=1,
                         width=16).eval().to(device)
    return model, repeat_static(torch.rand(16, 1, 8, 8), T).to(device)


class Forward:
    """One eval forward of the width-16 embedded-default network on 16 digits."""

    params = (METHODS, [2, 4])
    param_names = ["method", "T"]

    def setup(self, method, T):
        torch.set_num_threads(min(2, os.cpu_count() or 1))
        self.model, self.x = _default_net(method, T)
        self._forward()  # first call pays one-off kernel selection: keep it out of the timing

    def _forward(self):
        with torch.no_grad():
            self.model(self.x)
        functional.reset_net(self.model)

    def time_forward(self, method, T):
        self._forward()

    time_forward.version = "1"

    def peakmem_forward(self, method, T):
        self._forward()

    peakmem_forward.version = "1"


class ForwardCUDA:
    """The same forward on a GPU (CUDA events are asv's timer here too); skipped without one."""

    params = (METHODS, [4])
    param_names = ["method", "T"]

    def setup(self, method, T):
        if not torch.cuda.is_available():
            raise NotImplementedError("no CUDA GPU on this machine: GPU benchmarks skipped")
        self.model, self.x = _default_net(method, T, "cuda")
        self.time_forward(method, T)  # warm-up: CUDA context and kernel selection

    def time_forward(self, method, T):
        with torch.no_grad():
            self.model(self.x)
        torch.cuda.synchronize()
        functional.reset_net(self.model)

    time_forward.version = "1"
