"""Resuming: the data stream restarts at the right position (also with DataLoader workers), and a resumed run's
losses equal the uninterrupted run's, in one process and under torchrun with 2 gloo processes."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_text import write_fake_text_cache  # noqa: E402

from georeset.errors import InputError
from georeset.models.data import ShardDataset, collate, read_manifest
from georeset.models.train import train


def _losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}


def test_data_position_with_workers(synthetic_manifest: Path) -> None:
    man = read_manifest(synthetic_manifest)

    def ids(start: int, n: int) -> list[list[str]]:
        ds = ShardDataset(man, split="train", max_tokens=16, seed=1, partners=True)
        ds.set_position(start, 4)
        it = iter(DataLoader(ds, batch_size=4, collate_fn=collate, num_workers=2))
        return [next(it)["sample_ids"] for _ in range(n)]

    full = ids(0, 6)
    assert ids(3, 3) == full[3:]  # odd start: the workers' round robin is rotated
    assert ids(2, 4) == full[2:]


def _train(out: Path, manifest: Path, **kw: Any) -> dict[str, Any]:
    write_fake_text_cache(out, manifest)
    return train(config="tiny", manifest=manifest, out=out, batch_size=6, max_tokens=48, seed=2, **kw)


def test_resume_in_process_equals_uninterrupted(synthetic_manifest: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    full = _train(a, synthetic_manifest, steps=3)
    part = _train(b, synthetic_manifest, steps=3, stop_after=1, save_every=1)
    assert part["interrupted"] and part["step"] == 1
    ck = torch.load(b / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ck["step"] == 1 and ck["data_state"]["batch_size"] == 6 and len(ck["rng_per_rank"]) == 1
    assert not list(b.glob("*.tmp"))  # atomic write leaves no temp file
    resumed = _train(b, synthetic_manifest, steps=3, resume="auto")
    assert resumed["resumed_at_step"] == 1 and resumed["step"] == 3
    la, lb = _losses(a), _losses(b)
    assert sorted(lb) == [1, 2, 3]
    for s in (1, 2, 3):
        assert lb[s] == pytest.approx(la[s], rel=1e-6, abs=1e-7), s
    assert resumed["final_loss"] == pytest.approx(full["final_loss"], rel=1e-6)
    assert full["final_s1s2"] is not None and full["final_dense"] is not None
    with pytest.raises(InputError, match="batch-size"):
        train(config="tiny", manifest=synthetic_manifest, out=b, batch_size=5, steps=6, seed=2, resume="auto")
    with pytest.raises(InputError, match="--resume"):
        train(config="tiny", manifest=synthetic_manifest, out=b, steps=6, resume=tmp_path / "nope.pt")


@pytest.mark.slow
def test_resume_under_torchrun_equals_uninterrupted(trained_run: dict[str, Any], synthetic_manifest: Path,
                                                    tmp_path: Path) -> None:
    from georeset.models.launch import run_training

    out = tmp_path / "r"
    out.mkdir()
    shutil.copy(trained_run["out"] / "text_features.npz", out)  # same features, no MiniLM load
    res = run_training(manifest=synthetic_manifest, out=out, config="tiny", nproc=2, steps=3, batch_size=8,
                       stream=False, extra_args=("--resume", str(trained_run["out"] / "checkpoint-step1.pt")))
    assert res["resumed_at_step"] == 1 and res["step"] == 3 and not res["text_backbone_loaded"]
    la, lb = _losses(trained_run["out"]), _losses(out)
    assert sorted(lb) == [2, 3]
    for s in (2, 3):
        assert lb[s] == pytest.approx(la[s], rel=1e-5), s


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigkill_of_torchrun_then_resume_continues_the_loss_curve(synthetic_manifest: Path, tmp_path: Path) -> None:
    """A real 2-process torchrun run is SIGKILLed (its whole process group) after a periodic checkpoint; the
    interrupted checkpoint is not a finished run; ``run_training`` (resume by default) continues from its step,
    keeps the metrics before it and recomputes the steps after it exactly as the killed run had logged them."""
    import os
    import signal
    import subprocess
    import time

    from georeset.models.launch import finished_run, run_training, torchrun_command

    out = tmp_path / "k"
    out.mkdir()
    write_fake_text_cache(out, synthetic_manifest)
    kw: dict[str, Any] = {"manifest": synthetic_manifest, "out": out, "config": "tiny", "nproc": 2, "steps": 12,
                          "batch_size": 4, "save_every": 3, "extra_args": ("--max-tokens", "32", "--seed", "1")}
    cmd = torchrun_command(**kw, resume=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([*cmd, "--keep-checkpoints"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while True:
            assert proc.poll() is None, "training ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            saved = [int(p.stem.removeprefix("checkpoint-step")) for p in out.glob("checkpoint-step*.pt")]
            logged = _losses(out) if (out / "metrics.jsonl").is_file() else {}
            if saved and logged and max(logged) > max(saved):
                break
            time.sleep(0.05)
    finally:  # a hard kill of everything: torchrun's group and its workers (each in a session of its own)
        workers = _children(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
    assert len(workers) == 2
    for _ in range(200):
        if not any(_alive(p) for p in workers):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("torchrun workers survived the kill")
    killed = _losses(out)
    at = int(torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)["step"])
    assert 3 <= at < 12 and at % 3 == 0 and finished_run(out) is None  # interrupted: never a finished run
    res = run_training(**kw, stream=False)
    assert res["resumed_at_step"] == at and res["step"] == 12 and res["complete"]
    assert finished_run(out, steps=12) is not None
    after = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert after == list(range(1, 13))  # appended after the checkpoint's step, nothing lost or repeated
    resumed = _losses(out)
    for s in killed:
        assert resumed[s] == pytest.approx(killed[s], rel=1e-5), s  # the same curve before and after the kill


@pytest.mark.slow
def test_kill_of_the_caller_stops_torchrun_and_its_workers(synthetic_manifest: Path, tmp_path: Path) -> None:
    """A demo / CLI process running ``run_training`` is SIGKILLed: torchrun and its workers do not outlive it
    (parent-death signal), and what they leave is an interrupted checkpoint, never a finished run."""
    import os
    import signal
    import subprocess
    import time

    from georeset.models.launch import finished_run

    out = tmp_path / "d"
    out.mkdir()
    write_fake_text_cache(out, synthetic_manifest)
    code = ("from pathlib import Path; from georeset.models.launch import run_training; "
            f"run_training(manifest=Path({str(synthetic_manifest)!r}), out=Path({str(out)!r}), nproc=2, steps=500, "
            "batch_size=4, stream=False, save_every=1000, extra_args=('--max-tokens', '32'))")
    caller = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not ((out / "metrics.jsonl").is_file() and (out / "metrics.jsonl").read_text().strip()):
        assert caller.poll() is None and time.monotonic() < deadline, "training did not start"
        time.sleep(0.1)
    torchrun = _children(caller.pid)
    workers = [w for t in torchrun for w in _children(t)]
    assert len(torchrun) == 1 and len(workers) == 2
    caller.send_signal(signal.SIGKILL)
    caller.wait()
    for _ in range(600):
        if not any(_alive(p) for p in [*torchrun, *workers]):
            break
        time.sleep(0.1)
    else:
        for p in [*torchrun, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        raise AssertionError("torchrun or its workers outlived the killed caller")
    assert finished_run(out) is None


def test_auto_resume_of_a_checkpoint_from_another_version_starts_afresh(synthetic_manifest: Path,
                                                                        tmp_path: Path) -> None:
    from georeset.errors import GeoResetWarning

    out = tmp_path / "v"
    _train(out, synthetic_manifest, steps=2)
    data = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    data.pop("band_registry")  # as written before the one band registry
    data["complete"] = False
    torch.save(data, out / "checkpoint.pt")
    with pytest.warns(GeoResetWarning, match="georeset-bands/1"):
        res = _train(out, synthetic_manifest, steps=2, resume="auto")
    assert res["resumed_from"] is None and res["step"] == 2 and res["complete"]
    with pytest.raises(InputError, match="georeset-bands/1"):  # an explicit path is never silently dropped
        torch.save(data, tmp_path / "old.pt")
        _train(out, synthetic_manifest, steps=2, resume=tmp_path / "old.pt")
