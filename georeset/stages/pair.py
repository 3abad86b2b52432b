"""Pair stage: one ``pairs`` row per (document, patch) that meet by location, committed in one transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from georeset.stages import writer
from georeset.stages._base import now
from georeset.timeutil import naive_utc
from georeset.workspace import Workspace

__all__ = ["pair_stage"]


def pair_stage(ws: Workspace, *, retrieved_at: dt.datetime | None = None) -> dict[str, Any]:
    """Pair the committed documents/toponyms with the committed patches; stage ``pairing-*`` and commit it."""
    from georeset.pipelines.pairing import pair_documents

    con = writer.open_writer(ws)
    try:
        n = pair_documents(con, staging_dir=ws.staging_dir, retrieved_at=naive_utc(retrieved_at or now()))
        merged = writer.commit(ws, ["pairs"], names=["pairing-*"], con=con)
        return {"staged": n, **merged["pairs"]}
    finally:
        con.close()
