"""Memory-aware energy models against hand-computed numbers and spikingjelly's estimators."""

import math

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron
from spikingjelly.activation_based.op_counter import (LemaireEnergyCostConfig,
                                                      SimpleEnergyProfiler,
                                                      estimate_lemaire_energy)
from torch import nn

from dta.measure import (EnergyModel, Hierarchy, PerBit, compare_spikingjelly, fold_batchnorm,
                         get_energy_model, list_energy_models, neurobench_synops, profile,
                         register_energy_model)
from dta.models import create_model, repeat_static
from dta.neuron import faithful_lif

pytestmark = pytest.mark.filterwarnings("ignore:.*has no spiking neurons:UserWarning")

MEMORY_MODELS = ("step45-fp32", "lemaire2022", "sram45-hierarchy")
COMPUTE_ONLY = ("horowitz45-fp32", "horowitz45-fp16", "horowitz45-int8", "loihi")


def conv_lif(bias=True):
    """1->2 channel 3x3 conv (padding 1, weights 1) on a 3x3 input, then the faithful LIF."""
    conv = layer.Conv2d(1, 2, 3, padding=1, bias=bias, step_mode="m")
    nn.init.constant_(conv.weight, 1.0)
    if bias:
        nn.init.constant_(conv.bias, 0.5)
    return nn.Sequential(conv, faithful_lif())


def test_registry_labels_compute_only_models():
    for name in MEMORY_MODELS + COMPUTE_ONLY:
        assert name in list_energy_models()
    for name in COMPUTE_ONLY:
        em = get_energy_model(name)
        assert em.compute_only and em.label == f"{name} (compute only)"
        assert "compute only" in em.notes
    for name in MEMORY_MODELS:
        em = get_energy_model(name)
        assert not em.compute_only and em.label == name and em.source
        assert em.to_dict()["memory"]["kind"] in ("PerBit", "Hierarchy", "Lemaire2022")
    assert get_energy_model("horowitz45-int8").to_dict()["memory"] is None


def test_step45_by_hand():
    # T=2, all-ones 3x3 spike input: per step 49 in-bounds taps x 2 channels = 98 ACs,
    # each reading its weight; 18 outputs read a bias; 18 LIF updates (all spike: mem
    # 9.5 > 1 at t=0, reset, again at t=1).
    r = profile(conv_lif(), torch.ones(2, 1, 1, 3, 3), energy_model="step45-fp32")
    t = r.totals
    assert t["ac"] == 2 * 98 and t["neuron_updates"] == 2 * 18 and t["spikes"] == 36
    compute = 2 * (98 * 0.9 + 18 * 4.6)
    bits_per_step = (98 * 32 + 18 * 32  # weights, bias
                     + 9 * 1 + 18 * 32  # conv reads 9 spikes, writes 18 reals
                     + 18 * 32 + 18 * 1  # LIF reads 18 reals, writes 18 spikes
                     + 2 * 18 * 32)  # LIF state read + write
    assert t["compute_uj"] * 1e6 == pytest.approx(compute)
    assert t["memory_uj"] * 1e6 == pytest.approx(2 * bits_per_step * 3.12)
    assert t["energy_uj"] == pytest.approx(t["compute_uj"] + t["memory_uj"])
    assert t["bytes"] == pytest.approx(2 * bits_per_step / 8)
    assert t["bytes_by_kind"] == pytest.approx({"weight": 2 * 98 * 4, "bias": 2 * 18 * 4,
                                                "state": 2 * 2 * 18 * 4,
                                                "act_read": 2 * (9 / 8 + 18 * 4),
                                                "act_write": 2 * (18 * 4 + 18 / 8)})
    # the same report prices every model; compute-only models have no memory energy
    assert t["memory_uj_by_model"]["horowitz45-fp32"] is None
    assert t["energy_uj_by_model"]["horowitz45-fp32"] == pytest.approx(compute / 1e6)
    assert t["compute_uj_by_model"]["step45-fp32"] == pytest.approx(compute / 1e6)
    assert set(t["compute_only_models"]) == set(COMPUTE_ONLY)
    per = r.energy()  # per component and step, pJ
    assert per.memory_pj.sum() == pytest.approx(t["memory_uj"] * 1e6)
    assert per.energy_pj.sum() == pytest.approx(t["energy_uj"] * 1e6)
    assert r.layers.memory_pj.sum() == pytest.approx(t["memory_uj"] * 1e6)
    assert sum(t["energy_uj_per_step"]) == pytest.approx(t["energy_uj"])


