"""Retrieval evaluation on the geographically held-out split.

Recall@k with shared targets
----------------------------
Several texts may pair with one patch and one document may pair with several patches, so retrieval is defined
over *distinct* items:

- text -> image: each distinct ``doc_id`` of the split is a query (its text); the gallery is every distinct
  ``patch_id`` of the split. A query is a hit at k if any of its k nearest patches is paired with that doc.
- image -> text: each distinct ``patch_id`` is a query; the gallery is every distinct ``doc_id``. A hit at k if any
  of the k nearest docs is paired with that patch.

``recall@k`` is the fraction of queries that hit. ``chance@k`` is the expected recall of a random ranking
(hypergeometric: ``1 - C(G - p, k) / C(G, k)`` for ``p`` positives among ``G`` gallery items, averaged over
queries), printed beside it because sample-world galleries are small. Similarity is the cosine of the means.
Images are tokenised with the checkpoint's ``eval_max_tokens`` budget and a fixed seed, so results repeat.

Honest baselines (:func:`text_blind_recall_at_k`, :func:`macro_recall_at_k`)
---------------------------------------------------------------------------
Beside chance, each direction reports ``text_blind@k``: the recall of one *fixed* ranking shared by every query,
the gallery sorted by popularity (the number of distinct positives an item has in the evaluated split, ties by
gallery order). It needs no text and no pixels; a model that does not beat it has learnt nothing about content.
Because documents cluster on a few patches, ``macro_recall@k`` averages per patch *location* (patches with the
same centre, e.g. the S2 and S1 views of a cell, are one location): text -> image first averages the hits of the
documents paired with a location, image -> text the hits of the patches at it; then the locations are averaged
with equal weight. ``macro_text_blind@k`` is the same for the popularity ranking.

Zero-shot land cover: each class gets a prototype built from text alone, never from test images or labels: the
normalised sum of (a) the template ensemble (the mean of the normalised embeddings of the class's phrase in the
``ZERO_SHOT_TEMPLATES``) and (b) the mean embedding of the *training* split's captions whose ground sentence gives
the class at least half of the cell (``CAPTION_MIN_FRACTION``; "From above: mostly trees (62%), ...", parsed from
the text by :func:`~georeset.models.zeroshot.caption_cover`), i.e. prompts in the captions' own words. A class no
training caption supports keeps (a) alone. The headline ``accuracy`` uses these prototypes; ``templates_accuracy``,
``captions_accuracy`` and ``per_template`` report the parts. The rule is fixed (chosen on the training patches of
the demo's seed 1, where (a)+(b) scored 0.83 vs 0.74 for the templates; never on the test split). The majority
baseline is the most frequent label among the evaluated (held-out) patches.

Robustness (:func:`robustness`)
-------------------------------
The same recall on modified test inputs, and its drop from the unmodified (``full``) figures:
``rgb_only`` (optical patches keep only B02/B03/B04 where they have any of them: a band subset), ``gsd_x2`` (every
patch 2x2 mean-pooled, GSD doubled: another GSD), ``s1_only`` / ``s2_only`` (only the S1 / S2 patches of the test
split form the gallery, with the documents paired with them as queries). ``drop`` is ``full - variant``.
``variance``: what the per-dimension variances say (:mod:`georeset.models.variance_eval`): mean variance in
distribution vs scaled, noise and unseen-band inputs, Spearman correlation with the retrieval rank, and the gain
of precision-weighted S1+S2 fusion over either sensor alone.

Zero-shot land cover (``world=``): see :mod:`georeset.models.zeroshot` (accuracy vs. majority-class baseline).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from georeset.errors import GeoResetWarning, InputError
from georeset.models.checkpoint import LoadedCheckpoint, load_checkpoint
from georeset.models.data import load_split, read_manifest, row_image, row_to_tokens
from georeset.models.text_encoder import TEXT_CACHE
from georeset.models.tokens import pad_tokens

__all__ = ["recall_at_k", "chance_recall_at_k", "text_blind_recall_at_k", "macro_recall_at_k", "evaluate",
           "robustness", "ROBUSTNESS_VARIANTS", "ZERO_SHOT_TEMPLATES", "main"]

ZERO_SHOT_TEMPLATES: tuple[str, ...] = (
    "a satellite image of {}",
    "an aerial view of {}",
    "From above: mostly {}.",  # the style of the OSM captions' ground sentence (pipelines/harvest/captions.py)
    "mostly {}",
)

# a training caption supports a class when its ground sentence gives the class at least this share of the cell
CAPTION_MIN_FRACTION = 0.5

RowFn = Callable[[dict[str, Any]], dict[str, Any] | None]


def recall_at_k(sim: torch.Tensor, positives: Sequence[set[int]], ks: Sequence[int]) -> dict[int, float]:
    """Fraction of query rows of ``sim [Q, G]`` with a positive among their top-k gallery columns."""
    kmax = min(max(ks), sim.shape[1])
    top = sim.topk(kmax, dim=1).indices.tolist()
    out = {}
    for k in ks:
        hits = sum(1 for row, pos in zip(top, positives, strict=True) if pos.intersection(row[:k]))
        out[k] = hits / len(positives)
    return out


def chance_recall_at_k(gallery: int, positives: Sequence[set[int]], ks: Sequence[int]) -> dict[int, float]:
    """Expected recall@k of a uniformly random ranking."""
    out = {}
    for k in ks:
        kk = min(k, gallery)
        vals = [1.0 - math.comb(gallery - len(p), kk) / math.comb(gallery, kk) for p in positives]
        out[k] = float(np.mean(vals))
    return out


def _hits(sim: torch.Tensor, positives: Sequence[set[int]], k: int) -> list[bool]:
    top = sim.topk(min(k, sim.shape[1]), dim=1).indices.tolist()
    return [bool(pos.intersection(row)) for row, pos in zip(top, positives, strict=True)]


def popularity_scores(positives: Sequence[set[int]], gallery: int) -> torch.Tensor:
    """``[Q, G]`` scores of the text-blind ranking: every query ranks the gallery by the number of queries it is a
    positive of (ties: earlier gallery items first)."""
    pop = torch.zeros(gallery, dtype=torch.float64)
    for pos in positives:
        for g in pos:
            pop[g] += 1.0
    score = pop - torch.arange(gallery, dtype=torch.float64) * 1e-6  # stable tie break
    return score.unsqueeze(0).expand(len(positives), gallery)


def text_blind_recall_at_k(positives: Sequence[set[int]], gallery: int, ks: Sequence[int]) -> dict[int, float]:
    """Recall@k of the popularity ranking, the same for every query (see the module docstring)."""
    return recall_at_k(popularity_scores(positives, gallery), positives, ks)


def macro_recall_at_k(sim: torch.Tensor, positives: Sequence[set[int]], groups: Sequence[Sequence[str]],
                      ks: Sequence[int]) -> dict[int, float]:
    """Recall@k averaged per group (location) with equal weight: a query counts towards every group it belongs
    to (``groups[q]``), each group's recall is the mean hit of its queries."""
    out = {}
    for k in ks:
        by_group: dict[str, list[bool]] = {}
        for hit, gs in zip(_hits(sim, positives, k), groups, strict=True):
            for g in set(gs):
                by_group.setdefault(g, []).append(hit)
        out[k] = float(np.mean([np.mean(v) for v in by_group.values()])) if by_group else 0.0
    return out


