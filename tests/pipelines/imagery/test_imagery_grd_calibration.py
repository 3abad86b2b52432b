"""Sentinel-1 GRD radiometric calibration: a generated product in the real SAFE layout (measurement GeoTIFF +
``annotation/calibration/calibration-*.xml`` with a sigmaNought LUT) gives sigma0 = DN^2 / A^2 in dB."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
from affine import Affine
from pyproj import Transformer

from georeset.pipelines.imagery.read import DatasetCache, calibration_href, read_patch, read_sigma_nought_lut

LON, LAT = 27.0, 60.0
CRS = "EPSG:32635"
SAFE = "S1A_IW_GRDH_1SDV_20240605T044000_20240605T044025_054182_069678_ABCD.SAFE"
STEM = "s1a-iw-grd-{pol}-20240605t044000-20240605t044025-054182-069678-00{n}"
DN = 300
N = 400  # pixels (10 m)


def _a(line: np.ndarray | float, pixel: np.ndarray | float) -> np.ndarray:
    """The LUT's sigmaNought: linear in line and pixel, so bilinear interpolation is exact."""
    return 500.0 + 0.5 * np.asarray(pixel) + 0.25 * np.asarray(line)


def _calibration_xml(pol: str) -> str:
    pixels = list(range(0, N, 40)) + [N - 1]
    vecs = []
    for line in [*range(0, N, 50), N - 1]:
        sn = " ".join(f"{float(_a(line, p)):.6e}" for p in pixels)
        vecs.append(
            f"<calibrationVector><azimuthTime>2024-06-05T04:40:00.000000</azimuthTime><line>{line}</line>"
            f'<pixel count="{len(pixels)}">{" ".join(map(str, pixels))}</pixel>'
            f'<sigmaNought count="{len(pixels)}">{sn}</sigmaNought>'
            f'<betaNought count="{len(pixels)}">{" ".join(["4.7e+02"] * len(pixels))}</betaNought>'
            f'<gamma count="{len(pixels)}">{sn}</gamma><dn count="{len(pixels)}">{sn}</dn></calibrationVector>'
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<calibration><adsHeader><polarisation>'
        f"{pol.upper()}</polarisation></adsHeader><calibrationInformation><absoluteCalibrationConstant>1.0"
        f'</absoluteCalibrationConstant></calibrationInformation><calibrationVectorList count="{len(vecs)}">'
        + "".join(vecs)
        + "</calibrationVectorList></calibration>"
    )


def _product(tmp: Path, *, link_calibration: bool) -> tuple[float, float, pystac.Item]:
    safe = tmp / SAFE
    (safe / "measurement").mkdir(parents=True)
    (safe / "annotation" / "calibration").mkdir(parents=True)
    x, y = Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(LON, LAT)
    x0, y0 = math.floor(x / 10) * 10 - N * 5, math.floor(y / 10) * 10 + N * 5
    item = pystac.Item(id=SAFE.removesuffix(".SAFE"), geometry=None, bbox=None, datetime=datetime(2024, 6, 5, 4, 40, tzinfo=UTC),
                       properties={"datetime": "2024-06-05T04:40:00Z", "platform": "sentinel-1a",
                                   "sar:product_type": "GRD", "proj:code": CRS},
                       collection="sentinel-1-grd")  # fmt: skip
    for n, pol in enumerate(("vv", "vh"), 1):
        tif = safe / "measurement" / f"{STEM.format(pol=pol, n=n)}.tiff"
        with rasterio.open(tif, "w", driver="GTiff", width=N, height=N, count=1, dtype="uint16", crs=CRS,
                           transform=Affine(10, 0, x0, 0, -10, y0), nodata=0, tiled=True) as ds:  # fmt: skip
            ds.write(np.full((N, N), DN, dtype=np.uint16), 1)
        xml = safe / "annotation" / "calibration" / f"calibration-{STEM.format(pol=pol, n=n)}.xml"
        xml.write_text(_calibration_xml(pol))
        (safe / "annotation" / "calibration" / f"noise-{STEM.format(pol=pol, n=n)}.xml").write_text("<noise/>")
        raster = [{"nodata": 0, "data_type": "uint16"}]
        item.add_asset(pol, pystac.Asset(href=str(tif), roles=["data"], extra_fields={"raster:bands": raster}))
        if link_calibration:
            item.add_asset(f"schema-calibration-{pol}", pystac.Asset(href=str(xml), roles=["metadata"],
                                                                   media_type="application/xml"))  # fmt: skip
    return x0, y0, item