def test_sram_hierarchy_by_hand():
    # Same network: weights + bias = 20 words = 80 B (8 KB level, 10 pJ per 64 bits); states
    # 18 words = 72 B; every activation tensor < 8 KB: every bit costs 10/64 pJ.
    r = profile(conv_lif(), torch.ones(2, 1, 1, 3, 3), energy_model="sram45-hierarchy")
    bits = 8 * r.totals["bytes"]
    assert r.totals["memory_uj"] * 1e6 == pytest.approx(bits * 10 / 64)
    assert r.totals["compute_uj"] == pytest.approx(r.totals["compute_uj_by_model"]["step45-fp32"])


def test_sram_hierarchy_places_each_layer_by_its_size():
    # A linear layer of 3000 x 3 fp32 weights (36 KB + 12 B bias: the 1 MB level) on spikes.
    fc = layer.Linear(3000, 3, step_mode="m")
    nn.init.constant_(fc.weight, 1.0)
    x = torch.zeros(1, 1, 3000)
    x[..., :10] = 1  # 10 spikes -> 30 ACs, 30 weight reads
    r = profile(fc, x, energy_model="sram45-hierarchy")
    weights_pj = (30 + 3) * 32 * 100 / 64  # weights + bias, 1 MB level
    reads_pj = 3000 * 1 * 10 / 64  # 3000 spike bits (375 B): 8 KB level
    writes_pj = 3 * 32 * 10 / 64
    assert r.totals["memory_uj"] * 1e6 == pytest.approx(weights_pj + reads_pj + writes_pj)
    # level sizes are parameters: with a 64 KB first level the weights fit it
    custom = EnergyModel(name="sram-64k-test", e_mac=4.6, e_ac=0.9, e_other=4.6, e_select=0.0,
                         e_neuron=4.6, source="test", memory=Hierarchy(
                             levels=((64 * 1024, 10.0), (1024 * 1024, 100.0)), dram_pj=2600.0))
    per_row = custom.memory_pj(r.traffic)
    assert per_row.sum() == pytest.approx((30 + 3) * 32 * 10 / 64 + reads_pj + writes_pj)
    # beyond the last level: DRAM
    dram = Hierarchy(levels=((64, 10.0),), dram_pj=1300.0)
    assert dram.pj_per_bit([64, 65]).tolist() == [10 / 64, 1300 / 64]


def test_lemaire_by_hand_on_spikes():
    # Linear 4 -> 3 with bias on 2 input spikes, then an IF neuron, T=1.
    fc = layer.Linear(4, 3, step_mode="m")
    net = nn.Sequential(fc, neuron.IFNode(step_mode="m"))
    with torch.no_grad():
        fc.weight.fill_(1.0)
        fc.bias.fill_(0.0)
    x = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])  # 2 events
    r = profile(net, x, energy_model="lemaire2022")
    spikes = r.totals["spikes"]  # each output gets 2.0 > 1: all three fire
    assert spikes == 3
    # ops: 2 events x 3 outputs additions, 3 bias additions, 3 spikes; addressing 2 x 3
    compute = (2 * 3 + 3 + 3 + 2 * 3) * 0.1
    assert r.totals["compute_uj"] * 1e6 == pytest.approx(compute)
    cost = LemaireEnergyCostConfig().memory_cost_pj  # pJ per byte at a buffer size
    memory = (2 * 4 * cost(1000 * 4)  # events in, FIFO
              + (6 + 3) * 4 * cost(15 * 4)  # weights per event + biases, 15-word layer
              + 2 * 6 * 4 * cost(3 * 4)  # potentials read + written per event
              + 2 * 3 * 4 * cost(3 * 4)  # IF potentials read + written per update
              + 3 * 4 * cost(1000 * 4))  # 3 output events
    assert r.totals["memory_uj"] * 1e6 == pytest.approx(memory)
    sj = estimate_lemaire_energy(net, x)
    assert sj.total_pj == pytest.approx(compute + memory)


