"""Checkpoints of the released DTA-SNN code load into ms_resnet18 (dta.models.load_released).

The released layout is built here, by hand, from the released module tree
(https://github.com/MnJnKIM/DTA-SNN, models/DTA_SNN.py, models/layers.py, models/DTA.py):
every module that the released network registers twice appears under both names.
"""

import pytest
import torch
from spikingjelly.activation_based import functional

from dta.cli import main
from dta.experiment import load_trained
from dta.models import (
    ReleasedCheckpointError,
    create_model,
    describe_released,
    load_released,
    repeat_static,
)

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
T, WIDTH = 3, 4


def randomized(net):
    """Every tensor gets distinct random values, so a tensor landing in the wrong place shows."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(int(torch.randint(1, 1000, (), generator=g)))
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.5)
    return net.eval()


def released_layout(net, dta: bool) -> dict:
    """The state_dict the released DTA_SNN_18 would have for ``net``'s weights, aliases included."""
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    out = {}

    def bn(ours, names):  # a tdBatchNorm holds its BatchNorm2d as bn and as seqbn.module
        for field in BN:
            for name in names:
                out[f"{name}.{field}"] = sd[f"{ours}.{field}"].clone()

    out["input_conv.layer.module.weight"] = sd["stem.0.weight"]
    bn("stem.1", ["input_conv.bn.bn", "input_conv.bn.seqbn.module"])
    for stage, blocks in enumerate((3, 3, 2)):
        for i in range(blocks):
            ours, rel = f"stages.{stage}.{i}", f"layer{stage + 1}.{i}"
            for k in (1, 2):  # BasicBlock_MS: convK/bnK and again inside convK_s = tdLayer(...)
                out[f"{rel}.conv{k}.weight"] = sd[f"{ours}.conv{k}.weight"]
                out[f"{rel}.conv{k}_s.layer.module.weight"] = sd[f"{ours}.conv{k}.weight"].clone()
                bn(f"{ours}.bn{k}", [f"{rel}.bn{k}.bn", f"{rel}.bn{k}.seqbn.module",
                                     f"{rel}.conv{k}_s.bn.bn", f"{rel}.conv{k}_s.bn.seqbn.module"])
            if i == 0:
                out[f"{rel}.downsample.layer.module.weight"] = sd[f"{ours}.downsample.0.weight"]
                bn(f"{ours}.downsample.1", [f"{rel}.downsample.bn.bn",
                                            f"{rel}.downsample.bn.seqbn.module"])
    out["fc.layer.module.weight"], out["fc.layer.module.bias"] = sd["fc.weight"], sd["fc.bias"]
    if dta:
        tna, txa = "encoding.T_NA", "encoding.T_XA"
        for p in ("weight", "bias"):
            out[f"{tna}.encoding.0.{p}"] = sd[f"attention.tna.encoding.0.{p}"]
            for j in range(3):
                out[f"{tna}.tca.LTCA.{j}.{p}"] = sd[f"attention.tna.tca.ltca.{j}.{p}"]
            out[f"{tna}.decoding.{p}"] = sd[f"attention.tna.decoding.{p}"]
        for j in (0, 2):
            out[f"{tna}.tca.MLP_block.{j}.weight"] = sd[f"attention.tna.tca.gtca.{j}.weight"]
        for p in ("conv_t.weight", "conv_c.weight", "scale_t", "scale_c"):
            out[f"{txa}.{p}"] = sd[f"attention.txa.{p}"]
    return out


def build(attention, **kw):
    args = dict(attention=attention, T=T, num_classes=10, in_channels=3, width=WIDTH) | kw
    return create_model("ms_resnet18", **args)


def logits(net, x):
    with torch.no_grad():
        y = net(repeat_static(x, net.T))
    functional.reset_net(net)
    return y


@pytest.mark.parametrize("attention,keys,tensors", [("dta", 414, 138), ("none", 398, 122)])
def test_every_tensor_lands_and_logits_are_equal(attention, keys, tensors, tmp_path):
    source = randomized(build(attention))
    released = released_layout(source, attention == "dta")
    assert len(released) == keys and len(source.state_dict()) == tensors  # 414 keys, 138 tensors
    target = build(attention)
    load_released(target, released)
    got, want = target.state_dict(), source.state_dict()
    for name in want:
        assert torch.equal(got[name], want[name]), name
    x = torch.rand(2, 3, 8, 8) * 4
    assert torch.equal(logits(target.eval(), x), logits(source, x))

    # the same from a file, as DataParallel would save it (module. prefix)
    path = tmp_path / "CIFAR10-S0-B64-T3-E250-LR0.1.pth.tar"
    torch.save({f"module.{k}": v for k, v in released.items()}, path)
    again = load_released(build(attention), path)
    assert all(torch.equal(again.state_dict()[k], v) for k, v in want.items())
    info = describe_released(path)
    assert (info.attention, info.T, info.num_classes, info.in_channels, info.width) == (
        attention, T if attention == "dta" else None, 10, 3, WIDTH)
    assert (info.keys, info.tensors) == (keys, tensors)


def test_aliases_must_hold_identical_tensors():
    released = released_layout(randomized(build("dta")), True)
    released["layer2.1.conv1_s.bn.seqbn.module.running_var"] += 1e-3
    with pytest.raises(ReleasedCheckpointError,
                       match=r"aliases layer2\.1\.bn1\.bn\.running_var and "
                             r"layer2\.1\.conv1_s\.bn\.seqbn\.module\.running_var .* differ"):
        load_released(build("dta"), released)


