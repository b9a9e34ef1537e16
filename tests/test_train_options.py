"""Training speed options (--amp, --channels-last, --compile): off is the plain step, on takes effect."""

import itertools
import json

import pytest
import torch
from spikingjelly.activation_based import functional
from torch.utils.data import DataLoader

from dta.cli import build_parser
from dta.data import build_datasets, to_time_first
from dta.data.augment import one_hot
from dta.models import create_model, repeat_static
from dta.train import (CheckpointError, Dist, ShardSampler, autocast, compile_model, grad_scaler, load_checkpoint,
                       resolve_config, soft_cross_entropy, to_channels_last, train,
                       train_one_epoch)

TINY = dict(width=4, T=2, batch_size=16, progress=False, threads=1)
STEPS = 4


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    train_set, _, info = build_datasets("digits", root=tmp_path_factory.mktemp("data"), T=2,
                                        augment=False)
    return train_set, info


def _loader(train_set, batch_size=TINY["batch_size"]):
    return DataLoader(train_set, batch_size=batch_size,
                      sampler=ShardSampler(len(train_set), shuffle=True, seed=7, rank=0, world=1,
                                           drop=True))


def _model(info, attention="dta"):
    torch.manual_seed(0)
    model = create_model("ms_resnet18", attention=attention, T=TINY["T"],
                         num_classes=info.num_classes, in_channels=info.in_channels,
                         width=TINY["width"])
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-5)


def _cfg(tmp_path, **kw):
    return resolve_config("digits", kw.pop("attention", "dta"), out=str(tmp_path / "run"),
                          data_root=str(tmp_path / "data"), **{**TINY, **kw})


def _epoch(model, optimizer, cfg, train_set, info, scaler=None, steps=STEPS, batch_size=16):
    return train_one_epoch(model, _loader(train_set, batch_size), optimizer, cfg, info,
                           torch.device("cpu"), Dist(), epoch=0, n_batches=steps, scaler=scaler)


