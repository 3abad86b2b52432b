"""Readers for geoparsing evaluation corpora with gold toponyms.

- LGL-style XML (``<articles><article docid><feedid><title><domain><url><text><toponyms><toponym><start><end><phrase>
  [<gaztag geonameid><name><fclass><fcode><lat><lon>...]``), streamed with expat so every problem is reported with
  its line number;
- WikToR JSONL (``{"doc_id", "text", "toponyms": [{"start", "end", "phrase", "lat", "lon", ...}]}``).

Offsets are 0-based ``[start, end)`` into the text. A toponym whose span is out of range or not numeric is a
malformed record: reported with its line and skipped (or fatal with ``on_error="raise"``). A span whose text
differs from the phrase is kept (``span_ok=False``): such offsets are a known quirk of the corpora.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

from georeset.errors import InputError
from georeset.pipelines.harvest._common import OnError, report_bad_record

__all__ = ["GoldDocument", "GoldToponym", "read_lgl", "read_wiktor", "read_corpus"]


@dataclass(frozen=True)
class GoldToponym:
    start: int
    end: int
    phrase: str
    lat: float | None
    lon: float | None
    geonameid: str | None = None
    span_ok: bool = True


@dataclass
class GoldDocument:
    doc_id: str
    text: str
    toponyms: list[GoldToponym] = field(default_factory=list)
    title: str | None = None
    url: str | None = None
    line: int = 0
    # Where the document comes from (LGL: the newspaper's <domain>, else its <feedid>; WikToR: none). An explicit
    # input for users who know their feeds (see :mod:`georeset.pipelines.geoparse.sources`); never read unless asked.
    source: str | None = None


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _make_toponym(raw: dict[str, Any], text: str, where: str) -> GoldToponym | str:
    try:
        start, end = int(raw["start"]), int(raw["end"])
    except (KeyError, TypeError, ValueError):
        return f"{where}: toponym without integer start/end"
    if not 0 <= start < end <= len(text):
        return f"{where}: toponym span [{start}, {end}) outside the text (length {len(text)})"
    lat, lon = _num(raw.get("lat")), _num(raw.get("lon"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        lat = lon = None
    phrase = str(raw.get("phrase") or text[start:end])
    gid = raw.get("geonameid")
    return GoldToponym(start, end, phrase, lat, lon, str(gid) if gid else None, text[start:end] == phrase)


class _LGLHandler:
    """expat callbacks building one article at a time."""

    def __init__(self, parser: Any) -> None:
        self.p = parser
        self.stack: list[str] = []
        self.buf: list[str] = []
        self.article: dict[str, Any] | None = None
        self.top: dict[str, Any] | None = None
        self.done: list[dict[str, Any]] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.stack.append(name)
        self.buf = []
        line = self.p.CurrentLineNumber
        if name == "article":
            self.article = {"doc_id": attrs.get("docid", ""), "line": line, "toponyms": [], "text": None}
        elif name == "toponym" and self.article is not None:
            self.top = {"line": line}
        elif name == "gaztag" and self.top is not None:
            self.top["geonameid"] = attrs.get("geonameid")

    def end(self, name: str) -> None:
        value = "".join(self.buf)
        self.buf = []
        self.stack.pop()
        parent = self.stack[-1] if self.stack else ""
        if self.top is not None and name in ("start", "end", "phrase") and parent == "toponym":
            self.top[name] = value.strip() if name != "phrase" else value
        elif self.top is not None and name in ("lat", "lon") and parent == "gaztag":
            self.top[name] = value.strip()
        elif name == "toponym" and self.top is not None and self.article is not None:
            self.article["toponyms"].append(self.top)
            self.top = None
        elif self.article is not None and name in ("text", "title", "url", "domain", "feedid") \
                and parent == "article":
            self.article[name] = value
        elif name == "article" and self.article is not None:
            self.done.append(self.article)
            self.article = None

    def chars(self, data: str) -> None:
        self.buf.append(data)


def _finish(raw: dict[str, Any], path: Path, on_error: OnError) -> GoldDocument | None:
    text = raw.get("text")
    if text is None:
        report_bad_record(path, raw["line"], f"article {raw.get('doc_id')!r} has no <text>", on_error=on_error)
        return None
    source = (raw.get("domain") or "").strip() or (raw.get("feedid") or "").strip() or None
    doc = GoldDocument(str(raw["doc_id"]), text, title=raw.get("title"), url=raw.get("url"), line=raw["line"],
                       source=source)
    for t in raw["toponyms"]:
        top = _make_toponym(t, text, f"article {doc.doc_id}")
        if isinstance(top, str):
            report_bad_record(path, t["line"], top, on_error=on_error)
        else:
            doc.toponyms.append(top)
    return doc


def _lgl_parser() -> tuple[Any, _LGLHandler]:
    """A fresh expat parser wired to a fresh :class:`_LGLHandler`."""
    parser = expat.ParserCreate()
    h = _LGLHandler(parser)
    parser.StartElementHandler = h.start
    parser.EndElementHandler = h.end
    parser.CharacterDataHandler = h.chars
    parser.buffer_text = True
    return parser, h


def _parse_block(block: bytes, first_line: int, path: Path, on_error: OnError) -> list[GoldDocument]:
    parser, h = _lgl_parser()
    try:
        parser.Parse(block, True)
    except expat.ExpatError as exc:
        report_bad_record(path, first_line + exc.lineno - 1,
                          f"malformed XML ({expat.errors.messages[exc.code]}); article skipped", on_error=on_error)
        return []
    out = []
    for raw in h.done:
        raw["line"] += first_line - 1
        for t in raw["toponyms"]:
            t["line"] += first_line - 1
        doc = _finish(raw, path, on_error)
        if doc is not None:
            out.append(doc)
    return out


def _lgl_blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(first line, bytes)`` of every ``<article ...>...</article>`` block, found line by line."""
    buf: list[bytes] = []
    first = 0
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not buf:
                k = line.find(b"<article")
                if k < 0 or line[k + 8:k + 9] not in (b" ", b">", b"\t", b"\n", b"\r", b"/"):
                    continue
                first, line = lineno, line[k:]
            buf.append(line)
            if b"</article>" in line or (len(buf) == 1 and line.rstrip().endswith(b"/>")):
                block = b"".join(buf)
                yield first, block[:block.rfind(b">") + 1]
                buf = []
    if buf:
        yield first, b"".join(buf)


