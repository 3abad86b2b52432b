"""The document halves used for fitting the geoparser, and the halves kept for checking it.

Every constant the geoparser learned from the shared corpora (ranking weights, thresholds) is fitted on the
*fitted* half only, and every figure is reported on the *unfitted* half beside it:

- LGL-style XML: the documents at even positions in the file (0, 2, 4, ...) are fitted, the odd ones unfitted;
- WikToR-style JSONL with numeric ``doc_id``: documents 1001-1600 are fitted, all others unfitted (WikToR's
  articles are independent of each other, so a range is a grouped split by document);
- any other corpus: by position, as LGL.

Gold toponyms never cross documents, so each half is a document-grouped split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from georeset.pipelines.geoparse.corpora import GoldDocument

__all__ = ["FITTED", "SPLITS", "UNFITTED", "WIKTOR_FITTED", "half", "select"]

FITTED, UNFITTED = "fitted", "unfitted"
SPLITS = ("all", FITTED, UNFITTED, "both")
WIKTOR_FITTED = (1001, 1600)


def half(path: Path | str) -> Callable[[int, GoldDocument], str]:
    """``(position in the file, document) -> "fitted" | "unfitted"`` for the corpus at ``path``."""
    jsonl = Path(path).suffix.lower() in (".jsonl", ".json", ".ndjson")

    def which(i: int, doc: GoldDocument) -> str:
        if jsonl and doc.doc_id.isdigit():
            return FITTED if WIKTOR_FITTED[0] <= int(doc.doc_id) <= WIKTOR_FITTED[1] else UNFITTED
        return FITTED if i % 2 == 0 else UNFITTED

    return which


def select(docs: Iterable[GoldDocument], path: Path | str, which: str) -> Iterator[GoldDocument]:
    """The documents of one half (``"fitted"`` / ``"unfitted"``), or all of them (``"all"``, ``"both"``)."""
    f = half(path)
    for i, d in enumerate(docs):
        if which in ("all", "both") or f(i, d) == which:
            yield d
