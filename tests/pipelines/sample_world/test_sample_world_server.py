"""serve_stac: rustac serve on 127.0.0.1, searchable with pystac-client, gone after the context exits."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest
from pystac_client import Client

from georeset.errors import InputError
from georeset.pipelines.sample_world import SampleWorld, serve_stac


def _processes_with(text: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(
                (ln for ln in (d / "status").read_text().splitlines() if ln.startswith("State:")), ""
            )
        except OSError:
            continue
        if text in cmd and "Z" not in state.split()[1:2]:
            pids.append(int(d.name))
    return pids


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_serve_and_search(tiny_world: SampleWorld) -> None:
    lon = (tiny_world.bbox[0] + tiny_world.bbox[2]) / 2
    lat = (tiny_world.bbox[1] + tiny_world.bbox[3]) / 2
    pt = {"type": "Point", "coordinates": [lon, lat]}
    with serve_stac(tiny_world.stac_dir) as url:
        port = urlparse(url).port
        assert urlparse(url).hostname == "127.0.0.1" and port
        assert _processes_with(f"127.0.0.1:{port}")
        client = Client.open(url)
        assert {c.id for c in client.get_collections()} == {"sentinel-2-l2a", "sentinel-1-grd"}
        s2 = list(client.search(collections=["sentinel-2-l2a"], intersects=pt, max_items=100).items())
        assert sorted(i.properties["datetime"][:10] for i in s2) == tiny_world.s2_dates
        june = list(
            client.search(
                collections=["sentinel-2-l2a"], intersects=pt, datetime="2024-06-01/2024-06-30", max_items=100
            ).items()
        )
        assert {i.id for i in june} and all(i.properties["datetime"].startswith("2024-06") for i in june)
        assert len(june) < len(s2)
        s1 = list(client.search(collections=["sentinel-1-grd"], intersects=pt, max_items=100).items())
        assert len(s1) == len(tiny_world.s1_dates)
        far = {"type": "Point", "coordinates": [10.0, 50.0]}
        assert list(client.search(collections=["sentinel-2-l2a"], intersects=far, max_items=10).items()) == []
        href = s2[0].assets["B04"].href
        assert os.path.isabs(href) and Path(href).is_file()
    assert not _port_open(port)
    assert _processes_with(f"127.0.0.1:{port}") == []


def test_server_stops_on_exception(tiny_world: SampleWorld) -> None:
    port = None
    with pytest.raises(RuntimeError, match="boom"):
        with serve_stac(tiny_world.stac_dir) as url:
            port = urlparse(url).port
            raise RuntimeError("boom")
    assert port is not None and not _port_open(port)
    assert _processes_with(f"127.0.0.1:{port}") == []


def test_serve_empty_dir_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no STAC collections"):
        with serve_stac(tmp_path):
            pass
