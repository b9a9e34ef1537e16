"""The released DTA-SNN recurrence, written out for the equality tests.

Follows https://github.com/MnJnKIM/DTA-SNN (models/layers.py ``LIFSpike``/``ZIF``,
``tdLayer``/``SeqToANNContainer``, models/DTA_SNN.py ``MS_ResNet._forward_impl``,
models/DTA.py, TXA.py, TNA.py) and https://github.com/bollossom/GAC
(models/GAU.py ``TA``/``SCA``, MS_ResNet.py ``GAC``): input ``[B, T, ...]``,
convolutions and BatchNorm on ``[B*T, ...]`` (time folded into batch), every
LIF a Python loop over t, the classifier per step, readout the mean over T.

It reads the weights of one of our models by attribute path and computes with
``torch.nn.functional`` only, so it shares no code with ``dta`` beyond the
parameter tensors. Spikes take the input's dtype (the released code returns
float32; in float64 that would not run).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ZIF(torch.autograd.Function):
    """The released spike function: ``input > 0``; gradient ``max(0, 1 - |input|)`` (gama 1)."""

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * (1 - u.abs()).clamp(min=0)


def lif_bt(x: torch.Tensor) -> torch.Tensor:
    """``LIFSpike.forward`` on ``[B, T, ...]``."""
    mem = 0
    spikes = []
    for t in range(x.shape[1]):
        mem = mem * 0.5 + x[:, t, ...]
        spike = ZIF.apply(mem - 1.0)
        mem = (1 - spike) * mem
        spikes.append(spike)
    return torch.stack(spikes, dim=1)


def lif_tb(x: torch.Tensor) -> torch.Tensor:
    """The same recurrence on a time-first ``[T, ...]`` tensor."""
    return lif_bt(x.transpose(0, 1)).transpose(0, 1)


def membranes_tb(x: torch.Tensor) -> torch.Tensor:
    """Charged membranes (before reset) of the recurrence on ``[T, ...]``, no grad."""
    with torch.no_grad():
        mem = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            mem = mem * 0.5 + x[t]
            out.append(mem)
            mem = (1 - (mem - 1.0 > 0).to(mem.dtype)) * mem
        return torch.stack(out)


class ReleasedLIF(nn.Module):
    """A drop-in for our LIF layers that runs the released loop on ``[T, B, ...]``."""

    def forward(self, x):
        return lif_tb(x)


def _seq(fn, x):
    """``SeqToANNContainer``: fold ``[B, T]`` into the batch, apply, unfold."""
    y = fn(x.flatten(0, 1).contiguous())
    return y.view(x.shape[0], x.shape[1], *y.shape[1:])


def _conv(m, x):
    conv = F.conv1d if isinstance(m, nn.Conv1d) else F.conv3d if isinstance(m, nn.Conv3d) else F.conv2d
    return conv(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)


def _bn(m, x, training):
    return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, training,
                        m.momentum, m.eps)


def _conv_bn(conv, bn, x, training):  # tdLayer(conv, tdBatchNorm)
    return _seq(lambda y: _bn(bn, _conv(conv, y), training), x)


def _ms_block(block, x, training):  # BasicBlock_MS
    identity = x
    out = lif_bt(x)
    out = _conv_bn(block.conv1, block.bn1, out, training)
    out = lif_bt(out)
    out = _conv_bn(block.conv2, block.bn2, out, training)
    if block.downsample is not None:
        identity = _conv_bn(block.downsample[0], block.downsample[1], x, training)
    return out + identity


def _txa(m, x_seq):  # T_XA
    x_t = torch.mean(x_seq, dim=[3, 4])
    x_c = x_t.permute(0, 2, 1)
    attn_t = torch.sigmoid(_conv(m.conv_t, x_t))
    attn_c = torch.sigmoid(_conv(m.conv_c, x_c).permute(0, 2, 1))
    after_t = attn_t * m.scale_t
    after_c = attn_c * m.scale_c
    return (x_seq + after_t[:, :, :, None, None]) * (x_seq + after_c[:, :, :, None, None])


def _tna(m, x):  # T_NA with TCA, on [B, T*C, H, W]
    shortcut = x.clone()
    x = F.gelu(_conv(m.encoding[0], x))
    u = x.clone()
    ltca = _conv(m.tca.ltca[2], _conv(m.tca.ltca[1], _conv(m.tca.ltca[0], x)))
    b, c = x.shape[:2]
    gap = F.adaptive_avg_pool2d(x, 1).view(b, c)
    gtca = F.linear(F.relu(F.linear(gap, m.tca.gtca[0].weight)), m.tca.gtca[2].weight).view(b, c, 1, 1)
    x = _conv(m.decoding, gtca * ltca * u)
    return x + shortcut


def _dta(m, x_seq, spikes):  # DTA
    B, T, C, H, W = x_seq.shape
    tna = _tna(m.tna, x_seq.reshape(B, T * C, H, W)).reshape(B, T, C, H, W)
    txa = _txa(m.txa, x_seq)
    return torch.sigmoid(tna * txa) * spikes


def _gac(m, x_seq, spikes):  # GAC: TA (shared MLP over T on avg/max pool) and SCA
    def mlp(p):
        return _conv(m.ta.mlp[2], F.relu(_conv(m.ta.mlp[0], p)))

    ta = mlp(F.adaptive_avg_pool3d(x_seq, 1)) + mlp(F.adaptive_max_pool3d(x_seq, 1))
    sca = _seq(lambda y: _conv(m.sca[2], F.relu(_conv(m.sca[0], y))), x_seq)
    return torch.sigmoid(ta * sca) * spikes


ENCODINGS = {"dta": _dta, "gac": _gac, "none": None}


def released_forward(net, images: torch.Tensor, *, training: bool | None = None) -> torch.Tensor:
    """Logits ``[B, T, classes]`` of the released network with ``net``'s weights.

    ``net`` is our ``ms_resnet18`` (attention ``dta``, ``gac`` or ``none``);
    ``images`` is ``[B, C, H, W]``, repeated over T as ``add_dimention``.
    ``training`` (default ``net.training``) picks batch or running BN statistics.
    """
    training = net.training if training is None else training
    method = net.attention_name
    if method not in ENCODINGS:
        raise ValueError(f"no released reference for attention {method!r}")
    x = images.unsqueeze(1).repeat(1, net.T, 1, 1, 1)  # add_dimention: [B, T, C, H, W]
    x = _conv_bn(net.stem[0], net.stem[1], x, training)  # input_conv
    if ENCODINGS[method] is not None:
        img = x
        x = lif_bt(x)
        x = ENCODINGS[method](net.attention, img, x)
    for stage in net.stages:
        for block in stage:
            x = _ms_block(block, x, training)
    x = lif_bt(x)
    x = _seq(lambda y: F.adaptive_avg_pool2d(y, (1, 1)), x)
    x = torch.flatten(x, 2)
    return _seq(lambda y: F.linear(y, net.fc.weight, net.fc.bias), x)