def test_grd_calibration_lut_is_applied(tmp_path: Path) -> None:
    x0, y0, item = _product(tmp_path, link_calibration=True)
    href_vv, href_vh = calibration_href(item, "VV"), calibration_href(item, "VH")
    assert href_vv is not None and href_vv.endswith(f"annotation/calibration/calibration-{STEM.format(pol='vv', n=1)}.xml")
    assert href_vh is not None
    lut = read_sigma_nought_lut(href_vh)
    assert lut.values.shape == (len(lut.lines), len(lut.pixels)) and lut.lines[-1] == N - 1
    for cache in (None, DatasetCache()):
        p = read_patch(item, LON, LAT, size=16, gsd=10.0, cache=cache)
        assert p.calibration == ["sigma0_calibrated"] * 2 and p.units == ["dB", "dB"]
        # expected: at each patch pixel centre, line/pixel index in the product = centre offset - 0.5
        cols = (p.transform.c - x0) / 10 + np.arange(16) + 0.5 - 0.5
        rows = (y0 - p.transform.f) / 10 + np.arange(16) + 0.5 - 0.5
        a = _a(rows[:, None], cols[None, :])
        expected = 10 * np.log10(DN**2 / a**2)
        assert np.allclose(p.image[0], expected, atol=1e-3) and np.allclose(p.image[1], expected, atol=1e-3)
        assert not np.isnan(p.image).any()


def test_grd_without_calibration_stays_uncalibrated(tmp_path: Path) -> None:
    _, _, item = _product(tmp_path, link_calibration=False)
    assert calibration_href(item, "VV") is None
    p = read_patch(item, LON, LAT, size=16, gsd=10.0)
    assert p.calibration == ["uncalibrated"] * 2
    assert np.allclose(p.image, 20 * np.log10(DN), atol=1e-3)


class _S3:
    """A local S3 endpoint (path-style ``GET /<bucket>/<key>``) whose bucket is requester-pays: objects are served
    only to signed requests carrying ``x-amz-request-payer: requester`` (403 otherwise, as S3 answers)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen: list[dict[str, str]] = []
        self.seen = seen

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                seen.append({"path": self.path, "payer": self.headers.get("x-amz-request-payer", ""),
                             "auth": self.headers.get("Authorization", "")})  # fmt: skip
                body = objects.get(self.path.split("?")[0])
                ok = (body is not None and self.headers.get("x-amz-request-payer") == "requester"
                      and self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256"))
                data = body if ok and body is not None else b"<Error><Code>AccessDenied</Code></Error>"
                self.send_response(200 if ok else 403)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


def test_s3_calibration_xml_through_an_object_store_client_with_requester_pays(monkeypatch: Any) -> None:
    """Earth Search GRD items link their calibration XML as s3:// objects in a requester-pays bucket."""
    import pytest

    s3 = _S3({"/sentinel-s1-l1c/GRD/cal.xml": _calibration_xml("vv").encode()})
    for k, v in {"AWS_ENDPOINT_URL": s3.url, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "eu-central-1",
                 "AWS_ACCESS_KEY_ID": "AKIDLOCALTEST", "AWS_SECRET_ACCESS_KEY": "local-secret"}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    read_sigma_nought_lut.cache_clear()
    try:
        lut = read_sigma_nought_lut("s3://sentinel-s1-l1c/GRD/cal.xml", True)
        assert np.allclose(lut.at(np.array([100.0]), np.array([200.0])), _a(100.0, 200.0))
        assert s3.seen[-1]["payer"] == "requester" and s3.seen[-1]["auth"].startswith("AWS4-HMAC-SHA256")
        with pytest.raises(OSError, match="s3://sentinel-s1-l1c/GRD/cal.xml"):
            read_sigma_nought_lut("s3://sentinel-s1-l1c/GRD/cal.xml", False)  # the bucket refuses a non-payer
    finally:
        read_sigma_nought_lut.cache_clear()
        s3.close()
