"""`georeset report`: one self-contained HTML file that opens offline (no external assets, no request).

Contents: catalogue counts; a zoomable map (Leaflet inlined, no basemap: ``report_map``) with documents, footprints
coloured by sensor, pair links coloured by kind, footprints clickable to their thumbnail and paired texts; a static
fallback, one SVG map panel per region (documents as dots, patch footprints, pair links; each
panel projected equirectangularly with x scaled by cos(latitude) at its centre); patch thumbnails as inline PNGs
(Sentinel-2 true colour from B04/B03/B02 with a 2-98 % stretch, Sentinel-1 VV/VH/VV-VH false colour), written by a
tiny PNG encoder (zlib), each with the title of a paired document; the training loss curve from the run's
``metrics.jsonl``; recall@k against chance from the evaluation stored in ``runs.metrics``.
"""

from __future__ import annotations

import base64
import html
import json
import math
import struct
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from georeset.data_catalog.report_map import map_html
from georeset.errors import GeoResetError

__all__ = ["baselines_html", "png_bytes", "thumbnail_rgb", "svg_map", "svg_line_chart", "svg_recall_bars",
           "write_report"]

_COLOURS = {"S2": "#2e7d32", "S1": "#1565c0", "doc": "#e65100", "pair": "#9e9e9e"}


