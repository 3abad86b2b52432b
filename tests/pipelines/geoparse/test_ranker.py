"""The document-level features and the boosted-tree ranker (pure functions and scikit-learn, no spaCy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from georeset.pipelines.geoparse import ranker, ranking
from georeset.pipelines.geoparse.candidates import Candidate
from georeset.pipelines.geoparse.ranking import DOC_FEATURES, RANKER_FEATURES, DocContext, resolve_document


def _c(pid: str, lon: float, lat: float, pop: int = 1000, cc: str = "US", a1: str = "TX",
       code: str | None = None) -> Candidate:
    return Candidate(pid, pid, "A" if code else "P", code, cc, a1, pop, lon, lat, True)


PARIS = [_c("fr", 2.35, 48.86, 2_000_000, "FR", "11", "PPLC"), _c("tx", -95.55, 33.66, 25_000)]
TYLER = [_c("tyler", -95.3, 32.35, 100_000)]
PERU = [_c("peru", -75.0, -10.0, 30_000_000, "PE", "", "PCLI")]


def _doc(names: dict[str, list[Candidate]]) -> dict[str, dict[str, np.ndarray]]:
    feats = {k: ranking.candidate_features(v, DocContext(), mention=k) for k, v in names.items()}
    return {k: dict(zip(DOC_FEATURES, f.T, strict=True)) for k, f in
            ranking.doc_features(list(names), names, feats).items()}


def test_home_region_vote_and_centre_count_the_other_names_only() -> None:
    f = _doc({"paris": PARIS, "tyler": TYLER, "peru": PERU})
    paris = f["paris"]
    # Tyler (Texas) votes for the Texan Paris; Peru votes for neither; the French Paris gets nothing.
    assert paris["vote_admin"][1] == pytest.approx(0.5) and paris["vote_admin"][0] == 0.0
    assert paris["any_country"][1] == pytest.approx(0.5) and paris["any_country"][0] == 0.0
    assert paris["centroid"][1] == pytest.approx(np.exp(-147 / 500), abs=0.01)  # Tyler is ~147 km away
    assert paris["centroid"][0] < 0.01  # Peru, a country, is no point to be near
    assert list(paris["pop_rank"]) == [0.0, 0.25]  # log2(1 + rank) / 4
    assert paris["seat"][0] == 1.0 and paris["z_margin"].max() == 0.0
    alone = _doc({"paris": PARIS})["paris"]  # nothing else named: no votes, no centre
    assert alone["vote_admin"].sum() == alone["centroid"].sum() == 0.0


def test_tree_ranker_export_reproduces_scikit_learn_and_round_trips(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, len(RANKER_FEATURES)))
    y = ((x[:, RANKER_FEATURES.index("vote_admin")] + 0.3 * rng.normal(size=600)) > 0).astype(float)
    trees = ranker.fit(x, y, RANKER_FEATURES, max_iter=20)
    sk = HistGradientBoostingClassifier(**{**ranker.PARAMS, "max_iter": 20}, early_stopping=False,
                                        random_state=0).fit(x, y)
    assert np.allclose(trees.logit(x), sk.decision_function(x), atol=1e-6)
    ranker.save(trees, tmp_path / "r.npz")
    again = ranker.TreeRanker.load(tmp_path / "r.npz")
    assert np.allclose(again.logit(x), trees.logit(x)) and again.features == RANKER_FEATURES
    with pytest.raises(ValueError, match="expects"):
        again.logit(x[:, :3])


def test_resolution_uses_the_active_tree_ranker() -> None:
    """A ranker that learned "the candidate in the other names' division is right" decides Paris with Tyler."""
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(800, len(RANKER_FEATURES)))
    y = (x[:, RANKER_FEATURES.index("vote_admin")] > 0.3).astype(float)
    previous = ranker.active()
    try:
        ranker.set_active(ranker.fit(x, y, RANKER_FEATURES, max_iter=30))
        out = resolve_document([PARIS, TYLER], ["paris", "tyler"], DocContext())
        assert out[0] is not None and out[0].candidate.place_id == "tx" and out[0].score > 0.5
        alone = resolve_document([PARIS], ["paris"], DocContext())[0]
        assert alone is not None and alone.score < 0.5  # no vote: the trees give it little
    finally:
        ranker.set_active(previous)
