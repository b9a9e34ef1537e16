"""Latency across T on the CPU; the CUDA path is selected by the device."""

import pytest
import torch

from dta.measure.latency import CpuTimer, CudaEventTimer, measure_latency, select_timer, time_forward
from dta.models import create_model, repeat_static


def factory(T):
    return create_model("ms_resnet18", attention="dta", T=T, num_classes=10, in_channels=1, width=4)


def test_latency_table_over_T_and_batch():
    df = measure_latency(factory, (1, 8, 8), Ts=[1, 2], batch_sizes=[1, 3], warmup=1, repeats=3)
    assert list(df[["T", "batch"]].itertuples(index=False, name=None)) == [(1, 1), (1, 3), (2, 1), (2, 3)]
    assert (df.median_ms > 0).all() and (df.p10_ms <= df.median_ms).all()
    assert (df.median_ms <= df.p90_ms).all()
    assert (df.throughput_sps == df.batch / (df.median_ms / 1e3)).all()
    assert set(df.timer) == {"perf_counter"} and (df.torch == torch.__version__).all()


def test_timer_follows_the_device():
    assert isinstance(select_timer("cpu"), CpuTimer)
    if torch.cuda.is_available():  # pragma: no cover - exercised on GPU machines
        assert isinstance(select_timer("cuda"), CudaEventTimer)
    else:
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_timer("cuda")
    with pytest.raises(ValueError, match="unsupported device type 'meta'"):
        select_timer("meta")


def test_time_forward_resets_state_and_restores_mode():
    net = factory(2).train()
    x = repeat_static(torch.rand(2, 1, 8, 8), 2)
    times = time_forward(net, x, warmup=1, repeats=2)
    assert len(times) == 2 and all(t > 0 for t in times)
    assert net.training  # restored
    with pytest.raises(ValueError, match="repeats >= 1"):
        time_forward(net, x, repeats=0)
