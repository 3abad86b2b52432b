"""Train the text<->EO encoder on a shard snapshot: when a new snapshot is published, or on demand with Params.

Wiring only, over georeset.stages.train (the code `georeset train` runs). ``train`` runs ``torchrun`` here
(``launcher=local``, one node) or renders ``infra/k8s/train-job.yaml`` into an indexed Job of ``nnodes`` pods and
waits on it (``launcher=kubernetes``). The run id (one formula for every path) covers the snapshot, the settings,
the config's contents and the token-embedding version, so a finished run is reused and a retried task waits on the
same Job. ``record_run`` (writer pool) stores the run and emits ``georeset_encoder_checkpoint``.
"""

from __future__ import annotations

import os

from _georeset_common import (
    DEFAULT_ARGS,
    MODELS,
    SHARDS,
    START_DATE,
    TRAINING_TIMEOUT,
    WRITER_POOL,
    event_extra,
    run_time,
    workdir_param,
    workspace,
)
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
    @task(execution_timeout=TRAINING_TIMEOUT)
    def train(**context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.stages import train as train_stage

        p = context["params"]
        ws = workspace(context, SHARDS)
        snapshot = p["snapshot"] or event_extra(context, SHARDS).get("snapshot_id") or None
        launcher = None
        if p["launcher"] == "kubernetes":
            from georeset import k8s_launcher

            def launcher(*, manifest, out, config, nproc, nnodes, steps, batch_size, extra_args):  # type: ignore[no-untyped-def]
                run_id = out.name
                docs = k8s_launcher.render_training_job(
                    k8s_launcher.load_template(), name=k8s_launcher.job_name(run_id), image=p["image"],
                    nnodes=nnodes, nproc=nproc, manifest=manifest, out=out, config=config, steps=steps,
                    extra_args=("--batch-size", str(batch_size), *extra_args),
                )
                k8s_launcher.submit_and_wait(docs, namespace=p["namespace"], timeout_s=p["timeout_h"] * 3600)

        r = train_stage.train(ws, config=p["config"], snapshot_id=snapshot, nproc=p["nproc"], nnodes=p["nnodes"],
                              steps=p["steps"], seed=p["seed"], batch_size=p["batch_size"], launcher=launcher)
        return {**r, "workdir": str(ws.root)}

    @task(pool=WRITER_POOL, outlets=[MODELS])
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

    record_run(train())


train_encoder()
