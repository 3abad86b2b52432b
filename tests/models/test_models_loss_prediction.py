"""Variances trained to predict each sample's retrieval loss, and zero-shot prototypes built from captions."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from georeset.models.losses import loss_prediction_nll, per_sample_infonce, string_keys
from georeset.models.zeroshot import caption_cover, caption_prototypes
from georeset.pipelines.harvest.captions import ground_sentence
from georeset.pipelines.sample_world.spectra import LandCover


def test_per_sample_infonce_is_the_image_to_text_row_loss() -> None:
    torch.manual_seed(0)
    u, v = torch.randn(6, 8), torch.randn(6, 8)
    ls = torch.tensor(math.log(10.0))
    logits = 10.0 * F.normalize(u, dim=-1) @ F.normalize(v, dim=-1).t()
    want = torch.stack([torch.logsumexp(logits[i], 0) - logits[i, i] for i in range(6)])
    got = per_sample_infonce(u, v, ls)
    assert torch.allclose(got, want, atol=1e-5)
    assert not got.requires_grad
    # rows: queries 0, 1 are other views of samples 3 and 5: their positive is text 3 / 5
    got_rows = per_sample_infonce(u[[0, 1]], v, ls, rows=torch.tensor([3, 5]))
    want_rows = torch.stack([torch.logsumexp(logits[q], 0) - logits[q, r] for q, r in ((0, 3), (1, 5))])
    assert torch.allclose(got_rows, want_rows, atol=1e-5)
    # samples 0 and 1 share a patch: text 1 is no negative of image 0 (and vice versa); others unchanged
    keys = string_keys(["p0", "p0", "p2", "p3", "p4", "p5"])
    masked = per_sample_infonce(u, v, ls, image_keys=keys)
    keep0 = [0, 2, 3, 4, 5]
    assert torch.allclose(masked[0], torch.logsumexp(logits[0, keep0], 0) - logits[0, 0], atol=1e-5)
    assert torch.allclose(masked[2:], want[2:], atol=1e-5)


def test_loss_prediction_nll_learns_the_log_of_each_target() -> None:
    target = torch.tensor([0.05, 0.5, 2.0, 4.0])
    logvar = torch.zeros(4, 3, requires_grad=True)
    opt = torch.optim.SGD([logvar], lr=0.5)
    for _ in range(400):
        opt.zero_grad()
        loss_prediction_nll(logvar, target).backward()
        opt.step()
    s = logvar.detach().mean(dim=1)
    assert torch.allclose(s, target.log(), atol=1e-2)
    assert bool((s[1:] > s[:-1]).all())  # the variance orders samples by their loss
    assert loss_prediction_nll(torch.zeros(0, 3), torch.zeros(0)).item() == 0.0


def test_caption_cover_reads_back_the_ground_sentence() -> None:
    fr = np.zeros(len(LandCover))
    fr[LandCover.TREES], fr[LandCover.GRASS], fr[LandCover.WATER] = 0.62, 0.30, 0.08
    text = ground_sentence(fr, buildings=3, kinds={"bench": 2}) + " Kaivopuisto, a park (leisure=park) in Helsinki."
    got = caption_cover(text)
    assert got == {int(LandCover.TREES): 0.62, int(LandCover.GRASS): 0.30, int(LandCover.WATER): 0.08}
    assert caption_cover("Nordea, a bank (amenity=bank) in Helsinki.") == {}
    assert caption_cover("Around it: 3 buildings. A shop.") == {}


def test_caption_prototypes_average_the_texts_that_name_a_class_first() -> None:
    fr_t, fr_b = np.zeros(len(LandCover)), np.zeros(len(LandCover))
    fr_t[LandCover.TREES], fr_t[LandCover.GRASS] = 0.8, 0.2
    fr_b[LandCover.BUILDING], fr_b[LandCover.TREES] = 0.6, 0.4
    texts = [ground_sentence(fr_t) + " A.", ground_sentence(fr_t) + " B.", ground_sentence(fr_b) + " C.", "D."]
    emb = torch.eye(4, 5)
    protos, counts = caption_prototypes(emb, texts, min_fraction=0.5)
    assert counts[LandCover.TREES] == 2 and counts[LandCover.BUILDING] == 1 and sum(counts) == 3
    assert torch.allclose(protos[LandCover.TREES], (emb[0] + emb[1]) / 2)
    assert torch.allclose(protos[LandCover.BUILDING], emb[2])
    assert float(protos[LandCover.WATER].abs().sum()) == 0.0
    _, counts_low = caption_prototypes(emb, texts, min_fraction=0.2)
    assert counts_low[LandCover.TREES] == 3 and counts_low[LandCover.GRASS] == 2


def test_loss_target_variances_do_not_shape_the_image_features() -> None:
    from dataclasses import replace

    from georeset.models.config import load_config
    from georeset.models.model import GeoResetModel
    from georeset.models.text_encoder import FrozenTextBackbone
    from georeset.models.tokens import RAW_DIM

    cfg = load_config("tiny")
    backbone = FrozenTextBackbone(encode_fn=lambda texts: torch.zeros(len(texts), cfg.text.backbone_dim))
    desc, mask = torch.randn(2, 12, RAW_DIM), torch.ones(2, 12, dtype=torch.bool)
    grads = {}
    for target in ("loss", "pair_nll"):
        torch.manual_seed(0)
        model = GeoResetModel(replace(cfg, train=replace(cfg.train, variance_target=target)), text_backbone=backbone)
        torch.nn.init.normal_(model.image.head.logvar.weight, std=0.1)  # zero at init: as after some training
        _mean, logvar = model.image(desc, mask)
        logvar.sum().backward()
        grads[target] = sum(float(p.grad.abs().sum()) for n, p in model.image.named_parameters()
                            if p.grad is not None and not n.startswith("head."))
        assert model.image.head.logvar.weight.grad is not None  # the variance layer itself still learns
    assert grads["loss"] == 0.0 < grads["pair_nll"]
