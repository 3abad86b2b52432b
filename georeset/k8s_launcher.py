"""Multi-node training as a Kubernetes indexed Job (``infra/k8s/train-job.yaml``): render, submit, wait.

:func:`render_training_job` is pure: it turns the template (Service + indexed Job) into the manifests of one run.
:func:`submit`, :func:`job_state`, :func:`cleanup` talk to the Kubernetes REST API with the standard library
(:class:`KubeAPI`: the pod's service account, or ``GEORESET_K8S_API``/``_TOKEN``/``_CA``), so no client package
is needed. The ``train_encoder`` DAG submits, then waits deferrably (:mod:`georeset.k8s_trigger`) and deletes the
Job and Service at the end; :func:`submit_and_wait` is the same in one blocking call.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from georeset.errors import GeoResetError, InputError

__all__ = ["TEMPLATE", "KubernetesJobError", "KubeAPI", "load_template", "render_training_job", "job_name",
           "job_state", "submit", "logs_tail", "cleanup", "submit_and_wait"]

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "k8s" / "train-job.yaml"
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


SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
API_SETTING, TOKEN_SETTING, CA_SETTING = "GEORESET_K8S_API", "GEORESET_K8S_TOKEN", "GEORESET_K8S_CA"


class KubeAPI:
    """The few Kubernetes REST calls the launcher needs, over the standard library (no client package).

    In a pod: the service account (``KUBERNETES_SERVICE_HOST``/``_PORT``, its token and CA). Elsewhere:
    ``GEORESET_K8S_API`` (``https://host:6443``), ``GEORESET_K8S_TOKEN`` (a bearer token) and ``GEORESET_K8S_CA``
    (the cluster CA file), e.g. from ``kubectl create token`` for a service account allowed to manage Jobs."""

    def __init__(self, base_url: str, token: str = "", ca_file: str = "") -> None:
        self.base_url, self.token, self.ca_file = base_url.rstrip("/"), token, ca_file

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KubeAPI:
        import os

        env = os.environ if env is None else env
        if env.get(API_SETTING):
            return cls(env[API_SETTING], env.get(TOKEN_SETTING, ""), env.get(CA_SETTING, ""))
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
        if host and (SA_DIR / "token").is_file():
            return cls(f"https://{host}:{port}", (SA_DIR / "token").read_text().strip(), str(SA_DIR / "ca.crt"))
        raise GeoResetError("no Kubernetes API to launch the training Job on (launcher=kubernetes)",
                            hint=f"run in a pod with a service account allowed to manage Jobs, or set {API_SETTING}, "
                                 f"{TOKEN_SETTING} and {CA_SETTING}")

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """``(HTTP status, JSON body)``; 4xx answers are returned, not raised; a 5xx or no answer raises."""
        import json
        import ssl
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", **({"Content-Type": "application/json"} if data else {}),
                   **({"Authorization": f"Bearer {self.token}"} if self.token else {})}
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        ctx = ssl.create_default_context(cafile=self.ca_file or None) if self.base_url.startswith("https") else None
        try:
            with urllib.request.urlopen(req, timeout=60, context=ctx) as resp:
                raw = resp.read()
                return int(resp.status), (json.loads(raw) if raw.strip().startswith(b"{") else {"text": raw.decode()})
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            if exc.code >= 500:
                raise KubernetesJobError(f"Kubernetes API {method} {path}: HTTP {exc.code} {raw[:300]!r}",
                                         hint="the API server is failing: the task retry tries again") from exc
            return int(exc.code), (json.loads(raw) if raw.strip().startswith(b"{") else {"text": raw.decode()})
        except OSError as exc:
            raise KubernetesJobError(f"cannot reach the Kubernetes API at {self.base_url}: {exc}",
                                     hint=f"check {API_SETTING} or the pod's service account") from exc


def _paths(namespace: str, name: str) -> tuple[str, str]:
    return (f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}", f"/api/v1/namespaces/{namespace}/services/{name}")


def _check(status: int, out: Mapping[str, Any], what: str, ok: tuple[int, ...] = (200, 201, 202)) -> None:
    if status not in ok:
        raise KubernetesJobError(f"Kubernetes refused to {what}: HTTP {status} {out.get('message', out)}",
                                 hint="check the RBAC of the task's service account (Jobs, Services, pods/log)")


def job_state(api: KubeAPI, namespace: str, name: str, completions: int) -> str:
    """``succeeded``, ``failed``, ``running`` or ``missing``."""
    status, out = api.call("GET", _paths(namespace, name)[0] + "/status")
    if status == 404:
        return "missing"
    _check(status, out, f"read job {namespace}/{name}")
    st = out.get("status") or {}
    if int(st.get("succeeded") or 0) >= completions:
        return "succeeded"
    for cond in st.get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return "failed"
        if cond.get("type") == "Complete" and cond.get("status") == "True":
            return "succeeded"
    return "running"


def submit(manifests: Sequence[Mapping[str, Any]], *, namespace: str = "georeset", api: KubeAPI | None = None,
           log: Callable[[str], None] = print) -> dict[str, Any]:
    """Create the Service and the Job, idempotently: a Job of the same name that is running or has succeeded is
    kept (a retried task waits on it), one that failed is deleted and created again."""
    api = api or KubeAPI.from_env()
    by_kind = {m["kind"]: m for m in manifests}
    svc, job = by_kind["Service"], by_kind["Job"]
    name, completions = job["metadata"]["name"], int(job["spec"]["completions"])
    job_path, _ = _paths(namespace, name)
    status, out = api.call("POST", f"/api/v1/namespaces/{namespace}/services", svc)
    _check(status, out, f"create service {namespace}/{name}", (200, 201, 202, 409))
    state = job_state(api, namespace, name, completions)
    if state == "failed":
        log(f"job {namespace}/{name} failed before; deleting it and starting again")
        api.call("DELETE", job_path, {"propagationPolicy": "Foreground"})
        for _ in range(60):
            if job_state(api, namespace, name, completions) == "missing":
                break
            time.sleep(2)
        state = "missing"
    if state == "missing":
        status, out = api.call("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", job)
        _check(status, out, f"create job {namespace}/{name}")
        log(f"job {namespace}/{name} created ({completions} pods)")
    return {"name": name, "namespace": namespace, "completions": completions}


def logs_tail(api: KubeAPI, namespace: str, name: str, lines: int = 40) -> str:
    """The last ``lines`` log lines of every pod of the Job (what a failure report needs before the pods go)."""
    import urllib.parse

    sel = urllib.parse.quote(f"app.kubernetes.io/name={name}", safe="")
    status, out = api.call("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector={sel}")
    if status != 200:
        return ""
    parts = []
    for pod in out.get("items", []):
        pod_name = pod.get("metadata", {}).get("name", "")
        st, text = api.call("GET", f"/api/v1/namespaces/{namespace}/pods/{pod_name}/log?tailLines={lines}")
        if st == 200:
            parts.append(f"--- {pod_name}\n{text.get('text', '')}")
    return "\n".join(parts)


def cleanup(api: KubeAPI, namespace: str, name: str, log: Callable[[str], None] = print) -> None:
    """Delete the Job (and its pods) and the Service; ones already gone are fine."""
    job_path, svc_path = _paths(namespace, name)
    for path, what in ((job_path, "job"), (svc_path, "service")):
        status, out = api.call("DELETE", path, {"propagationPolicy": "Background"})
        _check(status, out, f"delete {what} {namespace}/{name}", (200, 202, 404))
    log(f"job and service {namespace}/{name} deleted")


def submit_and_wait(
    manifests: Sequence[Mapping[str, Any]],
    *,
    namespace: str = "georeset",
    timeout_s: float = 86400.0,
    poll_s: float = 15.0,
    log: Callable[[str], None] = print,
    api: KubeAPI | None = None,
) -> dict[str, Any]:
    """Submit (:func:`submit`), wait in this process until the Job succeeds, fails or times out, then delete the
    Job and the Service whatever happened (a failure's pod logs are in the error). The Airflow DAG waits
    deferrably instead (:class:`georeset.k8s_trigger.KubernetesJobTrigger`)."""
    api = api or KubeAPI.from_env()
    sub = submit(manifests, namespace=namespace, api=api, log=log)
    name, completions = sub["name"], sub["completions"]
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            state = job_state(api, namespace, name, completions)
            if state == "succeeded":
                log(f"job {namespace}/{name} succeeded")
                return {"name": name, "namespace": namespace, "succeeded": completions}
            if state in ("failed", "missing"):
                raise KubernetesJobError(f"training job {namespace}/{name} {state}; last log lines:\n"
                                         f"{logs_tail(api, namespace, name)}",
                                         hint="the Airflow task retry starts a new Job that resumes from the last "
                                              "checkpoint")
            if time.monotonic() > deadline:
                raise KubernetesJobError(f"training job {namespace}/{name} did not finish within {timeout_s:.0f} s",
                                         hint="raise timeout_h, or give the Job more nodes")
            time.sleep(poll_s)
    finally:
        cleanup(api, namespace, name, log)
