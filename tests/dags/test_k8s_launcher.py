"""The `kubernetes` launcher of train_encoder renders infra/k8s/train-job.yaml consistently (no cluster needed)."""

from __future__ import annotations

import copy
import importlib.util

import pytest

from georeset import k8s_launcher as K
from georeset.errors import GeoResetError, InputError


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


@pytest.mark.skipif(importlib.util.find_spec("kubernetes") is not None, reason="kubernetes client installed")
def test_submit_without_the_client_says_how_to_install_it() -> None:
    with pytest.raises(GeoResetError) as exc:
        K.submit_and_wait(_render())
    assert "pip install" in str(exc.value) and "cncf-kubernetes==" in str(exc.value)
