"""cap_per_patch: no patch contributes more than the cap, strong pairs first, deterministic per seed."""

from __future__ import annotations

from georeset.data_catalog.export import cap_per_patch


def test_cap_keeps_highest_weight_and_is_deterministic() -> None:
    rows = [{"pair_id": f"d{i}|busy", "patch_id": "busy", "weight": 0.4 if i % 2 else 1.0} for i in range(40)]
    rows += [{"pair_id": "d0|quiet", "patch_id": "quiet", "weight": 0.4}]
    kept = cap_per_patch(rows, 8, seed=0)
    busy = [r for r in kept if r["patch_id"] == "busy"]
    assert len(busy) == 8 and all(r["weight"] == 1.0 for r in busy)  # point pairs before toponym pairs
    assert any(r["patch_id"] == "quiet" for r in kept)
    assert kept == cap_per_patch(list(rows), 8, seed=0)  # same seed, same rows (in input order)
    assert {r["pair_id"] for r in cap_per_patch(rows, 8, seed=1)} != {r["pair_id"] for r in busy}
    assert cap_per_patch(rows, None) == rows
