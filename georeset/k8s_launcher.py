"""Multi-node training as a Kubernetes indexed Job (``infra/k8s/train-job.yaml``): render, submit, wait.

:func:`render_training_job` is pure: it turns the template (Service + indexed Job) into the manifests of one run.
:func:`submit_and_wait` needs the ``kubernetes`` client, imported lazily (the cluster image has it; the local
default and the tests do not). The ``kubernetes`` launcher of the ``train_encoder`` DAG uses both.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from georeset.errors import GeoResetError, InputError

__all__ = ["TEMPLATE", "INSTALL_HINT", "KubernetesJobError", "load_template", "render_training_job",
           "submit_and_wait", "job_name"]

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "k8s" / "train-job.yaml"
INSTALL_HINT = ("pip install apache-airflow-providers-cncf-kubernetes==10.25.0  "
                "(or: pip install -r infra/requirements-cluster.txt; it brings the `kubernetes` client)")
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_RDZV_PORT = 29400


class KubernetesJobError(GeoResetError):
    """The training Job failed, or did not finish in time."""


def load_template(path: Path | str = TEMPLATE) -> dict[str, dict[str, Any]]:
    """The template's documents keyed by kind (``Service``, ``Job``)."""
    import yaml

    docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    out = {d["kind"]: d for d in docs}
    if set(out) != {"Service", "Job"}:
        raise InputError(f"{path} must hold one Service and one Job, found {sorted(out)}")
    return out


def job_name(run_id: str, prefix: str = "georeset-train") -> str:
    """A DNS-1035 name for the run's Job and Service (<= 52 characters, so pod host names stay short)."""
    name = re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{run_id}".lower()).strip("-")[:52].rstrip("-")
    return name if name[:1].isalpha() else f"r{name}"[:52]


def _set_env(env: list[dict[str, Any]], name: str, value: str) -> None:
    for e in env:
        if e.get("name") == name:
            e.clear()
            e.update({"name": name, "value": value})
            return
    env.append({"name": name, "value": value})


