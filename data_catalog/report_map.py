"""The report's interactive map: Leaflet 1.9.4 inlined (no tiles, no basemap, no request), zoomable and pannable.

Layers: documents (dots), Sentinel-2 and Sentinel-1 patch footprints, and pair links coloured by kind
(``point_in_patch`` / ``toponym_in_patch``). Clicking a footprint opens its thumbnail (inline PNG) and the texts
paired with it; clicking a document shows its title and text. The data is one JSON object in the page; the
Leaflet script and stylesheet come from ``assets/leaflet`` (the npm package's ``dist`` files, BSD-2-Clause) and are
inlined, with the stylesheet's image URLs removed so that nothing is fetched, not even from the local disk.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["KIND_COLOURS", "SENSOR_COLOURS", "leaflet_assets", "map_html"]

KIND_COLOURS = {"point_in_patch": "#6a1b9a", "toponym_in_patch": "#ef6c00"}
SENSOR_COLOURS = {"S2": "#2e7d32", "S1": "#1565c0"}
DOC_COLOUR = "#424242"


@cache
def leaflet_assets() -> tuple[str, str]:
    """(leaflet.js, leaflet.css) from the package, the CSS without its ``url(images/...)`` references."""
    base = resources.files("georeset.data_catalog").joinpath("assets", "leaflet")
    js = base.joinpath("leaflet.js").read_text(encoding="utf-8")
    css = base.joinpath("leaflet.css").read_text(encoding="utf-8")
    css = re.sub(r"url\((['\"]?)images/[^)]*\)", "none", css)
    return js, css


def _script_json(obj: Any) -> str:
    """JSON safe inside a <script> element (no ``</script>``, no HTML comment openers)."""
    return json.dumps(obj, separators=(",", ":"), default=str).replace("<", "\\u003c").replace(">", "\\u003e")


_JS = """
(function () {
  const D = JSON.parse(document.getElementById('georeset-map-data').textContent);
  const map = L.map('georeset-map', {preferCanvas: false, zoomSnap: 0.25, attributionControl: false});
  const esc = s => String(s == null ? '' : s).replace(/[&<>"']/g,
      c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
  const groups = {};
  const layer = name => (groups[name] = groups[name] || L.featureGroup());
  for (const d of D.docs) {
    L.circleMarker([d.lat, d.lon], {radius: 3, color: D.colours.doc, weight: 1, fillOpacity: 0.7})
      .bindPopup('<b>' + esc(d.title) + '</b><br>' + esc(d.text) + '<br><code>' + esc(d.id) + '</code>')
      .addTo(layer('documents'));
  }
  for (const p of D.patches) {
    const texts = p.texts.map(t => '<li><b>' + esc(t.title) + '</b> <i>(' + esc(t.how) + ')</i><br>'
        + esc(t.text) + '</li>').join('');
    const img = p.thumb ? '<img class="thumb" alt="' + esc(p.id) + '" src="' + p.thumb + '"><br>' : '';
    L.polygon(p.ring.map(c => [c[1], c[0]]), {color: D.colours[p.sensor] || '#555', weight: 1, fillOpacity: 0.15})
      .bindPopup('<div class="patch-popup">' + img + '<b>' + esc(p.sensor) + '</b> ' + esc(p.when)
        + (p.clear == null ? '' : ', clear ' + p.clear.toFixed(2)) + '<br><code>' + esc(p.id) + '</code><br>'
        + p.n_pairs + ' pair(s)' + (texts ? '<ul>' + texts + '</ul>' : ''), {maxWidth: 360})
      .addTo(layer(p.sensor + ' patches'));
  }
  for (const l of D.links) {
    L.polyline([[l[1], l[0]], [l[3], l[2]]], {color: D.colours[l[4]] || '#999', weight: 1, opacity: 0.6})
      .addTo(layer('pairs: ' + l[4]));
  }
  const all = L.featureGroup(Object.values(groups));
  for (const g of Object.values(groups)) g.addTo(map);
  // frame the largest region of patches; a button per region (and one for everything) jumps between them
  const fit = b => map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {padding: [20, 20], animate: false});
  if (D.regions.length) fit(D.regions[0]);
  else if (all.getLayers().length) map.fitBounds(all.getBounds(), {padding: [20, 20]});
  else map.setView([0, 0], 2);
  const nav = L.control({position: 'bottomright'});
  nav.onAdd = () => {
    const div = L.DomUtil.create('div', 'leaflet-bar region-nav');
    const add = (label, bounds) => {
      const a = L.DomUtil.create('a', '', div);
      a.href = '#'; a.textContent = label; a.setAttribute('role', 'button');
      L.DomEvent.on(a, 'click', e => { L.DomEvent.preventDefault(e); bounds(); });
    };
    D.regions.forEach((b, i) => add('region ' + (i + 1), () => fit(b)));
    if (all.getLayers().length) add('all', () => map.fitBounds(all.getBounds(), {padding: [20, 20]}));
    return div;
  };
  if (D.regions.length > 1) nav.addTo(map);
  L.control.layers(null, groups, {collapsed: false}).addTo(map);
  L.control.scale({imperial: false}).addTo(map);
  window.georesetMap = map;
  document.getElementById('georeset-map').dataset.rendered = String(all.getLayers().length);
})();
"""

_CSS = """#georeset-map{height:560px;border:1px solid #ccc;background:#f4f6f8}
.patch-popup img.thumb{width:128px;image-rendering:pixelated}.patch-popup ul{padding-left:1.2em;margin:.3em 0}
.region-nav a{width:auto!important;padding:0 .5em;font-size:12px}
.legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em;vertical-align:middle}"""


def map_html(*, docs: list[dict[str, Any]], patches: list[dict[str, Any]],
             links: list[tuple[float, float, float, float, str]],
             regions: list[tuple[float, float, float, float]] | None = None) -> tuple[str, str]:
    """(head, body) fragments: the inlined Leaflet CSS/JS for <head>, and the map element + data + script.

    ``docs``: ``{"id", "lon", "lat", "title", "text"}``; ``patches``: ``{"id", "sensor", "ring" [[lon, lat], ...],
    "when", "clear", "n_pairs", "thumb" (data URI or None), "texts" [{"title", "text", "how"}]}``; ``links``:
    ``(doc lon, doc lat, patch lon, patch lat, how)``; ``regions``: ``(minlon, minlat, maxlon, maxlat)`` of groups of
    patches, largest first (the map opens on the first).
    """
    js, css = leaflet_assets()
    data = {"docs": docs, "patches": patches, "links": links, "regions": [list(r) for r in regions or []],
            "colours": {**SENSOR_COLOURS, **KIND_COLOURS, "doc": DOC_COLOUR}}
    legend = "".join(f"<span style='background:{c}'></span>{k}" for k, c in
                     [("document", DOC_COLOUR), *(( f"{s} footprint", c) for s, c in SENSOR_COLOURS.items()),
                      *KIND_COLOURS.items()])
    head = f"<style>{css}\n{_CSS}</style>"
    body = (f"<div id='georeset-map' role='region' aria-label='map of documents, patches and pairs'></div>"
            f"<p class='legend'>{legend} &middot; no basemap; scroll to zoom, drag to pan, click a footprint for its "
            f"thumbnail and texts</p>"
            f"<script id='georeset-map-data' type='application/json'>{_script_json(data)}</script>"
            f"<script>{js}</script><script>{_JS}</script>")
    return head, body