# -- PNG ----------------------------------------------------------------------------------------------------------
def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an ``[H, W, 3]`` uint8 array as PNG (8-bit truecolour, no filter)."""
    a = np.ascontiguousarray(rgb, dtype=np.uint8)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected [H, W, 3], got {a.shape}")
    h, w, _ = a.shape
    raw = b"".join(b"\x00" + a[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _stretch(x: np.ndarray) -> np.ndarray:
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return np.zeros_like(x, dtype=np.uint8)
    lo, hi = np.percentile(finite, [2, 98])
    if hi <= lo:
        hi = lo + 1e-6
    return (np.clip((np.nan_to_num(x, nan=lo) - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def thumbnail_rgb(image: np.ndarray, bands: list[str], *, scale: int = 4) -> np.ndarray:
    """RGB uint8 ``[H*scale, W*scale, 3]``: S2 B04/B03/B02, S1 VV/VH/VV-VH, else the first band in grey.

    Pixels that are 0 (or NaN) in every band are nodata and drawn light grey."""
    idx = {b.upper(): i for i, b in enumerate(bands)}
    image = np.array(image, dtype=np.float32)
    nodata = np.all((image == 0) | ~np.isfinite(image), axis=0)  # the imagery stage writes nodata as 0
    image[:, nodata] = np.nan
    if all(b in idx for b in ("B04", "B03", "B02")):
        rgb = np.stack([image[idx[b]] for b in ("B04", "B03", "B02")], -1)
        finite = rgb[np.isfinite(rgb)]
        lo, hi = (np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0))
        hi = hi if hi > lo else lo + 1e-6
        out = (np.clip((np.nan_to_num(rgb, nan=lo) - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
    elif "VV" in idx and "VH" in idx:
        vv, vh = image[idx["VV"]], image[idx["VH"]]
        out = np.stack([_stretch(vv), _stretch(vh), _stretch(vv - vh)], -1)
    else:
        g = _stretch(image[0])
        out = np.stack([g, g, g], -1)
    out[nodata] = 200
    return np.repeat(np.repeat(out, scale, axis=0), scale, axis=1)


# -- SVG helpers --------------------------------------------------------------------------------------------------
def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _regions(points: list[tuple[float, float]], cell_deg: float = 0.5, max_regions: int = 4
             ) -> list[tuple[float, float, float, float]]:
    """Bounding boxes of groups of points (0.5 degree cells joined when adjacent), largest groups first."""
    cells: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for lon, lat in points:
        cells[(math.floor(lon / cell_deg), math.floor(lat / cell_deg))].append((lon, lat))
    seen: set[tuple[int, int]] = set()
    groups: list[list[tuple[float, float]]] = []
    for c in cells:
        if c in seen:
            continue
        stack, group = [c], []
        seen.add(c)
        while stack:
            cx, cy = stack.pop()
            group.extend(cells[(cx, cy)])
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    n = (cx + dx, cy + dy)
                    if n in cells and n not in seen:
                        seen.add(n)
                        stack.append(n)
        groups.append(group)
    groups.sort(key=len, reverse=True)
    out = []
    for g in groups[:max_regions]:
        xs, ys = [p[0] for p in g], [p[1] for p in g]
        out.append((min(xs), min(ys), max(xs), max(ys)))
    return out


def svg_map(docs: list[tuple[float, float]], footprints: list[tuple[str, list[tuple[float, float]]]],
            links: list[tuple[float, float, float, float]], *, width: int = 560, max_regions: int = 4) -> str:
    """One SVG panel per region: footprints (by sensor colour), pair links, document dots."""
    pts = docs + [c for _, ring in footprints for c in ring]
    if not pts:
        return "<p>(nothing to map)</p>"
    panels = []
    for minx, miny, maxx, maxy in _regions(pts, max_regions=max_regions):
        pad_x, pad_y = max((maxx - minx) * 0.03, 1e-3), max((maxy - miny) * 0.03, 1e-3)
        minx, maxx, miny, maxy = minx - pad_x, maxx + pad_x, miny - pad_y, maxy + pad_y
        k = math.cos(math.radians((miny + maxy) / 2))
        w_deg, h_deg = (maxx - minx) * k, (maxy - miny)
        height = max(120, min(700, int(width * h_deg / w_deg))) if w_deg > 0 else width

        def xy(lon: float, lat: float, *, _minx: float = minx, _maxy: float = maxy, _k: float = k,
               _w: float = w_deg, _h: float = h_deg, _H: int = height) -> tuple[float, float]:  # noqa: N803
            return (round((lon - _minx) * _k / _w * width, 1), round((_maxy - lat) / _h * _H, 1))

        def inside(lon: float, lat: float, *, _b: tuple[float, float, float, float] = (minx, miny, maxx, maxy)
                   ) -> bool:
            return _b[0] <= lon <= _b[2] and _b[1] <= lat <= _b[3]

        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                 f'viewBox="0 0 {width} {height}" class="map"><rect width="100%" height="100%" fill="#fafafa"/>']
        for sensor, ring in footprints:
            if not any(inside(*c) for c in ring):
                continue
            d = " ".join(f"{x},{y}" for x, y in (xy(*c) for c in ring))
            col = _COLOURS.get(sensor, "#555")
            parts.append(f'<polygon points="{d}" fill="{col}" fill-opacity="0.08" stroke="{col}" stroke-width="0.7"/>')
        for lon1, lat1, lon2, lat2 in links:
            if inside(lon1, lat1) and inside(lon2, lat2):
                (x1, y1), (x2, y2) = xy(lon1, lat1), xy(lon2, lat2)
                parts.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{_COLOURS["pair"]}" '
                             'stroke-width="0.4" stroke-opacity="0.6"/>')
        for lon, lat in docs:
            if inside(lon, lat):
                x, y = xy(lon, lat)
                parts.append(f'<circle cx="{x}" cy="{y}" r="1.6" fill="{_COLOURS["doc"]}" fill-opacity="0.8"/>')
        km = (maxx - minx) * k * 111.32
        bar_km = 10 ** math.floor(math.log10(max(km / 4, 1e-3)))
        bar_px = bar_km / km * width
        parts.append(f'<line x1="10" y1="{height - 12}" x2="{10 + bar_px:.1f}" y2="{height - 12}" stroke="#000" '
                     f'stroke-width="2"/><text x="10" y="{height - 16}" font-size="10">{bar_km:g} km</text>')
        parts.append(f'<text x="6" y="12" font-size="10" fill="#333">lon {minx:.3f}..{maxx:.3f}, lat '
                     f'{miny:.3f}..{maxy:.3f} (equirectangular)</text></svg>')
        panels.append("".join(parts))
    legend = ("<p class='legend'>" + " ".join(
        f"<span style='color:{c}'>&#9632;</span> {n}" for n, c in
        (("S2 footprint", _COLOURS["S2"]), ("S1 footprint", _COLOURS["S1"]), ("document", _COLOURS["doc"]),
         ("pair link (document -> patch centre)", _COLOURS["pair"]))) + "</p>")
    return legend + "\n".join(panels)


def svg_line_chart(series: dict[str, list[tuple[float, float]]], *, title: str, xlabel: str, width: int = 560,
                   height: int = 260) -> str:
    """A small multi-series line chart with axes and ticks."""
    allpts = [p for s in series.values() for p in s if math.isfinite(p[1])]
    if not allpts:
        return f"<p>({_esc(title)}: no data)</p>"
    x0, x1 = min(p[0] for p in allpts), max(p[0] for p in allpts)
    y0, y1 = min(p[1] for p in allpts), max(p[1] for p in allpts)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    ml, mr, mt, mb = 50, 110, 24, 34
    pw, ph = width - ml - mr, height - mt - mb

    def xy(x: float, y: float) -> tuple[float, float]:
        return ml + (x - x0) / (x1 - x0) * pw, mt + (y1 - y) / (y1 - y0) * ph

    palette = ["#c62828", "#1565c0", "#2e7d32", "#6a1b9a", "#ef6c00"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="chart">',
           f'<text x="{ml}" y="15" font-size="12" font-weight="bold">{_esc(title)}</text>',
           f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        _, yy = xy(x0, yv)
        out.append(f'<line x1="{ml}" y1="{yy:.1f}" x2="{ml + pw}" y2="{yy:.1f}" stroke="#eee"/>'
                   f'<text x="{ml - 4}" y="{yy + 3:.1f}" font-size="9" text-anchor="end">{yv:.3g}</text>')
        xv = x0 + (x1 - x0) * i / 4
        xx, _ = xy(xv, y0)
        out.append(f'<text x="{xx:.1f}" y="{mt + ph + 12}" font-size="9" text-anchor="middle">{xv:.4g}</text>')
    out.append(f'<text x="{ml + pw / 2}" y="{height - 4}" font-size="10" text-anchor="middle">{_esc(xlabel)}</text>')
    for n, (name, pts) in enumerate(series.items()):
        col = palette[n % len(palette)]
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in (xy(x, y) for x, y in pts if math.isfinite(y)))
        out.append(f'<polyline points="{path}" fill="none" stroke="{col}" stroke-width="1.3"/>')
        out.append(f'<text x="{ml + pw + 6}" y="{mt + 12 + 14 * n}" font-size="10" fill="{col}">{_esc(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_recall_bars(evaluation: dict[str, Any], *, width: int = 560, height: int = 240) -> str:
    """Grouped bars: recall@k (dark) beside chance@k (light), text->image and image->text."""
    groups = []
    for direction in ("text_to_image", "image_to_text"):
        d = evaluation.get(direction) or {}
        for k in (1, 5, 10):
            if f"recall@{k}" in d:
                groups.append((f"{'t2i' if direction == 'text_to_image' else 'i2t'} @{k}",
                               float(d[f"recall@{k}"]), float(d.get(f"chance@{k}", 0.0))))
    if not groups:
        return "<p>(no evaluation recorded)</p>"
    ml, mt, mb = 40, 24, 30
    pw, ph = width - ml - 110, height - mt - mb
    top = max(0.05, max(max(r, c) for _, r, c in groups)) * 1.1
    bw = pw / len(groups)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="chart">',
           f'<text x="{ml}" y="15" font-size="12" font-weight="bold">Retrieval recall@k on the held-out split</text>',
           f'<line x1="{ml}" y1="{mt + ph}" x2="{ml + pw}" y2="{mt + ph}" stroke="#999"/>']
    for i in range(5):
        v = top * i / 4
        y = mt + ph - v / top * ph
        out.append(f'<text x="{ml - 4}" y="{y + 3:.1f}" font-size="9" text-anchor="end">{v:.2f}</text>'
                   f'<line x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}" stroke="#eee"/>')
    for i, (label, rec, ch) in enumerate(groups):
        x = ml + i * bw + bw * 0.15
        for j, (v, col) in enumerate(((rec, "#1565c0"), (ch, "#90caf9"))):
            h = v / top * ph
            out.append(f'<rect x="{x + j * bw * 0.35:.1f}" y="{mt + ph - h:.1f}" width="{bw * 0.33:.1f}" '
                       f'height="{h:.1f}" fill="{col}"><title>{_esc(label)}: {v:.3f}</title></rect>')
        out.append(f'<text x="{x + bw * 0.35:.1f}" y="{mt + ph + 12}" font-size="9" text-anchor="middle">'
                   f'{_esc(label)}</text><text x="{x + bw * 0.16:.1f}" y="{mt + ph - rec / top * ph - 3:.1f}" '
                   f'font-size="8" text-anchor="middle">{rec:.2f}</text>')
    out.append(f'<text x="{ml + pw + 8}" y="{mt + 12}" font-size="10" fill="#1565c0">recall@k</text>'
               f'<text x="{ml + pw + 8}" y="{mt + 26}" font-size="10" fill="#64a6e8">chance@k</text></svg>')
    return "".join(out)


# -- the report ---------------------------------------------------------------------------------------------------
_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.5em;border-bottom:1px solid #ddd}
.warn{background:#fff3e0;border-left:4px solid #e65100;padding:.5em 1em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}
.thumbs{display:flex;flex-wrap:wrap;gap:8px}.thumb{width:136px;font-size:10px;text-align:center}
.thumb img{width:128px;height:128px;image-rendering:pixelated;border:1px solid #ccc}
.map{border:1px solid #ccc;margin:4px}.legend{font-size:.85em}"""


