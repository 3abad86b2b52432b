"""Evaluate a trained checkpoint (text<->image recall@k on the held-out split), when one is recorded or on demand.

Wiring only. ``evaluate`` reads the run from the triggering ``georeset_encoder_checkpoint`` event (or the
``run_id`` Param) and writes ``runs/<run_id>/evaluation.json``; ``record_evaluation`` (writer pool) stores the
metrics in the run's catalogue row and emits ``georeset_encoder_evaluation``.
"""

from __future__ import annotations

from _georeset_common import (
    DEFAULT_ARGS,
    EVALUATIONS,
    MODELS,
    START_DATE,
    WRITER_POOL,
    event_extra,
    workdir_param,
    workspace,
)
from airflow.sdk import Param, dag, task


@dag(
    dag_id="evaluate",
    schedule=[MODELS],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["georeset", "evaluation"],
    doc_md=__doc__,
    params={
        "workdir": workdir_param(),
        "run_id": Param("", type="string", pattern="^[0-9a-f]*$",
                        description="Training run to evaluate; empty: the one named by the triggering event, else the newest "
                                    "finished run under <workdir>/runs"),
    },
)
def evaluate() -> None:
    @task
    def evaluate_run(**context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.errors import InputError
        from georeset.partitions import evaluate_run as run_evaluation

        ws = workspace(context, MODELS)
        run_id = context["params"]["run_id"] or event_extra(context, MODELS).get("run_id")
        if not run_id:  # on demand without a run id: the most recently finished run of this workdir
            done = sorted(ws.runs_dir.glob("*/train_summary.json"), key=lambda f: (f.stat().st_mtime, f.parent.name))
            if not done:
                raise InputError(f"no finished training run under {ws.runs_dir}",
                                 hint="train first (train_encoder), or trigger with the run_id Param")
            run_id = done[-1].parent.name
        ckpt = ws.runs_dir / run_id / "checkpoint.pt"
        if not ckpt.is_file():
            raise InputError(f"{ckpt} does not exist", hint="train first (train_encoder) or check the run_id")
        metrics = run_evaluation(checkpoint=ckpt, manifest=ws.shards_dir / "manifest.json")
        return {"workdir": str(ws.root), "run_id": run_id, "metrics": metrics}

    @task(pool=WRITER_POOL, outlets=[EVALUATIONS])
    def record_evaluation(result: dict, **context) -> dict:  # type: ignore[no-untyped-def]
        from georeset import partitions
        from georeset.workspace import Workspace

        ws = Workspace.at(result["workdir"])
        partitions.record_evaluation(db_path=ws.db_path, run_id=result["run_id"], metrics=result["metrics"])
        extra = {"workdir": result["workdir"], "run_id": result["run_id"], "metrics": result["metrics"]}
        context["outlet_events"][EVALUATIONS].extra = extra
        return extra

    record_evaluation(evaluate_run())


evaluate()