class BNFree(nn.Module):
    """Conv (real input) -> LIF -> strided conv on spikes -> IF -> linear -> LIF; no BatchNorm."""

    def __init__(self):
        super().__init__()
        self.conv1 = layer.Conv2d(2, 8, 3, padding=1, step_mode="m")
        self.lif1 = neuron.LIFNode(tau=2.0, step_mode="m")
        self.conv2 = layer.Conv2d(8, 8, 3, stride=2, padding=1, bias=False, step_mode="m")
        self.lif2 = neuron.IFNode(step_mode="m")
        self.fc = layer.Linear(8 * 4 * 4, 10, step_mode="m")
        self.lif3 = neuron.LIFNode(tau=2.0, step_mode="m")

    def forward(self, x):
        s = self.lif2(self.conv2(self.lif1(self.conv1(x))))
        return self.lif3(self.fc(s.flatten(2)))


def test_lemaire_agrees_with_spikingjelly_on_a_bn_free_network():
    torch.manual_seed(0)
    net = BNFree().eval()
    x = torch.rand(1, 1, 2, 8, 8) * 4  # T=1, batch 1: the buffers are sized alike
    functional.reset_net(net)
    sj = estimate_lemaire_energy(net, x)
    r = profile(net, x, energy_model="lemaire2022")
    assert r.totals["ac"] > 0 and r.totals["spikes"] > 0  # spike-driven layers ran
    ours = r.totals["energy_uj_by_model"]["lemaire2022"] * 1e6
    assert ours == pytest.approx(sj.total_pj, rel=1e-12)
    assert r.totals["compute_uj_by_model"]["lemaire2022"] * 1e6 == pytest.approx(
        sj.breakdown_pj["ops_pj"] + sj.breakdown_pj["addressing_pj"], rel=1e-12)
    sj_bytes = sum(sj.counts[k] for k in ("read_in_bytes", "write_out_bytes", "read_params_bytes",
                                          "read_potential_bytes", "write_potential_bytes"))
    assert r.totals["bytes_by_model"]["lemaire2022"] == sj_bytes


def test_lemaire_differences_from_spikingjelly_over_time_are_its_buffer_sizes():
    # spikingjelly sizes buffers per call (all T steps and samples at once) and adds a
    # conv's C_out*k*k address term once per call; here both are per sample and step.
    # At batch 1 and T=4 these are the only differences, both on the real-input conv1.
    torch.manual_seed(0)
    net = BNFree().eval()
    T = 4
    x = torch.rand(T, 1, 2, 8, 8) * 4
    functional.reset_net(net)
    sj = estimate_lemaire_energy(net, x)
    r = profile(net, x, energy_model="lemaire2022")
    cost = LemaireEnergyCostConfig().memory_cost_pj
    step_in = 2 * 8 * 8 * 4  # conv1's input bytes for one sample and step
    dense = T * 8 * 8 * 8 * 2 * 9  # conv1's dense MACs: one input read each
    memory_gap = dense * 4 * (cost(T * step_in) - cost(step_in))
    address_gap = (T - 1) * 8 * 9 * 0.1  # C_out * k*k additions, per step here, per call there
    t = r.totals
    assert sj.breakdown_pj["memory_pj"] - t["memory_uj"] * 1e6 == pytest.approx(memory_gap)
    assert t["compute_uj"] * 1e6 - (sj.breakdown_pj["ops_pj"] + sj.breakdown_pj[
        "addressing_pj"]) == pytest.approx(address_gap)


def test_lemaire_folds_batchnorm_and_prices_dta():
    # spikingjelly's Lemaire estimator rejects BatchNorm (and DTA's ops); here BN is folded
    # (its shift becomes the conv's bias) and every op of DTA is priced.
    net = create_model("ms_resnet18", attention="dta", T=4, num_classes=10, in_channels=1, width=8)
    x = repeat_static(torch.rand(2, 1, 8, 8), 4)
    with pytest.raises(ValueError, match="BatchNorm2d"):
        estimate_lemaire_energy(net, x)
    functional.reset_net(net)
    r = profile(net, x, energy_model="lemaire2022")
    assert r.unsupported == {} and r.folded_bn
    by = r.totals["energy_uj_by_component"]
    assert all(by[c] > 0 for c in ("encoding", "attention", "backbone", "neurons"))
    folded_bias = r.traffic[r.traffic.op == "native_batch_norm"]["b_reads"].sum()
    assert folded_bias > 0  # the folded shifts are read once per output element


