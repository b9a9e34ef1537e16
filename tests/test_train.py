"""Training: determinism, records, atomic checkpoints, kill-and-resume, DDP on two CPU processes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dta.measure import is_neuron
from dta.records import read_records, validate
from dta.train import CheckpointError, load_checkpoint, resolve_config, train

TINY = dict(width=4, T=2, epochs=2, batch_size=32, progress=False, threads=1)


def _cfg(tmp_path, name="run", **kw):
    values = {**TINY, **kw}
    return resolve_config("digits", values.pop("attention", "dta"), out=str(tmp_path / name),
                          data_root=str(tmp_path / "data"), **values)


def _cli(*args, env=None):
    return [sys.executable, "-m", "dta.cli", "train", *args]


def test_same_seed_same_run_and_a_valid_record(tmp_path):
    a = train(_cfg(tmp_path, "a", limit_batches=8))
    b = train(_cfg(tmp_path, "b", limit_batches=8, probe_samples=0))  # the probe changes nothing
    assert a.record["accuracy"] == b.record["accuracy"]
    for (name, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(pa, pb), name
    rec = validate(json.loads((tmp_path / "a" / "record.json").read_text()))
    assert 0 <= rec["accuracy"] <= 1 and rec["method"] == "dta" and rec["T"] == 2
    assert rec["params"] == sum(p.numel() for p in a.model.parameters())
    assert rec["config"]["lr"] == 0.1 and rec["config"]["preset"] == "digits"
    events = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]
    assert any(e["event"] == "step" and "samples_per_s" in e for e in events)
    c = train(_cfg(tmp_path, "c", limit_batches=8, seed=1))
    assert not torch.equal(next(iter(c.model.parameters())), next(iter(a.model.parameters())))


def test_every_epoch_is_instrumented(tmp_path):
    """Per epoch: step time, samples/s and the probe (firing per layer, ACs, MACs, attention
    share) in metrics.jsonl and the record; any-time accuracy t = 1..T from the last evaluation."""
    result = train(_cfg(tmp_path, "i", limit_batches=4, T=3, probe_samples=16))
    rec = result.record
    events = [json.loads(line) for line in (tmp_path / "i" / "metrics.jsonl").read_text().splitlines()]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert epochs == rec["train"]["per_epoch"] and len(epochs) == 2
    lifs = {n for n, m in result.model.named_modules() if is_neuron(m)}
    for e in epochs:
        p = e["probe"]
        assert p["samples"] == 16 and set(p["firing_per_layer"]) == lifs
        assert 0 < p["firing_rate"] < 1 and all(0 <= r <= 1 for r in p["firing_per_layer"].values())
        assert p["acs"] > 0 and p["macs"] > 0 and 0 < p["attention_share"] < 1
        assert e["step_s"] > 0 and e["samples_per_s"] > 0 and 0 < p["seconds"] < e["seconds"] * 10
    # the network changes between epochs, so does what it does on the same probe batch
    assert epochs[0]["probe"]["acs"] != epochs[1]["probe"]["acs"]
    anytime = rec["anytime"]["accuracy"]
    assert len(anytime) == 3 and anytime[-1] == rec["accuracy"] and all(0 <= a <= 1 for a in anytime)
    off = train(_cfg(tmp_path, "off", limit_batches=1, epochs=1, probe_samples=0)).record
    assert "probe" not in off["train"]["per_epoch"][0]


def test_checkpoints_refuse_to_be_overwritten_or_misused(tmp_path):
    train(_cfg(tmp_path, "r", limit_batches=4, epochs=1))
    last = tmp_path / "r" / "last.pt"
    state = load_checkpoint(last)
    assert state["epoch"] == 1 and (tmp_path / "r" / "best.pt").exists()
    with pytest.raises(CheckpointError, match="already exists: pass --resume"):
        train(_cfg(tmp_path, "r", limit_batches=4, epochs=1))
    with pytest.raises(CheckpointError, match="T: checkpoint 2 vs now 3"):
        train(_cfg(tmp_path, "r", limit_batches=4, epochs=1, T=3, resume=True))
    good = last.read_bytes()
    last.write_bytes(good[: len(good) // 2])  # a torn write
    torn = last.read_bytes()
    with pytest.raises(CheckpointError, match="corrupt or not a dta-bench checkpoint"):
        train(_cfg(tmp_path, "r", limit_batches=4, epochs=2, resume=True))
    assert last.read_bytes() == torn  # never overwritten
    torch.save({"something": "else"}, last)
    with pytest.raises(CheckpointError, match="not a dta-bench checkpoint"):
        load_checkpoint(last)
    assert not list((tmp_path / "r").glob(".*.tmp"))


def test_resume_after_kill_mid_epoch_loses_at_most_that_epoch(tmp_path):
    data = str(tmp_path / "data")
    common = ["--dataset", "digits", "--attention", "tcja", "--width", "4", "--T", "2",
              "--epochs", "3", "--batch-size", "16", "--log-every", "5", "--data-root", data,
              "--threads", "1", "--no-progress"]
    # the uninterrupted reference run
    ref = subprocess.run(_cli(*common, "--out", str(tmp_path / "ref")), capture_output=True,
                         text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr
    # the same run, killed (SIGKILL) while it is in the middle of epoch 2
    out = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*common, "--out", str(out)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            if metrics.exists() and any(
                    '"event": "step", "epoch": 2' in line for line in metrics.read_text().splitlines()):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run never reached epoch 2")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint(out / "last.pt")["epoch"] == 1  # epoch 2 was lost, epoch 1 kept
    assert not (out / "record.json").exists()
    resumed = subprocess.run(_cli(*common, "--out", str(out), "--resume"), capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "ref" / "record.json").read_text())
    b = json.loads((out / "record.json").read_text())
    assert b["accuracy"] == a["accuracy"] and b["train"]["final_loss"] == a["train"]["final_loss"]
    wa = torch.load(tmp_path / "ref" / "last.pt", weights_only=True)["model"]
    wb = torch.load(out / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # bit-identical to the uninterrupted run
    assert '"event": "resume", "epoch": 1' in metrics.read_text()


def test_two_process_ddp_on_cpu_matches_single_process(tmp_path):
    """torchrun + gloo, same global batch and data order. BatchNorm normalises per process
    (SyncBatchNorm needs a GPU), so the runs differ slightly: within 3 percentage points."""
    data = str(tmp_path / "data")
    common = ["--dataset", "digits", "--attention", "dta", "--width", "8", "--T", "2",
              "--epochs", "3", "--batch-size", "32", "--data-root", data, "--threads", "1",
              "--no-progress"]
    single = subprocess.run(_cli(*common, "--out", str(tmp_path / "single")), capture_output=True,
                            text=True, timeout=900)
    assert single.returncode == 0, single.stderr
    torchrun = Path(sys.executable).with_name("torchrun")
    ddp = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "dta.cli",
                          "train", *common, "--out", str(tmp_path / "ddp")],
                         capture_output=True, text=True, timeout=900)
    assert ddp.returncode == 0, ddp.stderr
    assert ddp.stdout.count("test accuracy") == 1  # rank 0 reports, rank 1 stays quiet
    a = json.loads((tmp_path / "single" / "record.json").read_text())
    b = json.loads((tmp_path / "ddp" / "record.json").read_text())
    assert b["train"]["world_size"] == 2 and a["train"]["world_size"] == 1
    assert a["accuracy"] > 0.9 and abs(a["accuracy"] - b["accuracy"]) <= 0.03


def test_record_reader_reports_bad_files_and_skips_them(tmp_path):
    train(_cfg(tmp_path, "ok", limit_batches=2, epochs=1))
    (tmp_path / "ok" / "broken.json").write_text("{not json")
    (tmp_path / "ok" / "foreign.json").write_text(json.dumps({"accuracy": 97}))
    records, problems = read_records([tmp_path / "ok"])
    assert len(records) == 1 and len(problems) == 2
    assert any("broken.json: not valid JSON" in p for p in problems)
    assert any("foreign.json: not a dta-bench record" in p for p in problems)


def test_cli_train_reports_user_errors_in_one_line(tmp_path):
    res = subprocess.run(_cli("--dataset", "cifar10", "--data-root", str(tmp_path), "--out",
                              str(tmp_path / "x")), capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert "dta train: error: dataset 'cifar10' not found" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("field, value", [("mixup_prob", 1.5), ("cutmix_prob", -0.1),
                                          ("label_smoothing", 2.0), ("epochs", 0)])
def test_out_of_range_settings_are_clear_errors(tmp_path, field, value):
    with pytest.raises(ValueError, match=f"train: {field} must be"):
        _cfg(tmp_path, **{field: value})
