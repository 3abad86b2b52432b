"""What the per-dimension variances say, measured on the held-out split (``georeset model evaluate``: ``variance``).

- ``mean_variance``: mean over test patches of the mean per-dimension variance, for the patches as they are
  (``in_distribution``) and for three inputs unlike the training data: ``scaled_x1e4`` (every value x 10^4, as a
  file in raw DN read as reflectance would be), ``noise_n0_100`` (N(0, 100) values on the patch's valid pixels),
  ``unseen_bands`` (the same values on bands never seen: optical bands moved to thermal infrared 3.7-12 µm, SAR
  to L band 1.27 GHz). ``ratio`` is each out-of-distribution mean over the in-distribution one.
- ``spearman_variance_vs_rank``: Spearman correlation, over test patches, of a patch's mean variance with the
  rank (1 = best) of its best paired text in image -> text retrieval: positive when the variance rises where
  retrieval fails.
- ``fusion``: over test locations with both an S2 and an S1 patch, text -> location recall@k with the S2
  embedding alone, the S1 alone, and the precision-weighted fusion of both (:mod:`georeset.models.fusion`);
  ``gain@k`` is fused minus the better single sensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from georeset.bands import optical_band, sar_band
from georeset.models.checkpoint import LoadedCheckpoint
from georeset.models.data import _day_of_year, normalise_image, row_bands, row_image, row_to_tokens
from georeset.models.fusion import precision_weighted_fusion
from georeset.models.tokens import image_to_tokens, pad_tokens

__all__ = ["OOD_INPUTS", "variance_report"]

OOD_INPUTS = ("scaled_x1e4", "noise_n0_100", "unseen_bands")


def _tokens(row: dict[str, Any], ck: LoadedCheckpoint, variant: str, budget: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if variant == "in_distribution":
        return row_to_tokens(row, ck.norm, max_tokens=budget, rng=rng)
    img = row_image(row).copy()
    specs = row_bands(row)
    if variant == "scaled_x1e4":
        img = img * 1e4
    elif variant == "noise_n0_100":
        valid = np.isfinite(img)
        img[valid] = np.random.default_rng(seed + 1).normal(0.0, 100.0, int(valid.sum()))
    elif variant == "unseen_bands":
        thermal = np.geomspace(3.7, 12.0, len(specs))
        specs = [sar_band(s.polarization or "VV", frequency_ghz=1.27, name=f"L-{s.name}") if s.kind == "sar"
                 else optical_band(f"TIR{i}", float(thermal[i]), 0.5) for i, s in enumerate(specs)]
    else:
        raise ValueError(variant)
    norm_img = normalise_image(img, row["bands"], ck.norm)  # the checkpoint's statistics, as `model embed` would
    return image_to_tokens(norm_img, specs, float(row["gsd"]), day_of_year=_day_of_year(row.get("datetime")),
                           max_tokens=budget, rng=rng)


@torch.no_grad()
def _encode(ck: LoadedCheckpoint, toks: Sequence[np.ndarray], batch: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    means, variances = [], []
    dev = next(ck.model.parameters()).device
    for i in range(0, len(toks), batch):
        desc, mask = pad_tokens(list(toks[i : i + batch]))
        m, lv = ck.model.encode_image(desc.to(dev), mask.to(dev))
        means.append(m.float().cpu())
        variances.append(lv.float().exp().cpu())
    return torch.cat(means), torch.cat(variances)


def _recall(sim: torch.Tensor, positives: list[set[int]], ks: Sequence[int]) -> dict[str, float]:
    top = sim.topk(min(max(ks), sim.shape[1]), dim=1).indices.tolist()
    return {f"recall@{k}": float(np.mean([bool(p.intersection(t[:k])) for t, p in zip(top, positives, strict=True)]))
            for k in ks}


@torch.no_grad()
def variance_report(ck: LoadedCheckpoint, rows: Sequence[dict[str, Any]], *, ks: Sequence[int] = (1, 5, 10),
                    max_tokens: int | None = None, seed: int = 0) -> dict[str, Any]:
    """The figures of the module docstring for the rows of one split (text features from ``ck``'s cache)."""
    budget = max_tokens or ck.config.train.eval_max_tokens
    patch_rows: dict[str, dict[str, Any]] = {}
    docs: dict[str, str] = {}
    pairs: set[tuple[str, str]] = set()
    for r in rows:
        patch_rows.setdefault(str(r["patch_id"]), r)
        docs.setdefault(str(r["doc_id"]), str(r["text"]))
        pairs.add((str(r["doc_id"]), str(r["patch_id"])))
    pids, dids = list(patch_rows), list(docs)
    d_index = {d: i for i, d in enumerate(dids)}
    out: dict[str, Any] = {"n_patches": len(pids), "token_reference": ck.model.token_reference is not None}
    enc = {}
    for variant in ("in_distribution", *OOD_INPUTS):
        toks = [_tokens(patch_rows[p], ck, variant, budget, seed + i) for i, p in enumerate(pids)]
        enc[variant] = _encode(ck, toks)
    mv = {k: float(v[1].mean()) for k, v in enc.items()}
    out["mean_variance"] = mv
    out["ratio"] = {k: mv[k] / mv["in_distribution"] for k in OOD_INPUTS}
    out["ood_above_in_distribution"] = all(mv[k] > mv["in_distribution"] for k in OOD_INPUTS)

    img_mean, img_var = enc["in_distribution"]
    txt = torch.cat([ck.model.encode_text([docs[d] for d in dids[i : i + 64]])[0].float().cpu()
                     for i in range(0, len(dids), 64)])
    txt_n = F.normalize(txt, dim=-1)
    sim = F.normalize(img_mean, dim=-1) @ txt_n.t()  # image -> text
    order = sim.argsort(dim=1, descending=True)
    ranks = []
    for i, p in enumerate(pids):
        pos = {d_index[d] for d, q in pairs if q == p}
        row = order[i].tolist()
        ranks.append(min(row.index(j) for j in pos) + 1)
    per_patch_var = img_var.mean(dim=1).numpy()
    rho = spearmanr(per_patch_var, np.asarray(ranks)).statistic if len(pids) > 2 else float("nan")
    out["spearman_variance_vs_rank"] = float(rho)
    out["mean_rank"] = float(np.mean(ranks))
    out["fusion"] = _fusion(patch_rows, pids, pairs, d_index, img_mean, img_var, txt_n, ks)
    return out


def _fusion(patch_rows: dict[str, dict[str, Any]], pids: list[str], pairs: set[tuple[str, str]],
            d_index: dict[str, int], img_mean: torch.Tensor, img_var: torch.Tensor, txt_n: torch.Tensor,
            ks: Sequence[int]) -> dict[str, Any]:
    by_loc: dict[str, dict[str, int]] = {}
    for i, p in enumerate(pids):
        r = patch_rows[p]
        key = f"{float(r['lon']):.6f},{float(r['lat']):.6f}"
        by_loc.setdefault(key, {}).setdefault("S1" if r.get("sensor") == "S1" else "S2", i)
    locs = [(k, v) for k, v in by_loc.items() if "S1" in v and "S2" in v]
    if len(locs) < 2:
        return {"skipped": f"{len(locs)} test location(s) with both an S1 and an S2 patch"}
    s2 = torch.tensor([v["S2"] for _, v in locs])
    s1 = torch.tensor([v["S1"] for _, v in locs])
    loc_of_patch = {pids[v[s]]: li for li, (_, v) in enumerate(locs) for s in ("S1", "S2")}
    q_pos: dict[int, set[int]] = {}
    for d, p in pairs:
        if p in loc_of_patch:
            q_pos.setdefault(d_index[d], set()).add(loc_of_patch[p])
    queries = sorted(q_pos)
    positives = [q_pos[q] for q in queries]
    fm, _ = precision_weighted_fusion([img_mean[s2], img_mean[s1]], [img_var[s2], img_var[s1]])
    res = {}
    for name, emb in (("s2", img_mean[s2]), ("s1", img_mean[s1]), ("fused", fm)):
        res[name] = _recall(txt_n[queries] @ F.normalize(emb, dim=-1).t(), positives, ks)
    gain = {f"gain@{k}": res["fused"][f"recall@{k}"] - max(res["s2"][f"recall@{k}"], res["s1"][f"recall@{k}"])
            for k in ks}
    return {"n_locations": len(locs), "n_queries": len(queries), **res, **gain}
