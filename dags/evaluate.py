"""Evaluate a trained checkpoint (text<->image recall@k on the held-out split), when one is recorded or on demand.

Wiring only, over georeset.stages.evaluate and .index (the code `georeset evaluate` / `index` run). ``evaluate`` reads the run from the triggering ``georeset_encoder_checkpoint`` event (or the
``run_id`` Param) and writes ``runs/<run_id>/evaluation.json``; ``record_evaluation`` stores the
metrics in the run's catalogue row and emits ``georeset_encoder_evaluation``; ``build_index``
embeds the catalogue with the run's encoder and rebuilds the HNSW and BM25 indexes. Zero-shot land cover is
evaluated where the workdir holds the sample world's labels.
"""

from __future__ import annotations

from _georeset_common import (
    DEFAULT_ARGS,
    EVALUATIONS,
    MODELS,
    START_DATE,
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
        from georeset.stages import evaluate as stage

        ws = workspace(context, MODELS)
        run_id = context["params"]["run_id"] or event_extra(context, MODELS).get("run_id") or stage.latest_run(ws)
        metrics = stage.evaluate_run(ws, run_id=run_id)
        return {"workdir": str(ws.root), "run_id": run_id, "metrics": metrics}

    @task(outlets=[EVALUATIONS])
    def record_evaluation(result: dict, **context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.stages import evaluate as stage
        from georeset.workspace import Workspace

        ws = Workspace.at(result["workdir"])
        stage.record_evaluation(ws, run_id=result["run_id"], metrics=result["metrics"])
        extra = {"workdir": result["workdir"], "run_id": result["run_id"], "metrics": result["metrics"]}
        context["outlet_events"][EVALUATIONS].extra = extra
        return extra

    @task
    def build_index(result: dict) -> dict:
        """Encoder embeddings (HNSW) and BM25 for `georeset search`, as `georeset index` / the demo build them."""
        from georeset.stages.index import index_stage
        from georeset.workspace import Workspace

        return index_stage(Workspace.at(result["workdir"]), run_id=result["run_id"])

    build_index(record_evaluation(evaluate_run()))


evaluate()
