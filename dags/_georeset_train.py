"""The ``train`` task of ``train_encoder``: an operator, so the Kubernetes launcher can wait deferrably.

``launcher=local``: torchrun on the worker (the stage's own launcher). ``launcher=kubernetes``: the stage renders
``infra/k8s/train-job.yaml`` for the run id and the task submits the Service + indexed Job, then *defers* to
:class:`georeset.k8s_trigger.KubernetesJobTrigger` (the triggerer polls the Job; no worker slot is held while it
trains). When the trigger fires, ``execute_complete`` deletes the Job and the Service whatever the outcome, raises
with the pods' last log lines on failure (the task retry submits a new Job that resumes from the last checkpoint),
or reads the finished run. A run already finished with the same id is reused without submitting anything.

Not a DAG file (listed in ``.airflowignore``); parse-time imports: ``airflow.sdk`` and the standard library only.
"""

from __future__ import annotations

from typing import Any

from _georeset_common import SHARDS, event_extra, workspace
from airflow.sdk import BaseOperator

__all__ = ["TrainEncoderOperator"]


class _Submitted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The Job was submitted: leave the stage and defer."""


def _train(context: Any, launcher: Any) -> dict[str, Any]:
    from georeset.stages import train as train_stage

    p = context["params"]
    ws = workspace(context, SHARDS)
    snapshot = p["snapshot"] or event_extra(context, SHARDS).get("snapshot_id") or None
    r = train_stage.train(ws, config=p["config"], snapshot_id=snapshot, nproc=p["nproc"], nnodes=p["nnodes"],
                          steps=p["steps"], seed=p["seed"], batch_size=p["batch_size"], launcher=launcher)
    return {**r, "workdir": str(ws.root)}


class TrainEncoderOperator(BaseOperator):
    """Train on the shard snapshot (local torchrun, or a Kubernetes Job waited on deferrably)."""

    ui_color = "#e8d5f5"

    def execute(self, context: Any) -> dict[str, Any]:
        p = context["params"]
        if p["launcher"] != "kubernetes":
            return _train(context, None)
        from georeset import k8s_launcher as K
        from georeset.k8s_trigger import KubernetesJobTrigger

        submitted: dict[str, Any] = {}

        def launcher(*, manifest, out, config, nproc, nnodes, steps, batch_size, extra_args):  # type: ignore[no-untyped-def]
            docs = K.render_training_job(K.load_template(), name=K.job_name(out.name), image=p["image"],
                                         nnodes=nnodes, nproc=nproc, manifest=manifest, out=out, config=config,
                                         steps=steps, extra_args=("--batch-size", str(batch_size), *extra_args))
            submitted.update(K.submit(docs, namespace=p["namespace"], log=self.log.info))
            raise _Submitted

        try:
            return _train(context, launcher)  # a finished run of this id is reused: nothing to launch
        except _Submitted:
            pass
        self.defer(trigger=KubernetesJobTrigger(submitted["name"], submitted["namespace"], submitted["completions"],
                                                timeout_s=float(p["timeout_h"]) * 3600),
                   method_name="execute_complete")
        raise AssertionError("unreachable: defer() raises")  # pragma: no cover

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        from georeset import k8s_launcher as K

        K.cleanup(K.KubeAPI.from_env(), event["namespace"], event["name"], log=self.log.info)
        if event["state"] != "succeeded":
            raise K.KubernetesJobError(f"training job {event['namespace']}/{event['name']} {event['state']}; "
                                       f"last log lines:\n{event.get('logs', '')}",
                                       hint="the task retry submits a new Job that resumes from the last checkpoint")

        def ran(**_: Any) -> None:
            raise K.KubernetesJobError(f"training job {event['name']} succeeded but left no finished run",
                                       hint="the training pods must mount the same data volume as the workers")

        return {**_train(context, ran), "reused": False}
