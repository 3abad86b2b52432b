"""A harvest geoparsed through the real stage command, ``georeset geoparse run --workers N``, 1 worker vs N.

    .venv/bin/python bench/geoparse_harvest.py [--docs 10000] [--workers N] [--workdir DIR]

Documents: the shared real corpora (``../shared/data/geoparsing``: LGL's news articles, then WikToR's Wikipedia
articles, 5,588 articles, 7.5M characters) cut at sentence ends into pieces of about the size that makes
``--docs`` documents from all of it (~750 characters for 10,000; at least 200), in file order. Each run gets
its own fresh workspace with the documents and the gazetteer committed before the clock starts; the command is then
started as a subprocess (its pool of spawned workers each loads spaCy and the gazetteer once: start-up counted,
candidate caches empty). While it runs, every 0.5 s the bench reads ``/proc``: each process of the run's tree
(its peak RSS, ``VmHWM``) and the busy fraction of every core of the machine. After it exits, the CPU seconds of
the whole tree (``RUSAGE_CHILDREN``) over the wall time say how many cores the run itself kept busy.

Prints one JSON object (``runs``: one entry per worker count); the machine may be shared (load averages printed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
_DATA = _ROOT / ".." / "shared" / "data" / "geoparsing"
_MIN_CHARS = 200


def paragraphs(n: int) -> list[tuple[str, str]]:
    """(doc_id, text): the articles of LGL then WikToR cut at sentence ends into pieces of about the size that
    makes ``n`` documents from all their text (at least 200 characters each), the first ``n`` of them."""
    from georeset.pipelines.geoparse.corpora import read_corpus

    texts: list[tuple[str, str]] = []
    for path in (_DATA / "lgl" / "lgl.xml", _DATA / "wiktor" / "wiktor.jsonl"):
        if path.is_file():
            texts.extend((f"{path.stem}-{i:05d}", d.text) for i, d in enumerate(read_corpus(path)))
    size = max(_MIN_CHARS, sum(len(t) for _, t in texts) // max(1, n))
    ends = re.compile(r"(?<=[.!?])\s+")
    out: list[tuple[str, str]] = []
    for doc_id, text in texts:
        pos, k = 0, 0
        for m in ends.finditer(text):
            if m.start() - pos >= size and len(text) - m.end() >= _MIN_CHARS:
                out.append((f"{doc_id}-{k:03d}", text[pos:m.start()]))
                pos, k = m.end(), k + 1
        out.append((f"{doc_id}-{k:03d}", text[pos:]))
    return out[:n]


def _workspace(root: Path, docs: list[tuple[str, str]]) -> Path:
    """A workspace whose catalogue holds ``docs`` and the gazetteer (both committed before timing)."""
    from georeset.data_catalog import stage
    from georeset.stages import writer
    from georeset.stages.gazetteer import gazetteer_stage
    from georeset.workspace import Workspace

    ws = Workspace.at(root)
    when = datetime(2026, 1, 1)
    rows = [{"doc_id": f"file:{d}", "source": "file", "source_id": d, "title": None, "text": t, "lang": "en",
             "url": None, "lon": None, "lat": None, "tags": None, "licence": "see ../shared/data/geoparsing",
             "retrieved_at": when, "content_hash": f"{hash(t) & 0xFFFFFFFFFFFF:012x}"} for d, t in docs]
    for b in range(0, len(rows), 2000):
        stage(rows[b:b + 2000], table="documents", staging_dir=ws.staging_dir, name=f"bench-{b:06d}")
    writer.commit(ws, ["documents"])
    gazetteer_stage(ws)
    return root


def _tree(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _cpu_times() -> list[tuple[int, int]]:
    """(busy, total) jiffies per core."""
    out = []
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith("cpu") and line[3].isdigit():
                v = [int(x) for x in line.split()[1:]]
                idle = v[3] + (v[4] if len(v) > 4 else 0)
                out.append((sum(v) - idle, sum(v)))
    return out


def _run(workdir: Path, workers: int) -> dict[str, Any]:
    exe = str(Path(sys.executable).with_name("georeset"))
    cmd = [exe, "geoparse", "run", "--workdir", str(workdir), "--workers", str(workers)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cores0 = _cpu_times()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak: dict[int, float] = {}
    samples: list[list[float]] = []
    last = cores0
    while proc.poll() is None:
        for p in _tree(proc.pid):
            h = _hwm_mb(p)
            if h is not None:
                peak[p] = max(peak.get(p, 0.0), h)
        now = _cpu_times()
        samples.append([(b1 - b0) / max(1, t1 - t0_) for (b0, t0_), (b1, t1) in zip(last, now, strict=True)])
        last = now
        time.sleep(0.5)
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = json.loads(out.strip().splitlines()[-1]) if proc.returncode == 0 and out.strip() else {}
    n = int(result.get("documents_parsed", 0))
    main_mb = peak.pop(proc.pid, None)
    cores = list(zip(*samples, strict=True)) if samples else []
    return {
        "command": " ".join(["georeset", *cmd[1:]]), "rc": proc.returncode, "workers": workers,
        "documents_parsed": n, "wall_s": round(wall, 1), "docs_per_second": round(n / wall, 2) if wall else None,
        "toponyms": result.get("total"), "cpu_seconds": round(cpu_s, 1),
        "cores_kept_busy_by_the_run": round(cpu_s / wall, 2) if wall else None,
        "machine_core_busy_mean": [round(sum(c) / len(c), 2) for c in cores],
        "samples_all_cores_over_90pct": round(sum(all(x >= 0.9 for x in s) for s in samples) / max(1, len(samples)),
                                              2),
        "peak_rss_mb_main": round(main_mb, 1) if main_mb else None,
        "peak_rss_mb_workers": sorted((round(v, 1) for v in peak.values() if v > 200), reverse=True),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from georeset.stages.geoparse import default_workers

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=default_workers(), help="default: all cores")
    ap.add_argument("--workdir", type=Path, default=None, help="where the two workspaces go (default: a temp dir)")
    ap.add_argument("--only-n", action="store_true", help="skip the one-worker run")
    args = ap.parse_args(argv)
    docs = paragraphs(args.docs)
    base = args.workdir or Path(tempfile.mkdtemp(prefix="geoparse-harvest-"))
    runs = []
    load_before = os.getloadavg()
    for w in ([args.workers] if args.only_n else [1, args.workers]):
        wd = base / f"workers-{w}"
        shutil.rmtree(wd, ignore_errors=True)
        _workspace(wd, docs)
        runs.append(_run(wd, w))
        shutil.rmtree(wd, ignore_errors=True)
    out = {"documents": f"{len(docs)} pieces (cut at sentence ends) of LGL's then WikToR's articles",
           "n_docs": len(docs), "n_chars": sum(len(t) for _, t in docs), "cpu_count": os.cpu_count(),
           "usable_cores": default_workers(), "runs": runs,
           "speedup_n_over_1": round(runs[0]["wall_s"] / runs[-1]["wall_s"], 2) if len(runs) == 2 else None,
           "load_average_before": [round(x, 2) for x in load_before],
           "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