def test_options_off_is_bit_identical_to_the_plain_float32_step(tmp_path, digits):
    """The step as it was before the options existed, written out here, against train_one_epoch."""
    train_set, info = digits
    cfg = _cfg(tmp_path)
    assert (cfg.amp, cfg.channels_last, cfg.compile) == ("off", False, False)  # the defaults
    model, optimizer = _model(info)
    stats = _epoch(model, optimizer, cfg, train_set, info)

    ref, ref_opt = _model(info)
    ref.train()
    loss_sum = 0.0
    for x, y in itertools.islice(_loader(train_set), STEPS):
        target = one_hot(y, info.num_classes, cfg.label_smoothing)
        logits = ref(to_time_first(x, cfg.T, info.temporal)).mean(0)
        loss = soft_cross_entropy(logits, target)
        ref_opt.zero_grad(set_to_none=True)
        loss.backward()
        ref_opt.step()
        functional.reset_net(ref)
        loss_sum += loss.detach().double().item() * y.shape[0]
    assert stats["loss"] == loss_sum / stats["samples"]
    for (name, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("amp, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_amp_autocasts_the_forward_and_keeps_float32_weights(tmp_path, digits, amp, dtype):
    train_set, info = digits
    model, optimizer = _model(info)
    seen = []
    for conv in (model.stem[0], model.stages[-1][-1].conv2):
        conv.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    before = [p.detach().clone() for p in model.parameters()]
    scaler = grad_scaler(amp, torch.device("cpu"))
    assert (scaler is not None) == (amp == "fp16")  # bf16 has float32's range: no scaler
    # reduced-precision convolutions are slow on CPUs without native support: 2 small steps
    stats = _epoch(model, optimizer, _cfg(tmp_path, amp=amp), train_set, info, scaler, steps=2,
                   batch_size=4)
    assert set(seen) == {dtype} and len(seen) == 2 * 2
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.isfinite(torch.tensor(stats["loss"]))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    if scaler is not None:  # it ran: each step either grew its tracker or caught an overflow
        state = scaler.state_dict()  # (a caught overflow halves the scale, 65536 at the start)
        assert state["_growth_tracker"] == 2 or state["scale"] < 65536.0


def test_autocast_off_enters_no_autocast():
    with autocast("off", torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
    with autocast("bf16", torch.device("cpu")):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("attention", ["dta", "gac"])  # gac and ma carry rank-5 Conv3d weights
def test_channels_last_converts_2d_convolutions_and_keeps_the_forward(attention):
    model = create_model("ms_resnet18", attention=attention, T=2, num_classes=10, width=4).eval()
    x = repeat_static(torch.rand(3, 3, 8, 8), 2)
    with torch.no_grad():
        ref = model(x)
    functional.reset_net(model)
    if attention == "gac":  # why to_channels_last exists: the plain call fails on Conv3d
        with pytest.raises(RuntimeError, match="rank 4"):
            create_model("ms_resnet18", attention="gac", T=2, num_classes=10,
                         width=4).to(memory_format=torch.channels_last)
    to_channels_last(model)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    outs = []
    model.stages[0][0].conv1.register_forward_hook(lambda mod, args, out: outs.append(out))
    with torch.no_grad():
        y = model(x)  # spikingjelly flattens [T, B, C, H, W] to [T*B, C, H, W] around the conv
    functional.reset_net(model)
    flat = outs[0].flatten(0, 1)
    assert flat.is_contiguous(memory_format=torch.channels_last) and not flat.is_contiguous()
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)


def test_compiled_lif_network_matches_eager_forward_and_backward():
    """Dynamo + AOTAutograd through spikingjelly's multi-step LIF and surrogate (CPU)."""
    torch._dynamo.reset()
    model = create_model("ms_resnet18", attention="dta", T=2, num_classes=10, width=4)
    x = repeat_static(torch.rand(3, 3, 8, 8), 2)
    ref = model(x)
    functional.reset_net(model)
    ref.sum().backward()
    ref_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    net = compile_model(model, "aot_eager")
    assert isinstance(net, torch._dynamo.eval_frame.OptimizedModule) and net._orig_mod is model
    for _ in range(2):  # the second call runs the cached graph (reset_net between calls)
        y = net(x)
        functional.reset_net(model)
        y.sum().backward()
        torch.testing.assert_close(y, ref)
        for p, g in zip(model.parameters(), ref_grads):
            torch.testing.assert_close(p.grad, g)
        model.zero_grad(set_to_none=True)
    with pytest.raises(ValueError, match="unknown compile backend 'nope'; known: .*inductor"):
        compile_model(model, "nope")


GRAPHS = []


def _counting_backend(gm, example_inputs):
    """A torch.compile backend that records each graph dynamo hands it and runs it as is."""
    GRAPHS.append(gm)
    return gm.forward


def test_train_with_all_options_records_them_and_compiles(tmp_path):
    from torch._dynamo import register_backend

    if "dta_test_counting" not in torch.compiler.list_backends(exclude_tags=()):
        register_backend(compiler_fn=_counting_backend, name="dta_test_counting")
    torch._dynamo.reset()
    GRAPHS.clear()
    cfg = _cfg(tmp_path, epochs=1, limit_batches=2, amp="bf16", channels_last=True, compile=True,
               compile_backend="dta_test_counting")
    result = train(cfg)
    assert GRAPHS, "torch.compile never handed the network to its backend"
    assert any(n.op == "call_function" for g in GRAPHS for n in g.graph.nodes)
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    for where in (record["config"], result.record["config"]):
        assert (where["amp"], where["channels_last"], where["compile"]) == ("bf16", True, True)
        assert where["compile_backend"] == "dta_test_counting"
    assert (record["train"]["amp"], record["train"]["channels_last"], record["train"]["compile"]) \
        == ("bf16", True, True)
    convs = [m for m in result.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    state = load_checkpoint(tmp_path / "run" / "last.pt", cfg)
    assert not any(k.startswith("_orig_mod.") for k in state["model"])  # the plain module's keys
    # amp changes the arithmetic: resuming with another value is refused; channels_last and
    # compile only change how it is executed (like --device): resuming without them is fine
    with pytest.raises(CheckpointError, match="amp: checkpoint 'bf16' vs now 'off'"):
        load_checkpoint(tmp_path / "run" / "last.pt", _cfg(tmp_path, epochs=1, limit_batches=2))
    load_checkpoint(tmp_path / "run" / "last.pt",
                    _cfg(tmp_path, epochs=1, limit_batches=2, amp="bf16"))
    # a checkpoint made before the options existed (no such keys) counts as all off
    for key in ("amp", "channels_last", "compile", "compile_backend"):
        del state["config"][key]
    torch.save(state, tmp_path / "old.pt")
    load_checkpoint(tmp_path / "old.pt", _cfg(tmp_path, epochs=1, limit_batches=2))
    with pytest.raises(CheckpointError, match="amp: checkpoint 'off' vs now 'fp16'"):
        load_checkpoint(tmp_path / "old.pt", _cfg(tmp_path, epochs=1, limit_batches=2, amp="fp16"))


def test_bad_amp_value_and_the_cli_options(tmp_path):
    with pytest.raises(ValueError, match="amp must be one of off, bf16, fp16; got 'fp8'"):
        _cfg(tmp_path, amp="fp8")
    parser = build_parser()
    args = parser.parse_args(["train", "--amp", "--channels-last", "--compile"])
    assert (args.amp, args.channels_last, args.compile) == ("bf16", True, True)
    args = parser.parse_args(["train", "--amp", "fp16", "--compile-backend", "aot_eager"])
    assert (args.amp, args.compile_backend, args.channels_last, args.compile) == \
        ("fp16", "aot_eager", None, None)  # None: keep the preset's (off)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--amp", "fp8"])


@pytest.mark.slow
def test_inductor_compiles_the_lif_network_on_cpu():
    """The default backend, forward and backward, channels_last, batch > 1 (about a minute).

    Inductor's generated code checks each op's output strides against the op's fake
    (meta) implementation, so this also guards the neuron's custom op: a fake that
    promises another memory layout than the kernel returns fails here, not on a GPU.
    """
    torch._dynamo.reset()
    model = create_model("ms_resnet18", attention="dta", T=2, num_classes=10, width=2)
    to_channels_last(model)
    x = repeat_static(torch.rand(2, 3, 8, 8), 2)
    ref = model(x)
    functional.reset_net(model)
    ref.sum().backward()
    ref_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    y = compile_model(model)(x)  # inductor: fused C++ kernels
    functional.reset_net(model)
    y.sum().backward()
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-5)
    for p, g in zip(model.parameters(), ref_grads):  # fusion reorders sums: looser
        torch.testing.assert_close(p.grad, g, rtol=1e-3, atol=1e-4)