def test_shapes_are_checked():
    released = released_layout(randomized(build("dta", T=4)), True)  # T=4 weights, T=3 model
    with pytest.raises(ReleasedCheckpointError, match=r"trained with T=4 \(model: 3\)"):
        load_released(build("dta"), released)
    released = released_layout(randomized(build("none", num_classes=100, width=8)), False)
    with pytest.raises(ReleasedCheckpointError,
                       match=r"trained with width=8 \(model: 4\), num_classes=100 \(model: 10\)"):
        load_released(build("none"), released)
    released = released_layout(randomized(build("dta")), True)
    released["encoding.T_NA.tca.LTCA.1.weight"] = torch.zeros(12, 1, 3, 3)  # one tensor off
    with pytest.raises(ReleasedCheckpointError,
                       match=r"1 tensor\(s\) differ in shape: "
                             r"encoding\.T_NA\.tca\.LTCA\.1\.weight: checkpoint \(12, 1, 3, 3\), model \(12, 1, 1, 1\)"):
        load_released(build("dta"), released)


def test_missing_and_unexpected_keys_are_named():
    released = released_layout(randomized(build("none")), False)
    for alias in ("bn2.bn", "bn2.seqbn.module", "conv2_s.bn.bn", "conv2_s.bn.seqbn.module"):
        del released[f"layer3.1.{alias}.running_mean"]
    released["layer4.0.conv1.weight"] = torch.zeros(1)
    with pytest.raises(ReleasedCheckpointError,
                       match=r"missing 1 tensor\(s\): layer3\.1\.bn2\.bn\.running_mean; "
                             r"unexpected 1 tensor\(s\): layer4\.0\.conv1\.weight"):
        load_released(build("none"), released)


def test_module_prefix_must_be_on_every_key_or_none():
    released = released_layout(randomized(build("none")), False)
    mixed = {("module." + k if i % 2 else k): v for i, (k, v) in enumerate(released.items())}
    with pytest.raises(ReleasedCheckpointError, match="some keys have the DataParallel 'module.'"):
        load_released(build("none"), mixed)


def test_attention_must_match_what_the_checkpoint_holds():
    with_dta = released_layout(randomized(build("dta")), True)
    with pytest.raises(ReleasedCheckpointError, match="holds DTA weights .* build the model with "
                                                      "attention='dta'"):
        load_released(build("none"), with_dta)
    without = released_layout(randomized(build("none")), False)
    with pytest.raises(ReleasedCheckpointError, match="holds no DTA weights .* attention='none'"):
        load_released(build("dta"), without)
    with pytest.raises(ReleasedCheckpointError, match="fit ms_resnet18 with attention dta or none"):
        load_released(build("gac"), with_dta)


def test_cli_convert_writes_a_checkpoint_that_measure_reads(tmp_path, capsys):
    # 2 input channels and 10 classes, shaped for the embedded dvs-digits (12x12 events)
    source = randomized(build("dta", in_channels=2))
    ckpt = tmp_path / "DVSCIFAR10-S0-B64-T3-E1000-LR0.05.pth.tar"
    torch.save(released_layout(source, True), ckpt)
    out = tmp_path / "converted.pt"
    assert main(["convert", "--released", str(ckpt), str(out), "--dataset", "dvs-digits"]) == 0
    assert "T=3, width 4, 10 classes, 2 input channels (414 keys, 138 tensors" in \
        capsys.readouterr().out
    model, cfg = load_trained(out)
    assert (cfg.dataset, cfg.attention, cfg.T, cfg.width) == ("dvs-digits", "dta", 3, WIDTH)
    x = torch.rand(2, 2, 12, 12) * 3
    assert torch.equal(logits(model, x), logits(source, x))
    assert main(["measure", "--checkpoint", str(out), "--data-root", str(tmp_path / "data"),
                 "--batch-size", "4"]) == 0
    assert f"checkpoint {out} (dvs-digits/dta, T=3)" in capsys.readouterr().out

    # OUT is never replaced silently; a disagreeing --T names both values
    assert main(["convert", "--released", str(ckpt), str(out)]) == 2
    assert "already exists: pass --overwrite" in capsys.readouterr().err
    assert main(["convert", "--released", str(ckpt), str(tmp_path / "b.pt"), "--T", "6",
                 "--dataset", "dvs-digits"]) == 2
    assert "--T 6 disagrees with the checkpoint's T=3" in capsys.readouterr().err
    assert main(["convert", "--released", str(ckpt), str(tmp_path / "c.pt")]) == 0  # cifar10-dvs
    assert load_trained(tmp_path / "c.pt")[1].dataset == "cifar10-dvs"

    # a converted checkpoint is weights to measure, not a run to resume
    from dta.train import CheckpointError, load_checkpoint
    with pytest.raises(CheckpointError, match="converted from a released DTA-SNN checkpoint"):
        load_checkpoint(out, cfg)


def test_cli_convert_without_dta_needs_T(tmp_path, capsys):
    source = randomized(build("none"))
    ckpt = tmp_path / "released.pth.tar"
    torch.save(released_layout(source, False), ckpt)
    assert main(["convert", "--released", str(ckpt), str(tmp_path / "a.pt")]) == 2
    assert "no DTA weights, so its T is not stored in it: pass --T" in capsys.readouterr().err
    assert main(["convert", "--released", str(ckpt), str(tmp_path / "a.pt"), "--T", "3"]) == 0
    model, cfg = load_trained(tmp_path / "a.pt")
    assert (cfg.dataset, cfg.attention, cfg.T, cfg.preset) == ("cifar10", "none", 3, "cifar")
    x = torch.rand(2, 3, 8, 8) * 3
    assert torch.equal(logits(model, x), logits(source, x))
    # a released checkpoint handed to measure directly is told how to convert it
    assert main(["measure", "--checkpoint", str(ckpt)]) == 2
    assert f"convert it first with dta convert --released {ckpt}" in capsys.readouterr().err