def baselines_html(ev: dict[str, Any], k: int = 10) -> str:
    """Recall@k beside chance and the text-blind (popularity) baseline, micro and macro per location, and
    zero-shot land cover against the majority baseline (see ``georeset.models.evaluate``)."""
    cols = ("recall", "chance", "text_blind", "macro_recall", "macro_text_blind")
    def ratio(b: dict[str, Any], rec: str, blind: str) -> str:
        best = max(float(b.get(f"chance@{k}", 0.0)), float(b.get(f"{blind}@{k}", 0.0)))
        return f"<td>{float(b[f'{rec}@{k}']) / best:.2f}x</td>" if best > 0 and f"{rec}@{k}" in b else "<td>-</td>"

    rows = "".join(
        f"<tr><th>{d}</th>" + "".join(
            f"<td>{ev[d][f'{m}@{k}']:.3f}</td>" if f"{m}@{k}" in ev[d] else "<td>-</td>" for m in cols)
        + ratio(ev[d], "recall", "text_blind") + ratio(ev[d], "macro_recall", "macro_text_blind") + "</tr>"
        for d in ("text_to_image", "image_to_text") if d in ev)
    out = ""
    if rows:
        out += (f"<h3>Against text-blind baselines (@{k})</h3><p>text-blind: one popularity ranking for every query; "
                "macro: averaged per patch location; x best: recall over the larger of chance and the text-blind "
                "baseline (the goal is 2x).</p><table><tr><th></th>"
                + "".join(f"<th>{c.replace('_', ' ')}@{k}</th>" for c in cols)
                + f"<th>micro x best</th><th>macro x best</th></tr>{rows}</table>")
    z = ev.get("zero_shot") or {}
    if z.get("accuracy") is not None:
        per = "".join(f"<tr><th>{_esc(t)}</th><td>{a:.3f}</td></tr>" for t, a in (z.get("per_template") or {}).items()
                      if a is not None)
        out += (f"<h3>Zero-shot land cover</h3><p>accuracy {z['accuracy']:.3f} (prompt ensemble) vs majority "
                f"baseline {z['majority_baseline']:.3f} ({_esc(z.get('majority_class', ''))}), balanced accuracy "
                f"{z.get('balanced_accuracy', float('nan')):.3f}, {z.get('n_labelled')} labelled patches</p>"
                + (f"<table><tr><th>template</th><th>accuracy</th></tr>{per}</table>" if per else ""))
    return out