# --- step45-fp32 against spikingjelly's estimate_simple_energy, difference by difference ---

def _firing(net):
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.constant_(m.weight, 2.0)  # an untrained net then keeps firing to the end
    return net


def _spikingjelly_scopes(model, x):
    """spikingjelly's simple-energy profiler on the BN-folded model, with its per-scope counts."""
    folded = fold_batchnorm(model)
    functional.reset_net(folded)
    profiler = SimpleEnergyProfiler()
    profiler.bind_model(folded)
    with profiler, torch.no_grad():
        folded(x)
    functional.reset_net(folded)
    return folded, profiler


def _bookkeeping_sums(folded, x):
    """ACs spikingjelly's own memory counter adds: one occupancy sum per spike-driven conv,
    N * groups * H' * W' - 1 additions (its AC counter sees the sum it runs in a hook)."""
    total = []

    def hook(module, args, out):
        s = args[0]
        if ((s == 0) | (s == 1)).all():
            n = out.numel() // module.out_channels * module.groups
            total.append(n - 1)

    handles = [m.register_forward_hook(hook) for m in folded.modules()
               if isinstance(m, nn.Conv2d)]
    functional.reset_net(folded)
    with torch.no_grad():
        folded(x)
    functional.reset_net(folded)
    for h in handles:
        h.remove()
    return sum(total)


def _check_step45_against_spikingjelly(net, x, *, mean_outputs, neuron_scope_acs, other):
    """Every row of compare_spikingjelly equals spikingjelly's plus the pinned differences."""
    B = x.shape[1]
    frame = compare_spikingjelly(net, x)
    folded, profiler = _spikingjelly_scopes(net, x)
    sj_mac = profiler.mac_counter.get_total() / B  # dense MACs of real-input synaptic layers
    effective = neurobench_synops(net, x)["Effective_MACs"]  # NeuroBench, independently
    bookkeeping = _bookkeeping_sums(folded, x) / B
    inside_neurons = neuron_scope_acs(profiler) / B
    d = frame["difference"]
    # 1. effective (here) vs dense (there) MACs, plus the scale of each mean (not counted there)
    assert d["mac"] == pytest.approx(effective - sj_mac + mean_outputs)
    # 2. spikingjelly's ACs include its own occupancy sums and the adds inside neurons
    assert d["ac"] == pytest.approx(-bookkeeping - inside_neurons)
    # 3. comparisons (max-pool) are counted and priced here only
    assert d["other"] == other
    # 4. a weight is read per effective MAC here, per dense MAC there; biases, states agree
    assert d["weight_bytes"] == pytest.approx(4 * (effective - sj_mac))
    assert d["bias_bytes"] == 0 and d["state_bytes"] == 0
    assert frame.loc["bias_bytes", "dta"] > 0 and frame.loc["state_bytes", "dta"] > 0
    # 5. neuron updates priced at one MAC; activations moved at 3.12 pJ per bit
    compute = 4.6 * d["mac"] + 0.9 * d["ac"] + 4.6 * d["other"] + 4.6 * d["neuron_updates"]
    assert d["compute_pj"] == pytest.approx(compute, rel=1e-9)
    memory = 24.96 * (d["weight_bytes"] + d["activation_bytes"])
    assert d["memory_pj"] == pytest.approx(memory, rel=1e-9)
    assert d["energy_pj"] == pytest.approx(compute + memory, rel=1e-9)
    return frame


