"""The honest baselines of the retrieval evaluation: the popularity ranking (the same for every query) and recall
averaged per location."""

from __future__ import annotations

import torch

from georeset.models.evaluate import macro_recall_at_k, recall_at_k, text_blind_recall_at_k


def test_popularity_ranking_is_text_blind() -> None:
    # 6 queries, gallery of 4: three queries pair with item 2, two with item 0, one with item 3
    pos = [{2}, {2}, {2}, {0}, {0}, {3}]
    got = text_blind_recall_at_k(pos, 4, (1, 2, 3))
    # fixed ranking 2, 0, 3, 1: @1 hits the three item-2 queries, @2 adds item 0, @3 item 3
    assert got == {1: 3 / 6, 2: 5 / 6, 3: 1.0}
    # a model that ranks by content can beat it, one that is constant cannot
    perfect = torch.zeros(6, 4)
    for q, p in enumerate(pos):
        perfect[q, next(iter(p))] = 1.0
    assert recall_at_k(perfect, pos, (1,))[1] == 1.0
    constant = torch.tensor([[0.0, 0.0, 1.0, 0.0]]).expand(6, 4)
    assert recall_at_k(constant, pos, (1,))[1] <= got[1]


def test_macro_recall_weights_locations_equally() -> None:
    # location A holds 4 queries (all hit), location B one query (a miss)
    sim = torch.tensor([[1.0, 0.0]] * 5)
    pos = [{0}, {0}, {0}, {0}, {1}]
    groups = [["A"], ["A"], ["A"], ["A"], ["B"]]
    assert recall_at_k(sim, pos, (1,))[1] == 0.8
    assert macro_recall_at_k(sim, pos, groups, (1,))[1] == 0.5
