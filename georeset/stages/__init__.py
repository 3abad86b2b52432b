"""The one stage layer: one module per stage, called by the CLI, the demo and the Airflow DAGs alike.

Every stage has the same small contract: ``plan(...)`` cuts its inputs into partitions (JSON dicts or batch
files), ``run(partition)`` stages the partition's rows as Parquet files named from the partition (a retry
overwrites its own files), and :func:`georeset.stages.writer.commit` commits exactly those names, all tables of
the stage in one transaction. The ``*_stage`` functions run the partitions in process (CLI, demo, the sample-world
DAG); the production DAGs map ``run`` over ``plan`` and call the same commit. Nothing here imports Airflow.

Modules: :mod:`.harvest`, :mod:`.gazetteer`, :mod:`.geoparse`, :mod:`.imagery`, :mod:`.pair`, :mod:`.export`,
:mod:`.train`, :mod:`.evaluate`, :mod:`.index`; shared helpers in :mod:`._base`, the writer in :mod:`.writer`.
"""

from __future__ import annotations

from georeset.stages import writer
from georeset.stages._base import (
    BBox,
    batched,
    interval_key,
    parse_bbox,
    partition_name,
    sample_world_inputs,
    tile_grid,
    tile_key,
    wikipedia_tiles,
)
from georeset.stages.evaluate import evaluate_stage
from georeset.stages.export import export_stage
from georeset.stages.gazetteer import gazetteer_stage
from georeset.stages.geoparse import geoparse_stage
from georeset.stages.harvest import harvest_osm_stage, harvest_overpass_stage, harvest_wikipedia_stage
from georeset.stages.imagery import imagery_stage
from georeset.stages.index import index_stage
from georeset.stages.pair import pair_stage
from georeset.stages.train import code_version, train_stage, training_run_id
from georeset.stages.writer import TABLES, table_counts

__all__ = [
    "BBox",
    "TABLES",
    "batched",
    "code_version",
    "evaluate_stage",
    "export_stage",
    "gazetteer_stage",
    "geoparse_stage",
    "harvest_osm_stage",
    "harvest_overpass_stage",
    "harvest_wikipedia_stage",
    "imagery_stage",
    "index_stage",
    "interval_key",
    "pair_stage",
    "parse_bbox",
    "partition_name",
    "sample_world_inputs",
    "table_counts",
    "tile_grid",
    "tile_key",
    "train_stage",
    "training_run_id",
    "wikipedia_tiles",
    "writer",
]