def test_step45_against_spikingjelly_on_our_none_network():
    torch.manual_seed(0)
    net = _firing(create_model("ms_resnet18", attention="none", T=4, num_classes=10,
                               in_channels=1, width=16))
    x = repeat_static(torch.rand(2, 1, 8, 8), 4)
    # the global average pool: 128 channels x 4 steps; the faithful LIF is one custom op,
    # which spikingjelly does not count
    frame = _check_step45_against_spikingjelly(net, x, mean_outputs=128 * 4,
                                               neuron_scope_acs=lambda p: 0, other=0)
    assert frame.loc["neuron_updates", "dta"] > 0


def test_step45_against_spikingjelly_on_spiking_resnet18():
    from spikingjelly.activation_based.model import spiking_resnet

    torch.manual_seed(0)
    net = _firing(spiking_resnet.spiking_resnet18(spiking_neuron=neuron.IFNode, num_classes=10))
    functional.set_step_mode(net, "m")
    x = torch.rand(2, 2, 3, 32, 32) * 5
    names = {name for name, m in net.named_modules() if isinstance(m, neuron.BaseNode)}
    root = type(net).__name__

    def inside_neurons(profiler):  # spikingjelly's Python IF node: add, sub, rsub per update
        counts = profiler.ac_counter.get_counts()
        return sum(sum(counts.get(f"{root}.{n}", {}).values()) for n in names)

    # max-pool 3x3/2 on 64x16x16 -> 8x8: 8 comparisons per output; the 1x1 average pool
    # of 512 channels is a mean with 512 outputs per step
    frame = _check_step45_against_spikingjelly(net, x, mean_outputs=512 * 2,
                                               neuron_scope_acs=inside_neurons,
                                               other=2 * 64 * 8 * 8 * 8)
    assert frame.loc["ac", "dta"] > 0


# --- bad input ---

def test_unknown_energy_model_lists_the_known_ones():
    with pytest.raises(KeyError, match="known energy models: horowitz45-fp32.*step45-fp32"):
        get_energy_model("step45")


@pytest.mark.parametrize("bits", [0, -8, 1.5, True, "32"])
def test_word_width_must_be_a_positive_integer(bits):
    with pytest.raises(ValueError, match="word_bits must be a positive integer number of bits"):
        EnergyModel(name="w", e_mac=1, e_ac=1, e_other=1, e_select=0, e_neuron=1, source="s",
                    word_bits=bits, memory=PerBit(1.0))


@pytest.mark.parametrize("levels,match", [
    (((0, 10.0),), "level size must be a positive number of bytes"),
    (((-1024, 10.0),), "level size must be a positive number of bytes"),
    (((8192, 10.0), (4096, 20.0)), "strictly increasing size"),
    (((8192, 0.0),), "pJ per access must be positive"),
    ((), "at least one"),
])
def test_hierarchy_levels_must_be_positive_and_increasing(levels, match):
    with pytest.raises(ValueError, match=match):
        Hierarchy(levels=levels)


def test_a_model_without_a_memory_price_is_an_error_not_a_zero():
    with pytest.raises(ValueError, match="PerBit.pj_per_bit must be a positive"):
        PerBit(None)
    with pytest.raises(ValueError, match="compute-only model: pass memory=None"):
        PerBit(0.0)
    with pytest.raises(TypeError, match="memory must be a MemoryPrice"):
        EnergyModel(name="m", e_mac=1, e_ac=1, e_other=1, e_select=0, e_neuron=1, source="s",
                    memory=3.12)
    with pytest.raises(TypeError, match="Can't instantiate abstract class"):
        from dta.measure import MemoryPrice

        class NoPrice(MemoryPrice):
            pass

        NoPrice()
    r = profile(conv_lif(), torch.ones(1, 1, 1, 3, 3))
    with pytest.raises(ValueError, match="horowitz45-fp32 prices compute only .*step45-fp32"):
        get_energy_model("horowitz45-fp32").memory_pj(r.traffic)
    assert r.totals["memory_uj"] is None and "compute only" in r.summary()
    with pytest.raises(ValueError, match="must be a finite non-negative number of pJ"):
        EnergyModel(name="n", e_mac=float("nan"), e_ac=1, e_other=1, e_select=0, e_neuron=1,
                    source="s")