def read_lgl(path: Path, *, on_error: OnError = "warn") -> Iterator[GoldDocument]:
    """Stream the articles of an LGL-style XML file.

    Malformed XML (including bytes that are not UTF-8) is reported with its line number. With ``on_error="raise"``
    it is fatal (:class:`InputError`); with ``"warn"`` the reader goes on article by article from there, skipping
    (and reporting) each article that does not parse."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"corpus file {path} does not exist", hint="pass the path of an LGL-style .xml file")
    parser, h = _lgl_parser()
    n_articles = 0
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(1 << 16)
            try:
                parser.Parse(chunk, not chunk)
            except expat.ExpatError as exc:
                msg = f"{path}:{exc.lineno}: malformed XML ({expat.errors.messages[exc.code]})"
                if on_error == "raise":
                    raise InputError(msg, hint="fix the file at that line, or skip bad articles "
                                               "(--on-error skip)") from exc
                report_bad_record(path, exc.lineno, f"malformed XML ({expat.errors.messages[exc.code]}); "
                                  "continuing article by article", on_error=on_error)
                break
            while h.done:
                n_articles += 1
                doc = _finish(h.done.pop(0), path, on_error)
                if doc is not None:
                    yield doc
            if not chunk:
                return
    for i, (first, block) in enumerate(_lgl_blocks(path)):
        if i < n_articles:
            continue
        yield from _parse_block(block, first, path, on_error)


def read_wiktor(path: Path, *, on_error: OnError = "warn") -> Iterator[GoldDocument]:
    """Stream WikToR-style JSONL documents; bad lines are reported with their number."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"corpus file {path} does not exist", hint="pass the path of a WikToR-style .jsonl file")
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                report_bad_record(path, lineno, f"invalid JSON/UTF-8 ({exc})", on_error=on_error)
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                report_bad_record(path, lineno, "not an object with a 'text' string", on_error=on_error)
                continue
            doc = GoldDocument(str(obj.get("doc_id", lineno)), obj["text"], title=obj.get("title"),
                               url=obj.get("url"), line=lineno)
            for t in obj.get("toponyms") or []:
                top = _make_toponym(t, doc.text, f"doc {doc.doc_id}") if isinstance(t, dict) else "bad toponym"
                if isinstance(top, str):
                    report_bad_record(path, lineno, top, on_error=on_error)
                else:
                    doc.toponyms.append(top)
            yield doc


def read_corpus(path: Path, *, on_error: OnError = "warn") -> Iterator[GoldDocument]:
    """LGL XML or WikToR JSONL, by file extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".xml":
        return read_lgl(path, on_error=on_error)
    if suffix in (".jsonl", ".json", ".ndjson"):
        return read_wiktor(path, on_error=on_error)
    raise InputError(f"unknown corpus format for {path}", hint="pass an LGL-style .xml or a WikToR-style .jsonl")