def _zero_shot(model: Any, img_means: torch.Tensor, labels: list[int | None],
               train_texts: Sequence[str] = ()) -> dict[str, Any]:
    from georeset.models.zeroshot import caption_prototypes, class_prompts, zero_shot_scores

    per_template, prompts = {}, []
    for t in ZERO_SHOT_TEMPLATES:
        pm = F.normalize(model.encode_text(class_prompts(t))[0].float().cpu(), dim=-1)
        prompts.append(pm)
        per_template[t] = zero_shot_scores(img_means, pm, labels, template=t)["accuracy"]
    tmpl = F.normalize(torch.stack(prompts).mean(0), dim=-1)
    accs = [a for a in per_template.values() if a is not None]
    extra: dict[str, Any] = {"per_template": per_template, "best_template_accuracy": max(accs) if accs else None,
                             "mean_template_accuracy": float(np.mean(accs)) if accs else None}
    protos, name = tmpl, " | ".join(ZERO_SHOT_TEMPLATES)
    if train_texts:
        texts = sorted(set(train_texts))
        tm = torch.cat([model.encode_text(texts[i : i + 256])[0].float().cpu() for i in range(0, len(texts), 256)])
        cap, counts = caption_prototypes(tm, texts, min_fraction=CAPTION_MIN_FRACTION)
        has = torch.tensor(counts) > 0
        cap = torch.where(has[:, None], F.normalize(cap, dim=-1), tmpl)  # classes no caption supports: templates
        protos = F.normalize(cap + tmpl, dim=-1)  # text-only prototypes: caption mean + template ensemble
        name = f"caption prototypes (train texts, >= {CAPTION_MIN_FRACTION:.0%} of the cell) + templates"
        extra["templates_accuracy"] = zero_shot_scores(img_means, tmpl, labels)["accuracy"]
        extra["captions_accuracy"] = zero_shot_scores(img_means, cap, labels)["accuracy"]
        extra["caption_counts"] = counts
    ens = zero_shot_scores(img_means, protos, labels, template=name)
    return {**ens, **extra}