def test_a_custom_memory_model_is_priced_in_every_report(monkeypatch):
    from dta.measure import energy

    # registered for this test only: other tests (the CLI's help) list every registered model
    monkeypatch.setattr(energy._ENERGY, "_items", dict(energy._ENERGY._items))
    em = EnergyModel(name="test-perbit-1pj", e_mac=1.0, e_ac=1.0, e_other=1.0, e_select=0.0,
                     e_neuron=1.0, source="a test", word_bits=16, memory=PerBit(1.0))
    register_energy_model(em)
    with pytest.raises(ValueError, match="duplicate energy model name"):
        register_energy_model(em)
    r = profile(conv_lif(), torch.ones(1, 1, 1, 3, 3), energy_model="test-perbit-1pj")
    assert r.meta["word_bits"] == 16
    bits = 8 * r.totals["bytes"]  # at 16-bit words
    assert r.totals["memory_uj"] * 1e6 == pytest.approx(bits)
    assert np.isclose(r.totals["bytes_by_model"]["step45-fp32"] - r.totals["bytes"],
                      (98 + 18 + 18 + 18 + 36) * 2)  # the 32-bit words cost 2 bytes more each


def _direct_energies(report):
    """Energy of every registered model from the report's count rows, evaluated directly by
    the model's own functions (what the report's per-row coefficients stand for)."""
    from dta.measure.profile import price

    out = {}
    for name in list_energy_models():
        compute, memory = price(get_energy_model(name), report.traffic,
                                has_neurons=report.has_neurons)
        out[name] = (compute.sum() + (0.0 if memory is None else memory.sum())) / 1e6
    return out


@pytest.mark.parametrize("width,channels,size,batch", [(8, 1, 8, 4), (32, 3, 32, 2)])
def test_energies_from_per_row_coefficients_equal_the_models_own_functions(
        width, channels, size, batch):
    """Repeated calls take the totals from a linear map of the measured counts kept per count
    structure (every built-in model is affine in the measured columns): on new data (other
    inputs, the same ops) they equal each model's own functions on the rows to 1e-12, also
    where a row's other columns cost far more than one count (width 32, 32x32: rows of
    1e7 pJ and 1e6 counts)."""
    from dta.measure.counter import model_state

    torch.manual_seed(0)
    net = create_model("ms_resnet18", attention="dta", T=2, num_classes=10,
                       in_channels=channels, width=width).eval()
    x = torch.rand(batch, channels, size, size)
    first = profile(net, repeat_static(x, 2))
    cache = model_state(net).derived["linear_totals"]
    assert cache[2] is not None  # no built-in model made it fall back
    for scale in (0.9, 1.2):  # other firing, other counts, the same ops
        r = profile(net, repeat_static(x * scale, 2))
        assert model_state(net).derived["linear_totals"] is cache  # the map reused
        assert r.totals["spikes"] != first.totals["spikes"]
        direct = _direct_energies(r)
        for name, value in r.totals["energy_uj_by_model"].items():
            assert value == pytest.approx(direct[name], rel=1e-12), name
        layers = r.layers  # the tables use the same per-row energies
        assert layers["compute_pj"].sum() / 1e6 == pytest.approx(r.totals["compute_uj"],
                                                                 rel=1e-12)


def test_a_model_not_affine_in_the_counts_is_priced_directly(monkeypatch):
    from dta.measure import energy
    from dta.measure.counter import model_state

    class Squared(EnergyModel):  # not affine in the op counts: no linear map
        def compute_pj(self, rows, act_bits=None):
            return super().compute_pj(rows, act_bits) ** 2

    monkeypatch.setattr(energy._ENERGY, "_items", dict(energy._ENERGY._items))
    register_energy_model(Squared(name="test-squared", e_mac=1.0, e_ac=1.0, e_other=1.0,
                                  e_select=0.0, e_neuron=1.0, source="a test"))
    net = create_model("ms_resnet18", attention="none", T=2, num_classes=10, in_channels=1,
                       width=8).eval()
    for scale in (1.0, 2.0):
        r = profile(net, repeat_static(torch.rand(4, 1, 8, 8) * scale, 2))
        assert model_state(net).derived["linear_totals"][2] is None  # priced from the rows
        assert r.totals["energy_uj_by_model"]["test-squared"] == pytest.approx(
            _direct_energies(r)["test-squared"], rel=1e-12)