def render_training_job(
    template: Mapping[str, Any],
    *,
    name: str,
    image: str,
    nnodes: int,
    nproc: int,
    manifest: str | Path,
    out: str | Path,
    config: str,
    steps: int,
    extra_args: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The ``[Service, Job]`` manifests for one run, from ``template`` (as :func:`load_template` returns it).

    Keeps the template's invariants: Service name == pod subdomain, rendezvous host == ``<name>-0.<name>``,
    ``completions == parallelism == nnodes``. ``manifest``/``out`` are paths as the pods see them (the shared
    data volume). The pods run with ``--resume=auto``: a Job that replaces a failed one (an Airflow retry)
    continues from the run folder's last checkpoint. The template is not modified.
    """
    if not (_DNS_LABEL.fullmatch(name) and len(name) <= 52):
        raise InputError(f"invalid Job name {name!r}", hint="use lower-case letters, digits and '-', <= 52 characters "
                         "(see job_name())")
    if nnodes < 1 or nproc < 1 or steps < 1:
        raise InputError(f"nnodes={nnodes}, nproc={nproc}, steps={steps} must all be >= 1")
    if not image:
        raise InputError("no training image given", hint="set the image Param or GEORESET_TRAIN_IMAGE")
    svc = copy.deepcopy(dict(template["Service"]))
    job = copy.deepcopy(dict(template["Job"]))
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "georeset"}
    svc["metadata"]["name"] = name
    svc["metadata"]["labels"] = dict(labels)
    svc["spec"]["selector"] = {"app.kubernetes.io/name": name}
    job["metadata"]["name"] = name
    job["metadata"]["labels"] = dict(labels)
    spec = job["spec"]
    spec["completions"] = spec["parallelism"] = int(nnodes)
    pod = spec["template"]
    pod.setdefault("metadata", {})["labels"] = dict(labels)
    pod["spec"]["subdomain"] = name
    containers = pod["spec"]["containers"]
    if len(containers) != 1:
        raise InputError(f"the Job template must have exactly one container, found {len(containers)}")
    c = containers[0]
    c["image"] = image
    args: list[str] = list(c.get("args", []))
    try:
        split = args.index("-m")
    except ValueError as exc:
        raise InputError("the Job template's args lack '-m georeset.models.train'") from exc
    resume = [] if any(str(a).startswith("--resume") for a in extra_args) else ["--resume=auto"]
    c["args"] = [*args[: split + 2], f"--config={config}", f"--manifest={manifest}", f"--out={out}",
                 f"--steps={int(steps)}", *resume, *map(str, extra_args)]
    env = c.setdefault("env", [])
    _set_env(env, "NNODES", str(int(nnodes)))
    _set_env(env, "NPROC_PER_NODE", str(int(nproc)))
    _set_env(env, "RDZV_HOST", f"{name}-0.{name}")
    _set_env(env, "RDZV_PORT", str(_RDZV_PORT))
    return [svc, job]


def _client() -> tuple[Any, Any, Any]:
    try:
        from kubernetes import client, config
        from kubernetes.client.rest import ApiException
    except ImportError as exc:
        raise GeoResetError("the `kubernetes` Python client is not installed (needed by launcher=kubernetes)",
                            hint=INSTALL_HINT) from exc
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client, ApiException, client.ApiClient()


def _job_state(status: Any, completions: int) -> str:
    if (status.succeeded or 0) >= completions:
        return "succeeded"
    for cond in status.conditions or []:
        if cond.type == "Failed" and cond.status == "True":
            return "failed"
        if cond.type == "Complete" and cond.status == "True":
            return "succeeded"
    return "running"


def submit_and_wait(
    manifests: Sequence[Mapping[str, Any]],
    *,
    namespace: str = "georeset",
    timeout_s: float = 86400.0,
    poll_s: float = 15.0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Create the Service and Job (re-using a Job of the same name that is running or has succeeded, replacing
    one that failed), then wait until the Job succeeds; raise :class:`KubernetesJobError` if it fails or times out.

    The Job name is derived from the run id, so a retried Airflow task waits on the same Job instead of starting
    a second one.
    """
    by_kind = {m["kind"]: m for m in manifests}
    svc, job = by_kind["Service"], by_kind["Job"]
    name = job["metadata"]["name"]
    completions = int(job["spec"]["completions"])
    client, api_exc, _ = _client()
    core, batch = client.CoreV1Api(), client.BatchV1Api()
    try:
        core.create_namespaced_service(namespace, svc)
    except api_exc as exc:
        if exc.status != 409:  # 409: it exists already (a retry)
            raise
    try:
        existing = batch.read_namespaced_job_status(name, namespace)
    except api_exc as exc:
        if exc.status != 404:
            raise
        existing = None
    if existing is not None and _job_state(existing.status, completions) == "failed":
        log(f"job {namespace}/{name} failed before; deleting it and starting again")
        batch.delete_namespaced_job(name, namespace, propagation_policy="Foreground")
        for _ in range(60):
            try:
                batch.read_namespaced_job_status(name, namespace)
            except api_exc as exc:
                if exc.status == 404:
                    break
                raise
            time.sleep(2)
        existing = None
    if existing is None:
        batch.create_namespaced_job(namespace, job)
        log(f"job {namespace}/{name} created ({completions} pods)")
    deadline = time.monotonic() + timeout_s
    while True:
        st = batch.read_namespaced_job_status(name, namespace).status
        state = _job_state(st, completions)
        if state == "succeeded":
            log(f"job {namespace}/{name} succeeded")
            return {"name": name, "namespace": namespace, "succeeded": int(st.succeeded or 0)}
        if state == "failed":
            raise KubernetesJobError(
                f"training job {namespace}/{name} failed",
                hint=f"kubectl -n {namespace} logs -l app.kubernetes.io/name={name} --prefix",
            )
        if time.monotonic() > deadline:
            raise KubernetesJobError(f"training job {namespace}/{name} did not finish within {timeout_s:.0f} s",
                                     hint=f"kubectl -n {namespace} describe job {name}")
        time.sleep(poll_s)
