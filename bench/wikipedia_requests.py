"""Requests per 1,000 pages of the Wikipedia harvest (not a timed test), on the local simulated MediaWiki.

    .venv/bin/python bench/wikipedia_requests.py                 # 2,000 fake pages; JSON on stdout
    .venv/bin/python bench/wikipedia_requests.py --pages 5000 --out bench/results/wikipedia_requests.json

Server: the simulated MediaWiki of the harvest tests (``tests/pipelines/harvest/conftest.py``: ``list=geosearch``
with ``gslimit``/``gsradius`` limits, ``prop=info`` and the details query with at most 50 page ids and, like
TextExtracts, at most 20 intro extracts a response, continued with ``excontinue``), serving ``--pages`` FAKE pages
spread over a 22 x 22 km area around Helsinki (some just outside it).

Job, through the one stage the CLI runs (:func:`georeset.stages.harvest_wikipedia_stage`, a fresh work directory):
1. the first harvest of the area (every page fetched);
2. a re-run after 1 % of the pages were revised and 10 pages added (the revision-incremental path).
For each: HTTP requests by kind (geosearch, revision check, details), as counted by the server, and requests per
1,000 pages harvested. ``documents_digest`` is a hash of the catalogue's documents (doc_id, title, text, lon, lat,
url, tags, licence: everything but the retrieval time), so two clients can be checked to give the same documents.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
UA = "georeset-bench/0.1 (https://example.org/georeset; bench@example.org)"


def _sim_module() -> Any:
    spec = importlib.util.spec_from_file_location("georeset_bench_simwiki",
                                                  ROOT / "tests" / "pipelines" / "harvest" / "conftest.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _client_name() -> str:
    src = (ROOT / "pipelines" / "harvest" / "mediawiki.py").read_text(encoding="utf-8")
    return "wikipedia-api" if "import wikipediaapi" in src else "urllib (hand-written)"


def _digest(db: Path) -> tuple[int, str]:
    from georeset.data_catalog import connect

    con = connect(db, read_only=True)
    try:
        rows = con.execute("SELECT doc_id, title, text, lon, lat, url, tags, licence FROM documents ORDER BY doc_id"
                           ).fetchall()
    finally:
        con.close()
    return len(rows), hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()[:16]


def _counts(sim: Any, pages: int) -> dict[str, Any]:
    kinds = {k: len(sim.requests(k)) for k in ("geosearch", "info", "pages")}
    total = sum(kinds.values())
    return {"requests": total, "by_kind": kinds, "pages": pages,
            "requests_per_1000_pages": round(1000 * total / pages, 1) if pages else None}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=2000, help="fake pages served (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args(argv)

    from georeset.stages import harvest_wikipedia_stage
    from georeset.workspace import Workspace

    sim_mod = _sim_module()
    sim = sim_mod.SimWiki(url="", pages=sim_mod.sim_pages(("en",), n=args.pages, seed=args.seed))
    out: dict[str, Any] = {"bench": "wikipedia_requests", "client": _client_name(), "pages_served": args.pages,
                           "area": list(sim_mod.SIM_AREA)}
    with tempfile.TemporaryDirectory(prefix="georeset-bench-wiki-") as tmp:
        for server in sim_mod._serve(sim_mod._sim_handler(sim)):
            sim.url = f"http://127.0.0.1:{server.server_address[1]}/{{lang}}/w/api.php"
            ws = Workspace.at(Path(tmp) / "w")
            first = harvest_wikipedia_stage(ws, api_url=sim.url, area=None, bbox=sim_mod.SIM_AREA, user_agent=UA,
                                            lang="en")
            n_docs, digest = _digest(ws.db_path)
            out["first_harvest"] = {**_counts(sim, first["langs"]["en"]["pages_fetched"]), "documents": n_docs,
                                    "documents_digest": digest}
            sim.log.clear()
            ids = sorted(sim.pages["en"])
            for pid in ids[:: 100]:
                sim.revise("en", pid)
            for i in range(10):
                pid = 7_090_000 + i
                sim.pages["en"][pid] = {"pageid": pid, "title": f"GEO-ReSeT en bench page new {i}",
                                        "lat": 60.2 + i / 1000, "lon": 25.0, "lastrevid": 1,
                                        "wikibase_item": f"Q7{i}", "extract": f"TEST DATA new page {i}."}
            second = harvest_wikipedia_stage(ws, api_url=sim.url, bbox=sim_mod.SIM_AREA, user_agent=UA, lang="en")
            s = second["langs"]["en"]
            n_docs, digest = _digest(ws.db_path)
            out["rerun"] = {**_counts(sim, s["pages_found"]), "pages_fetched": s["pages_fetched"],
                            "pages_unchanged": s["pages_unchanged"], "documents": n_docs, "documents_digest": digest}
    print(json.dumps(out))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
