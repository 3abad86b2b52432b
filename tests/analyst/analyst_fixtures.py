"""A tiny hand-made workspace: catalogue rows, .npy pixels, a training run, and a fake checkpoint (no MiniLM)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from georeset.data_catalog import merge, open_catalog, stage
from georeset.workspace import Workspace

DIM = 8
T0 = dt.datetime(2026, 1, 1)
TEXTS = ["The harbour with ferries and boats", "A quiet park with trees", "Old church on the hill",
         "Central railway station", "Museum of modern art", "A cafe by the harbour"]


def text_vec(text: str) -> torch.Tensor:
    h = hashlib.sha256(text.encode()).digest()
    return torch.tensor([b / 255.0 - 0.5 for b in h[:DIM]], dtype=torch.float32)


class FakeModel:
    def encode_image(self, desc: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = (desc * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        mean = torch.nn.functional.pad(m, (0, max(0, DIM - m.shape[1])))[:, :DIM] + 0.01
        return mean, torch.zeros_like(mean)

    def encode_text(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.stack([text_vec(t) for t in texts])
        return mean, torch.zeros_like(mean)

    text = SimpleNamespace(backbone=SimpleNamespace(load_cache=lambda path: 0))


def fake_checkpoint() -> Any:
    return SimpleNamespace(model=FakeModel(), norm={}, config=SimpleNamespace(train=SimpleNamespace(eval_max_tokens=64)))


def _patch(i: int, sensor: str, lon: float, lat: float, data_dir: Path) -> dict[str, Any]:
    bands = ["B02", "B03", "B04", "B08"] if sensor == "S2" else ["VV", "VH"]
    rng = np.random.default_rng(i)
    img = rng.uniform(0.02, 0.3, size=(len(bands), 4, 4)).astype(np.float32)
    pid = f"p{i:03d}"
    rel = f"patches/{pid}.npy"
    (data_dir / "patches").mkdir(parents=True, exist_ok=True)
    np.save(data_dir / rel, img)
    h = 0.0004
    wkt = f"POLYGON (({lon - h} {lat - h}, {lon + h} {lat - h}, {lon + h} {lat + h}, {lon - h} {lat + h}, {lon - h} {lat - h}))"
    return {"patch_id": pid, "scene_id": f"s2/scene{i % 2}" if sensor == "S2" else "s1/scene", "sensor": sensor,
            "lon": lon, "lat": lat, "crs": "EPSG:32635", "gsd": 10.0, "size": 4, "bands": bands,
            "datetime": T0, "clear_fraction": 0.9, "cloud_fraction": 0.1, "geom_wkt": wkt, "path": rel,
            "checksum": hashlib.sha256(img.tobytes()).hexdigest(), "source": "test", "licence": "CC0-1.0",
            "retrieved_at": T0, "content_hash": f"h{pid}"}


def build_workspace(root: Path) -> Workspace:
    ws = Workspace.at(root)
    docs = [{"doc_id": f"test:{i}", "source": "test", "source_id": str(i), "title": f"Doc {i}", "text": t,
             "lon": 24.95 + i * 0.001, "lat": 60.17, "licence": "CC0-1.0", "retrieved_at": T0,
             "content_hash": f"d{i}"} for i, t in enumerate(TEXTS)]
    patches = [_patch(i, "S2" if i % 3 else "S1", 24.95 + i * 0.001, 60.17, ws.data_dir) for i in range(6)]
    pairs = [{"pair_id": f"test:{i}|p{i:03d}", "doc_id": f"test:{i}", "patch_id": f"p{i:03d}", "how": "point_in_patch",
              "score": 1.0, "distance_m": 5.0, "source": "test", "licence": "CC0-1.0", "retrieved_at": T0,
              "content_hash": f"x{i}"} for i in range(6)]
    con = open_catalog(str(ws.db_path))
    try:
        for table, rows in (("documents", docs), ("patches", patches), ("pairs", pairs)):
            stage(rows, table=table, staging_dir=ws.staging_dir, name="t")
            merge(con, table=table, staging_dir=ws.staging_dir)
        run_dir = ws.runs_dir / "run1"
        run_dir.mkdir(parents=True)
        (run_dir / "checkpoint.pt").write_bytes(b"fake")
        (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps({"step": s, "loss": 5 - s * 0.1, "infonce": 3 - s * 0.05})
                                                         for s in range(1, 21)) + "\n")
        ev = {"text_to_image": {"recall@1": 0.2, "recall@5": 0.5, "recall@10": 0.8, "chance@1": 0.1,
                                "chance@5": 0.4, "chance@10": 0.7},
              "image_to_text": {"recall@1": 0.3, "recall@5": 0.6, "recall@10": 0.9, "chance@1": 0.1,
                                "chance@5": 0.4, "chance@10": 0.7}}
        con.execute("INSERT INTO runs (run_id, kind, status, metrics, checkpoint, finished_at) VALUES "
                    "('run1', 'train', 'finished', ?, ?, ?)",
                    [json.dumps({"final_loss": 3.0, "steps": 20, "evaluation": ev}), str(run_dir / "checkpoint.pt"), T0])
    finally:
        con.close()
    return ws


@pytest.fixture()
def workspace(tmp_path: Path) -> Workspace:
    return build_workspace(tmp_path / "ws")


@pytest.fixture()
def embedded(workspace: Workspace) -> Workspace:
    from georeset.data_catalog.search import embed_catalog, refresh_index

    con = open_catalog(str(workspace.db_path))
    try:
        embed_catalog(con, checkpoint=workspace.runs_dir / "run1" / "checkpoint.pt", data_dir=workspace.data_dir,
                      loaded=fake_checkpoint())
        refresh_index(workspace.root, con)
    finally:
        con.close()
    return workspace
