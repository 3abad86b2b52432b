"""The report's baseline table: recall beside chance and the text-blind ranking, and zero-shot vs majority."""

from __future__ import annotations

from georeset.data_catalog.report import baselines_html


def test_baselines_table_shows_each_figure() -> None:
    ev = {"text_to_image": {"recall@10": 0.5391, "chance@10": 0.2422, "text_blind@10": 0.5740,
                            "macro_recall@10": 0.4391, "macro_text_blind@10": 0.1867},
          "image_to_text": {"recall@10": 0.4545, "chance@10": 0.2061},
          "zero_shot": {"accuracy": 0.53, "majority_baseline": 0.485, "majority_class": "urban",
                        "balanced_accuracy": 0.39, "n_labelled": 66, "per_template": {"a satellite image of {}": 0.576}}}
    html = baselines_html(ev)
    for v in ("0.539", "0.242", "0.574", "0.439", "0.187", "0.455", "0.206"):
        assert f"<td>{v}</td>" in html
    assert html.count("<td>-</td>") == 4  # image -> text lacks the three baseline columns and so its macro ratio
    # recall over the larger of chance and text-blind: 0.5391 / 0.5740, 0.4391 / 0.2422, 0.4545 / 0.2061
    assert "<td>0.94x</td><td>1.81x</td>" in html and "<td>2.21x</td><td>-</td>" in html
    assert "accuracy 0.530 (prompt ensemble) vs majority baseline 0.485 (urban)" in html
    assert "<th>a satellite image of {}</th><td>0.576</td>" in html
    assert baselines_html({}) == ""
