"""The `kubernetes` launcher of train_encoder renders infra/k8s/train-job.yaml consistently (no cluster needed)."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from pathlib import Path

import pytest

from georeset import k8s_launcher as K
from georeset.errors import GeoResetError, InputError
from georeset.k8s_trigger import KubernetesJobTrigger

sys.path.insert(0, str(Path(__file__).parent))
from k8s_api_server import TOKEN, FakeKube, kube_api  # noqa: E402


def _render(**kw):  # type: ignore[no-untyped-def]
    args = dict(name="georeset-train-abc123", image="registry.example/georeset:0.1.0", nnodes=3, nproc=4,
                manifest="/data/work/shards/manifest.json", out="/data/work/runs/abc123", config="tiny", steps=50,
                extra_args=("--batch-size", "16", "--seed", "0"))
    args.update(kw)
    return K.render_training_job(K.load_template(), **args)


def test_render_keeps_the_template_invariants() -> None:
    template = K.load_template()
    before = copy.deepcopy(template)
    svc, job = K.render_training_job(template, name="georeset-train-abc123", image="img:1", nnodes=3, nproc=4,
                                     manifest="/data/m.json", out="/data/runs/abc123", config="tiny", steps=50)
    assert template == before, "the template must not be modified"
    assert svc["kind"] == "Service" and job["kind"] == "Job"
    name = "georeset-train-abc123"
    assert svc["metadata"]["name"] == job["metadata"]["name"] == name
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == {"app.kubernetes.io/name": name}
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == name
    assert pod["spec"]["subdomain"] == name
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 3
    c = pod["spec"]["containers"][0]
    assert c["image"] == "img:1"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["NNODES"] == "3" and env["NPROC_PER_NODE"] == "4"
    assert env["RDZV_HOST"] == f"{name}-0.{name}"
    assert "RDZV_ID" in env  # still from the Job's uid (valueFrom)
    args = c["args"]
    assert args[args.index("-m") + 1] == "georeset.models.train"
    assert "--config=tiny" in args and "--manifest=/data/m.json" in args and "--out=/data/runs/abc123" in args
    assert "--steps=50" in args
    assert "--nnodes=$(NNODES)" in args and "--rdzv_endpoint=$(RDZV_HOST):$(RDZV_PORT)" in args
    assert sum(a.startswith("--config") for a in args) == 1


def test_render_appends_extra_args_and_uses_the_run_paths() -> None:
    _, job = _render()
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-4:] == ["--batch-size", "16", "--seed", "0"]
    assert "--out=/data/work/runs/abc123" in args


@pytest.mark.parametrize("bad", [dict(name="Bad_Name"), dict(name="x" * 60), dict(nnodes=0), dict(nproc=0),
                                 dict(image="")])
def test_render_rejects_bad_input(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(InputError):
        _render(**bad)


def test_job_name_is_a_short_dns_label() -> None:
    n = K.job_name("0123456789abcdef")
    assert n == "georeset-train-0123456789abcdef"
    assert len(K.job_name("x" * 80)) <= 52


# --- against a local server speaking the Kubernetes API (tests/dags/k8s_api_server.py) ---------------------------

def _api(kube: FakeKube) -> K.KubeAPI:
    return K.KubeAPI(kube.url, TOKEN)


def test_without_a_cluster_the_error_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GEORESET_K8S_API", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(GeoResetError) as exc:
        K.submit_and_wait(_render())
    assert "GEORESET_K8S_API" in str(exc.value)


def test_submit_and_wait_deletes_the_job_and_service_at_the_end() -> None:
    with kube_api(ticks=3) as kube:
        r = K.submit_and_wait(_render(), api=_api(kube), poll_s=0.01, log=lambda _: None)
        assert r["succeeded"] == 3
        assert kube.jobs == {} and kube.services == {}  # both deleted
        created = [p for m, p in kube.calls if m == "POST"]
        assert len(created) == 2  # one Service, one Job


def test_a_retry_waits_on_the_running_job_instead_of_starting_another() -> None:
    with kube_api(ticks=100) as kube:
        K.submit(_render(), api=_api(kube), log=lambda _: None)
        K.submit(_render(), api=_api(kube), log=lambda _: None)  # the retried task
        assert list(kube.jobs) == ["georeset-train-abc123"]
        assert sum(1 for m, p in kube.calls if m == "POST" and p.endswith("/jobs")) == 1


def test_a_failed_job_reports_its_pod_logs_and_is_deleted() -> None:
    with kube_api(ticks=1) as kube:
        with pytest.raises(K.KubernetesJobError) as exc:
            K.submit_and_wait(_render(name="georeset-train-fail1"), api=_api(kube), poll_s=0.01, log=lambda _: None)
        assert "failed" in str(exc.value) and "loss nan" in str(exc.value)
        assert kube.jobs == {} and kube.services == {}


def test_a_wrong_token_is_a_clear_error() -> None:
    with kube_api() as kube, pytest.raises(K.KubernetesJobError, match="RBAC|refused"):
        K.submit(_render(), api=K.KubeAPI(kube.url, "wrong"), log=lambda _: None)


def _first_event(trigger: KubernetesJobTrigger) -> dict:  # type: ignore[type-arg]
    async def first() -> dict:  # type: ignore[type-arg]
        async for ev in trigger.run():
            return dict(ev.payload)
        raise AssertionError("no event")

    return asyncio.run(first())


def test_the_trigger_waits_deferrably_and_reports_the_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEORESET_K8S_TOKEN", TOKEN)
    with kube_api(ticks=3) as kube:
        for name, want in (("georeset-train-ok", "succeeded"), ("georeset-train-fail2", "failed")):
            K.submit(_render(name=name), api=_api(kube), log=lambda _: None)
            trig = KubernetesJobTrigger(name, "georeset", 3, timeout_s=60, poll_s=0.01, api_url=kube.url)
            cls, kwargs = trig.serialize()
            assert cls == "georeset.k8s_trigger.KubernetesJobTrigger"
            ev = _first_event(KubernetesJobTrigger(**kwargs))  # as the triggerer rebuilds it
            assert ev["state"] == want and ev["name"] == name
            assert ("loss nan" in ev["logs"]) == (want == "failed")
        K.submit(_render(name="georeset-train-slow"), api=_api(kube), log=lambda _: None)
        kube.ticks = 10**6
        ev = _first_event(KubernetesJobTrigger("georeset-train-slow", "georeset", 3, timeout_s=0, poll_s=0.01,
                                               api_url=kube.url))
        assert ev["state"] == "timeout"


def test_the_train_task_defers_then_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dags"))
    from _georeset_train import TrainEncoderOperator

    work = tmp_path / "work"
    (work / "shards").mkdir(parents=True)
    (work / "shards" / "manifest.json").write_text(json.dumps({"snapshot_id": "snap1"}))
    params = {"workdir": str(work), "config": "tiny", "snapshot": "", "nproc": 2, "nnodes": 2, "steps": 5,
              "batch_size": 4, "seed": 0, "launcher": "kubernetes", "image": "img:1", "namespace": "georeset",
              "timeout_h": 1}
    with kube_api(ticks=1) as kube:
        monkeypatch.setenv("GEORESET_K8S_API", kube.url)
        monkeypatch.setenv("GEORESET_K8S_TOKEN", TOKEN)
        op = TrainEncoderOperator(task_id="train")
        with pytest.raises(TaskDeferred) as deferred:
            op.execute({"params": params})
        trig = deferred.value.trigger
        assert isinstance(trig, KubernetesJobTrigger) and deferred.value.method_name == "execute_complete"
        assert list(kube.jobs) == [trig.name] and trig.completions == 2
        job = kube.jobs[trig.name]
        assert job["spec"]["completions"] == 2 and "--manifest=" + str(work / "shards" / "manifest.json") in \
            job["spec"]["template"]["spec"]["containers"][0]["args"]
        with pytest.raises(K.KubernetesJobError, match="loss nan"):
            op.execute_complete({"params": params}, {"state": "failed", "name": trig.name,
                                                     "namespace": "georeset", "logs": "rank 0: loss nan"})
        assert kube.jobs == {} and kube.services == {}  # deleted on failure too