def _latest_run(con: Any) -> dict[str, Any] | None:
    cur = con.execute("SELECT run_id, checkpoint, metrics FROM runs WHERE kind = 'train' "
                      "ORDER BY finished_at DESC NULLS LAST, run_id LIMIT 1")
    row = cur.fetchone()
    if row is None:
        return None
    metrics = json.loads(row[2]) if row[2] else {}
    return {"run_id": row[0], "checkpoint": row[1], "metrics": metrics}


def _loss_series(metrics_path: Path) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    if not metrics_path.is_file():
        return {}
    for line in metrics_path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if not isinstance(m, dict) or "step" not in m:
            continue
        for key in ("loss", "infonce", "s1s2", "dense"):
            if isinstance(m.get(key), int | float):
                series[key].append((float(m["step"]), float(m[key])))
    return dict(series)


def _map_rows(con: Any, *, max_docs: int, max_patches: int, max_links: int
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[float, float, float, float, str]]]:
    """Rows for the interactive map: documents, the most-paired patches with up to 5 paired texts each, pair links."""
    docs = [{"id": i, "lon": float(lo), "lat": float(la), "title": t, "text": x}
            for i, lo, la, t, x in con.execute(
                "SELECT doc_id, lon, lat, title, left(text, 300) FROM documents WHERE lon IS NOT NULL AND "
                "lat IS NOT NULL ORDER BY doc_id LIMIT ?", [max_docs]).fetchall()]
    patches = []
    for pid, sensor, gj, dt, clear, n_pairs, path, bands in con.execute(
            "SELECT p.patch_id, p.sensor, ST_AsGeoJSON(p.geom), p.datetime, p.clear_fraction, "
            "(SELECT count(*) FROM pairs x WHERE x.patch_id = p.patch_id) AS n_pairs, p.path, p.bands "
            "FROM patches p WHERE p.geom IS NOT NULL ORDER BY n_pairs DESC, p.patch_id LIMIT ?",
            [max_patches]).fetchall():
        g = json.loads(gj)
        if g.get("type") != "Polygon":
            continue
        patches.append({"id": pid, "sensor": sensor, "ring": [[float(x), float(y)] for x, y in g["coordinates"][0]],
                        "when": f"{dt:%Y-%m-%d}" if dt is not None else "", "clear": clear, "n_pairs": int(n_pairs),
                        "path": path, "bands": list(bands), "texts": []})
    by_id = {p["id"]: p for p in patches}
    if by_id:
        for pid, title, text, how in con.execute(
                "SELECT x.patch_id, d.title, left(d.text, 200), x.how FROM pairs x JOIN documents d USING (doc_id) "
                "WHERE x.patch_id IN (SELECT unnest(?::VARCHAR[])) "
                "QUALIFY row_number() OVER (PARTITION BY x.patch_id ORDER BY x.score DESC, d.doc_id) <= 5 "
                "ORDER BY x.patch_id, x.score DESC, d.doc_id", [list(by_id)]).fetchall():
            by_id[pid]["texts"].append({"title": title, "text": text, "how": how})
    links = [(float(a), float(b), float(c), float(d), str(h)) for a, b, c, d, h in con.execute(
        "SELECT d.lon, d.lat, p.lon, p.lat, x.how FROM pairs x JOIN documents d USING (doc_id) JOIN patches p "
        "USING (patch_id) WHERE d.lon IS NOT NULL ORDER BY x.pair_id LIMIT ?", [max_links]).fetchall()]
    return docs, patches, links


