"""The gathered loss under 2 gloo processes equals the single-process loss on the same global batch, and the
DDP-style averaged gradients (encoder weights and temperature) equal the single-process gradients; for plain
InfoNCE and for the uncertainty-aware (mutual likelihood) variant."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dist_helpers import WORLD, _data, _loss_and_grads, worker  # noqa: E402


def test_gathered_loss_equals_single_process(tmp_path: Path) -> None:
    x_img, x_txt, _, _, keys = _data()
    loss, grads = _loss_and_grads(x_img, x_txt, keys)
    out = tmp_path / "dist.json"
    mp.spawn(worker, args=(str(tmp_path / "store"), str(out)), nprocs=WORLD, join=True)
    got = json.loads(out.read_text())
    assert got["gathered"] == [0, 1, 2, 10, 11, 12]
    assert abs(got["loss"] - loss) < 1e-5
    for a, b in zip(got["grads"], grads, strict=True):
        assert torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-5)
    mls, mls_grads = _loss_and_grads(x_img, x_txt, keys, "mls")  # the uncertainty-aware variant, same property
    assert abs(got["mls"] - mls) < 1e-5
    for a, b in zip(got["mls_grads"], mls_grads, strict=True):
        assert torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-5)