@torch.no_grad()
def evaluate(*, checkpoint: Path, manifest: Path, split: str = "test", ks: Sequence[int] = (1, 5, 10),
             batch_size: int = 32, max_tokens: int | None = None, device: str = "cpu", seed: int = 0,
             row_fn: RowFn | None = None, loaded: LoadedCheckpoint | None = None,
             world: Path | None = None, variance: bool = False) -> dict[str, Any]:
    """Text -> image and image -> text recall@k of ``checkpoint`` on ``split`` (see the module docstring).

    ``row_fn`` maps each test row to a modified row, or ``None`` to leave it out (robustness variants).
    ``world``: a sample-world directory; adds ``zero_shot`` (land-cover classification from text prompts, labels
    from the world's land-cover rasters; :mod:`georeset.models.zeroshot`). ``variance``: adds ``variance``
    (:func:`georeset.models.variance_eval.variance_report`).
    """
    ck = loaded or load_checkpoint(Path(checkpoint), device=device)
    ck.model.text.backbone.load_cache(Path(checkpoint).parent / TEXT_CACHE)
    man = read_manifest(Path(manifest))
    if ck.meta.get("snapshot_id") and man.snapshot_id != ck.meta["snapshot_id"]:
        warnings.warn(f"evaluating on snapshot {man.snapshot_id!r}, trained on {ck.meta['snapshot_id']!r}",
                      GeoResetWarning, stacklevel=2)
    rows = load_split(man, split)
    if row_fn is not None:
        rows = [r2 for r2 in (row_fn(r) for r in rows) if r2 is not None]
    if not rows:
        raise InputError(f"split {split!r} of {man.path} has no rows", hint="export more pairs or pick another split")
    patch_rows: dict[str, dict[str, Any]] = {}
    doc_text: dict[str, str] = {}
    pairs: set[tuple[str, str]] = set()
    for r in rows:
        pid, did = str(r["patch_id"]), str(r["doc_id"])
        patch_rows.setdefault(pid, r)
        doc_text.setdefault(did, str(r["text"]))
        pairs.add((did, pid))
    pids, dids = list(patch_rows), list(doc_text)
    p_index, d_index = {p: i for i, p in enumerate(pids)}, {d: i for i, d in enumerate(dids)}
    t2i_pos: list[set[int]] = [set() for _ in dids]
    i2t_pos: list[set[int]] = [set() for _ in pids]
    for did, pid in pairs:
        t2i_pos[d_index[did]].add(p_index[pid])
        i2t_pos[p_index[pid]].add(d_index[did])

    model = ck.model
    budget = max_tokens or ck.config.train.eval_max_tokens
    img_means = []
    for i in range(0, len(pids), batch_size):
        toks = [row_to_tokens(patch_rows[p], ck.norm, max_tokens=budget, rng=np.random.default_rng([seed, i + j]))
                for j, p in enumerate(pids[i : i + batch_size])]
        desc, mask = pad_tokens(toks)
        img_means.append(model.encode_image(desc.to(device), mask.to(device))[0].float().cpu())
    txt_means = [model.encode_text([doc_text[d] for d in dids[i : i + batch_size]])[0].float().cpu()
                 for i in range(0, len(dids), batch_size)]
    img = F.normalize(torch.cat(img_means), dim=-1)
    txt = F.normalize(torch.cat(txt_means), dim=-1)
    sim = txt @ img.t()

    loc = {p: f"{float(patch_rows[p]['lon']):.6f},{float(patch_rows[p]['lat']):.6f}" for p in pids}
    t2i_groups = [[loc[pids[g]] for g in pos] for pos in t2i_pos]
    i2t_groups = [[loc[p]] for p in pids]

    def block(s: torch.Tensor, pos: list[set[int]], gallery: int, groups: list[list[str]]) -> dict[str, Any]:
        rec, ch = recall_at_k(s, pos, ks), chance_recall_at_k(gallery, pos, ks)
        blind = text_blind_recall_at_k(pos, gallery, ks)
        macro = macro_recall_at_k(s, pos, groups, ks)
        macro_blind = macro_recall_at_k(popularity_scores(pos, gallery), pos, groups, ks)
        return {"n_queries": len(pos), "gallery": gallery, "n_locations": len({g for gs in groups for g in gs}),
                **{f"recall@{k}": rec[k] for k in ks}, **{f"chance@{k}": ch[k] for k in ks},
                **{f"text_blind@{k}": blind[k] for k in ks}, **{f"macro_recall@{k}": macro[k] for k in ks},
                **{f"macro_text_blind@{k}": macro_blind[k] for k in ks}}

    t2i = block(sim, t2i_pos, len(pids), t2i_groups)
    i2t = block(sim.t(), i2t_pos, len(dids), i2t_groups)
    extra: dict[str, Any] = {}
    if world is not None:
        from georeset.models.zeroshot import LandCoverLabeler

        labeler = LandCoverLabeler(Path(world))
        labels = [labeler.label_row(patch_rows[p]) for p in pids]
        train_texts = [str(r["text"]) for r in load_split(man, "train")] if split != "train" else []
        extra["zero_shot"] = {**_zero_shot(model, torch.cat(img_means), labels, train_texts), "world": str(world)}
    if variance:
        from georeset.models.variance_eval import variance_report

        extra["variance"] = variance_report(ck, rows, ks=ks, max_tokens=max_tokens, seed=seed)
    return {
        "split": split, "n_pairs": len(rows), "n_patches": len(pids), "n_docs": len(dids),
        "n_queries": {"text_to_image": t2i["n_queries"], "image_to_text": i2t["n_queries"]},
        "text_to_image": t2i, "image_to_text": i2t, "checkpoint": str(checkpoint),
        "snapshot_id": man.snapshot_id, "trained_steps": ck.meta.get("step"), "config": ck.config.name, **extra,
    }