def write_report(workdir: Path, *, out: Path | None = None, max_thumbnails: int = 24, max_links: int = 3000,
                 timeout_s: float = 600.0, max_map_docs: int = 5000, max_map_patches: int = 1000) -> Path:
    """Write ``<workdir>/report.html`` (or ``out``) and return its path.

    Reads committed data only: the lake attached read-only through the analyst sandbox, so a running writer does
    not block it; ``timeout_s`` bounds the catalogue queries.
    """
    from georeset.data_catalog.sandbox import analyst_connection
    from georeset.data_catalog.search import safe_data_path
    from georeset.workspace import Workspace

    ws = Workspace(Path(workdir).expanduser().resolve())
    out = Path(out) if out is not None else ws.root / "report.html"
    ac = analyst_connection(ws.db_path, timeout_s=timeout_s)
    con = ac.con
    try:
        with ac.guard():
            tables = ("documents", "toponyms", "places", "scenes", "patches", "pairs", "embeddings", "runs")
            counts = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}  # type: ignore[index]
            simulated = bool(con.execute("SELECT coalesce(bool_or(simulated), false) FROM scenes").fetchone()[0])  # type: ignore[index]
            docs = [(float(a), float(b)) for a, b in con.execute(
                "SELECT lon, lat FROM documents WHERE lon IS NOT NULL AND lat IS NOT NULL").fetchall()]
            footprints = []
            for sensor, gj in con.execute("SELECT sensor, ST_AsGeoJSON(geom) FROM patches WHERE geom IS NOT NULL "
                                          "ORDER BY sensor DESC, patch_id").fetchall():
                g = json.loads(gj)
                if g.get("type") == "Polygon":
                    footprints.append((sensor, [(float(x), float(y)) for x, y in g["coordinates"][0]]))
            links = [(float(r[0]), float(r[1]), float(r[2]), float(r[3])) for r in con.execute(
                "SELECT d.lon, d.lat, p.lon, p.lat FROM pairs x JOIN documents d USING (doc_id) JOIN patches p "
                "USING (patch_id) WHERE d.lon IS NOT NULL ORDER BY x.pair_id LIMIT ?", [max_links]).fetchall()]
            thumbs = con.execute(
                "SELECT p.patch_id, p.sensor, p.bands, p.path, p.datetime, p.clear_fraction, p.lon, p.lat, "
                "(SELECT d.title FROM pairs x JOIN documents d USING (doc_id) WHERE x.patch_id = p.patch_id "
                " ORDER BY x.score DESC, d.doc_id LIMIT 1) AS title, "
                "(SELECT count(*) FROM pairs x WHERE x.patch_id = p.patch_id) AS n_pairs "
                "FROM patches p ORDER BY n_pairs DESC, p.patch_id LIMIT ?", [max_thumbnails]).fetchall()
            run = _latest_run(con)
            pair_how = con.execute("SELECT how, count(*) FROM pairs GROUP BY how ORDER BY 2 DESC").fetchall()
            map_docs, map_patches, map_links = _map_rows(con, max_docs=max_map_docs, max_patches=max_map_patches,
                                                         max_links=max_links)
    finally:
        ac.close()
    for p in map_patches:  # thumbnails for the map's popups
        try:
            img = np.load(safe_data_path(ws.data_dir, p.pop("path")), allow_pickle=False)
            p["thumb"] = "data:image/png;base64," + base64.b64encode(
                png_bytes(thumbnail_rgb(img, list(p.pop("bands"))))).decode()
        except (OSError, ValueError, GeoResetError):
            p.pop("bands", None)
            p["thumb"] = None
    regions = _regions([(x, y) for p in map_patches for x, y in p["ring"][:1]]) if map_patches else []
    map_head, map_body = map_html(docs=map_docs, patches=map_patches, links=map_links, regions=regions)

    thumb_html = []
    for pid, sensor, bands, path, dt, clear, lon, lat, title, n_pairs in thumbs:
        try:
            img = np.load(safe_data_path(ws.data_dir, path), allow_pickle=False)
            b64 = base64.b64encode(png_bytes(thumbnail_rgb(img, list(bands)))).decode()
        except (OSError, ValueError) as exc:
            thumb_html.append(f"<div class='thumb'>{_esc(pid[:10])}: unreadable ({_esc(exc)})</div>")
            continue
        cap = (f"{sensor} {dt:%Y-%m-%d}" if dt is not None else str(sensor)) + (
            f", clear {clear:.2f}" if clear is not None else "")
        thumb_html.append(
            f"<div class='thumb'><img alt='{_esc(pid)}' src='data:image/png;base64,{b64}'/><br>"
            f"<b>{_esc(title or '(unpaired)')}</b><br>{_esc(cap)}<br>{lon:.4f}, {lat:.4f} · {n_pairs} pairs</div>")

    loss_html, eval_html, run_html = "<p>(no training run recorded)</p>", "<p>(no evaluation recorded)</p>", ""
    if run is not None:
        run_dir = Path(run["checkpoint"]).parent if run["checkpoint"] else ws.runs_dir / run["run_id"]
        series = _loss_series(run_dir / "metrics.jsonl")
        loss_html = svg_line_chart(series, title=f"Training loss, run {run['run_id']}", xlabel="step")
        ev = run["metrics"].get("evaluation") or {}
        if ev:
            eval_html = svg_recall_bars(ev)
            rows = "".join(
                f"<tr><th>{d}</th>" + "".join(f"<td>{ev[d].get(f'{m}@{k}', float('nan')):.3f}</td>"
                                              for m in ("recall", "chance") for k in (1, 5, 10)) + "</tr>"
                for d in ("text_to_image", "image_to_text") if d in ev)
            eval_html += ("<table><tr><th></th>" + "".join(f"<th>{m}@{k}</th>" for m in ("recall", "chance")
                                                           for k in (1, 5, 10)) + f"</tr>{rows}</table>")
            eval_html += baselines_html(ev)
        run_html = (f"<p>run <code>{_esc(run['run_id'])}</code>, final loss "
                    f"{run['metrics'].get('final_loss', float('nan')):.4f}, steps {run['metrics'].get('steps')}, "
                    f"world size {run['metrics'].get('world_size')}</p>")

    count_rows = "".join(f"<tr><th>{t}</th><td>{n}</td></tr>" for t, n in counts.items())
    how_rows = "".join(f"<tr><th>{_esc(h)}</th><td>{n}</td></tr>" for h, n in pair_how)
    warn = ("<p class='warn'><b>The pixels are simulated</b> (sample world: real OpenStreetMap features and "
            "GeoNames places, Sentinel-2/1 pixels rasterised from OSM land cover). Recall figures say the pipeline "
            "works, not how well the model does on real Sentinel data.</p>") if simulated else ""
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>GEO-ReSeT report</title>
<style>{_CSS}</style>{map_head}</head><body>
<h1>GEO-ReSeT report: {_esc(ws.root.name)}</h1>{warn}
<h2>Catalogue</h2><div style="display:flex;gap:2em"><table>{count_rows}</table><table>
<tr><th>pairing method</th><td>pairs</td></tr>{how_rows}</table></div>
<h2>Map: documents, patch footprints and pairs</h2>{map_body}
<details><summary>Static map (SVG, one panel per region)</summary>{svg_map(docs, footprints, links)}</details>
<h2>Patch thumbnails (most paired first)</h2><div class="thumbs">{''.join(thumb_html)}</div>
<h2>Training</h2>{run_html}{loss_html}
<h2>Evaluation</h2>{eval_html}
<p style="font-size:.8em;color:#777">Written by <code>georeset report</code> from {_esc(ws.db_path)}.</p>
</body></html>"""
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out
