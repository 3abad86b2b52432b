"""The gathered loss under 2 gloo processes equals the single-process loss on the same global batch, and the
DDP-style averaged gradients (encoder weights and temperature) equal the single-process gradients; for plain
InfoNCE and for the uncertainty-aware (mutual likelihood) variant; and so do the per-sample losses that the
variances learn to predict."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dist_helpers import WORLD, _data, _loss_and_grads, worker  # noqa: E402

from georeset.models.losses import per_sample_infonce  # noqa: E402


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
    # per-sample losses (variance targets) against the global batch equal the single-process values
    _, _, w_img, w_txt, _ = _data()
    u, v, ls = x_img @ w_img.t(), x_txt @ w_txt.t(), torch.tensor(2.0)
    own = per_sample_infonce(u, v, ls, image_keys=keys, text_keys=keys)
    rows = torch.tensor([1, 3, 5, 7])
    partner = per_sample_infonce(-u[rows], v, ls, rows=rows, image_keys=keys, text_keys=keys)
    want = torch.cat([own[:4], partner[:2], own[4:], partner[2:]])  # rank order: own, then partners
    assert torch.allclose(torch.tensor(got["per_sample"]), want, atol=1e-5)
    mls, mls_grads = _loss_and_grads(x_img, x_txt, keys, "mls")  # the uncertainty-aware variant, same property
    assert abs(got["mls"] - mls) < 1e-5
    for a, b in zip(got["mls_grads"], mls_grads, strict=True):
        assert torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-5)
