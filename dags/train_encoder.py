"""Train the text<->EO encoder on a shard snapshot: when a new snapshot is published, or on demand with Params.

Wiring only, over georeset.stages.train (the code `georeset train` runs). ``train`` runs ``torchrun`` here
(``launcher=local``, one node) or renders ``infra/k8s/train-job.yaml`` into an indexed Job of ``nnodes`` pods,
waits on it deferrably (the triggerer polls; no worker slot held) and deletes the Job and its Service at the end
(``launcher=kubernetes``; dags/_georeset_train.py). The run id (one formula for every path) covers the snapshot, the settings,
the config's contents and the token-embedding version, so a finished run is reused and a retried task waits on the
same Job. ``record_run`` stores the run and emits ``georeset_encoder_checkpoint``.
"""

from __future__ import annotations

import os

from _georeset_common import (
    DEFAULT_ARGS,
    MODELS,
    SHARDS,
    START_DATE,
    TRAINING_TIMEOUT,
    run_time,
    workdir_param,
)
from _georeset_train import TrainEncoderOperator
from airflow.sdk import Param, dag, task


@dag(
    dag_id="train_encoder",
    schedule=[SHARDS],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["georeset", "training"],
    doc_md=__doc__,
    params={
        "workdir": workdir_param(),
        "config": Param("tiny", type="string", pattern="^[A-Za-z0-9_./-]+$",
                        description="Model config: a name in georeset/models/configs or a JSON file"),
        "snapshot": Param("", type="string",
                          description="Shard snapshot id to train on; empty: the triggering event's, else the current"),
        "nproc": Param(2, type="integer", minimum=1, maximum=64, description="Processes per node (torchrun)"),
        "nnodes": Param(1, type="integer", minimum=1, maximum=64, description="Nodes (kubernetes launcher only)"),
        "steps": Param(60, type="integer", minimum=1, description="Optimiser steps"),
        "batch_size": Param(16, type="integer", minimum=1, description="Batch size per process"),
        "seed": Param(0, type="integer", minimum=0, description="Training seed"),
        "launcher": Param("local", type="string", enum=["local", "kubernetes"],
                          description="local: torchrun on the worker; kubernetes: an indexed Job (infra/k8s)"),
        "image": Param(os.environ.get("GEORESET_TRAIN_IMAGE", "georeset:0.1.0"), type="string", minLength=1,
                       description="Training image (kubernetes launcher)"),
        "namespace": Param("georeset", type="string", description="Kubernetes namespace (kubernetes launcher)"),
        "timeout_h": Param(24, type="number", exclusiveMinimum=0, description="Kubernetes Job time limit (hours)"),
    },
)
def train_encoder() -> None:
    train = TrainEncoderOperator(task_id="train", execution_timeout=TRAINING_TIMEOUT)

    @task(outlets=[MODELS])
    def record_run(run: dict, **context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.stages import train as train_stage
        from georeset.workspace import Workspace

        ws = Workspace.at(run["workdir"])
        train_stage.record_run(ws, run, started_at=run_time(context))
        extra = {"workdir": run["workdir"], "run_id": run["run_id"], "snapshot_id": run["snapshot_id"],
                 "checkpoint": run["checkpoint"], "manifest": run["manifest"], "reused": run["reused"],
                 "final_loss": run["summary"].get("final_loss")}
        context["outlet_events"][MODELS].extra = extra
        return extra

    record_run(train.output)


train_encoder()