def _with_image(row: dict[str, Any], img: np.ndarray, keep: list[int] | None = None, gsd: float | None = None
                ) -> dict[str, Any]:
    r = dict(row)
    img = np.ascontiguousarray(img, dtype=np.float32)
    r["image"], r["shape"] = img.tobytes(), list(img.shape)
    if keep is not None:
        for col in ("bands", "wavelengths_um", "bandwidths_um", "polarizations"):
            if r.get(col) is not None:
                r[col] = [r[col][i] for i in keep]
    if gsd is not None:
        r["gsd"] = gsd
    return r


def _rgb_only(row: dict[str, Any]) -> dict[str, Any]:
    keep = [i for i, b in enumerate(row["bands"]) if b in ("B02", "B03", "B04")]
    if row.get("sensor") == "S1" or not keep:
        return row
    return _with_image(row, row_image(row)[keep], keep)


def _gsd_x2(row: dict[str, Any]) -> dict[str, Any]:
    img = row_image(row)
    c, h, w = img.shape
    if h < 2 or w < 2:
        return row
    blocks = img[:, : h // 2 * 2, : w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks stay NaN (nodata)
        pooled = np.nanmean(blocks, axis=(2, 4))
    return _with_image(row, pooled, gsd=float(row["gsd"]) * 2)


ROBUSTNESS_VARIANTS: dict[str, RowFn] = {
    "rgb_only": _rgb_only,
    "gsd_x2": _gsd_x2,
    "s1_only": lambda r: r if r.get("sensor") == "S1" else None,
    "s2_only": lambda r: r if r.get("sensor") != "S1" else None,
}


def robustness(*, checkpoint: Path, manifest: Path, split: str = "test", ks: Sequence[int] = (1, 5, 10),
               variants: Sequence[str] | None = None, max_tokens: int | None = None, world: Path | None = None,
               loaded: LoadedCheckpoint | None = None) -> dict[str, Any]:
    """Recall on the unmodified split (``full``, with zero-shot figures when ``world`` is given) and on each
    variant, with ``drop = full - variant``."""
    ck = loaded or load_checkpoint(Path(checkpoint))
    full = evaluate(checkpoint=checkpoint, manifest=manifest, split=split, ks=ks, max_tokens=max_tokens, loaded=ck,
                    world=world, variance=True)
    out: dict[str, Any] = {"full": full, "variants": {}, "drop": {}, "variance": full.pop("variance")}
    for name in variants or list(ROBUSTNESS_VARIANTS):
        if name not in ROBUSTNESS_VARIANTS:
            raise InputError(f"robustness variant {name!r} is unknown", hint=f"use {sorted(ROBUSTNESS_VARIANTS)}")
        try:
            res = evaluate(checkpoint=checkpoint, manifest=manifest, split=split, ks=ks, max_tokens=max_tokens,
                           row_fn=ROBUSTNESS_VARIANTS[name], loaded=ck)
        except InputError as e:  # e.g. no S1 patch in the split
            out["variants"][name] = {"skipped": e.message}
            continue
        out["variants"][name] = res
        out["drop"][name] = {d: {f"recall@{k}": full[d][f"recall@{k}"] - res[d][f"recall@{k}"] for k in ks}
                             for d in ("text_to_image", "image_to_text")}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: prints the result as one JSON object."""
    p = argparse.ArgumentParser(prog="python -m georeset.models.evaluate", description="retrieval recall@k")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--ks", default="1,5,10", help="comma-separated k values")
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--world", type=Path, default=None, help="sample-world directory: adds zero-shot land cover")
    a = p.parse_args(argv)
    ks = tuple(int(k) for k in a.ks.split(","))
    print(json.dumps(evaluate(checkpoint=a.checkpoint, manifest=a.manifest, split=a.split, ks=ks,
                              max_tokens=a.max_tokens, world=a.world)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
