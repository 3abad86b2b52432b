"""Real servers for the lake tests, on 127.0.0.1 with free ports, stopped at the end.

- PostgreSQL (Debian's ``postgresql`` package; ``.ci/run`` installs it): initdb into a temp dir.
- An S3-protocol store: ``moto`` in server mode from its own virtual environment ``.venv-s3`` (moto needs
  botocore, whose python-dateutil pin clashes with the project's; ``scripts/setup.sh`` makes ``.venv-s3``). It
  enforces credentials: an IAM user with one access key is made, then every request must be signed by it."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["pg_bin", "postgres_server", "create_database", "moto_bin", "S3Server", "s3_server", "require_servers",
           "TEST_LAKE", "test_lake_env", "backend_env"]

TEST_LAKE = "GEORESET_TEST_LAKE"  # "embedded" (default) or "pg-s3": the backend the whole suite runs on

REPO = Path(__file__).resolve().parents[2]


def pg_bin() -> Path | None:
    """The folder of initdb/pg_ctl (Debian puts them under /usr/lib/postgresql/<version>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_pg(cmd: list[str]) -> list[str]:
    """initdb/postgres refuse to run as root: run them as the ``postgres`` user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a libpq connection string (``dbname=lake host=127.0.0.1 port=N user=lake``) to a fresh server."""
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    tmp = Path(tempfile.mkdtemp(prefix="georeset-pg-"))
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
    port = _free_port()
    data = tmp / "data"
    subprocess.run(_as_pg([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "lake"]), check=True,
                   capture_output=True, timeout=300)
    opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c max_connections=50"
    subprocess.run(_as_pg([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(tmp / "log"), "-o", opts, "-w",
                           "start"]), check=True, capture_output=True, timeout=300)
    try:
        subprocess.run(_as_pg([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "lake", "lake"]),
                       check=True, capture_output=True, timeout=120)
        yield f"dbname=lake host=127.0.0.1 port={port} user=lake"
    finally:
        subprocess.run(_as_pg([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True, timeout=300)
        shutil.rmtree(tmp, ignore_errors=True)


def create_database(dsn: str, name: str) -> str:
    """Create database ``name`` on the server of ``dsn``; return the DSN that points at it."""
    bindir = pg_bin()
    assert bindir is not None
    parts = dict(p.split("=", 1) for p in dsn.split())
    subprocess.run(_as_pg([str(bindir / "createdb"), "-h", parts["host"], "-p", parts["port"], "-U", parts["user"],
                           name]), check=True, capture_output=True, timeout=120)
    return " ".join(f"{k}={name if k == 'dbname' else v}" for k, v in parts.items())


def moto_bin() -> Path | None:
    """``moto_server`` of the repo's ``.venv-s3`` (or on PATH)."""
    local = REPO / ".venv-s3" / "bin" / "moto_server"
    if local.exists():
        return local
    which = shutil.which("moto_server")
    return Path(which) if which else None


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT
    key_id: str
    secret: str
    bucket: str

    def env(self, prefix: str) -> dict[str, str]:
        """The settings that put a lake's data under ``s3://bucket/prefix/`` on this server."""
        return {"GEORESET_LAKE_DATA": f"s3://{self.bucket}/{prefix.strip('/')}/", "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret, "AWS_REGION": "us-east-1"}


def _s3_request(endpoint: str, method: str, path: str, *, form: dict[str, str] | None = None,
                service: str = "s3") -> str:
    """A request of the set-up, before moto enforces credentials (so unsigned: moto reads the service from the
    credential scope and does not check the signature yet)."""
    data = urllib.parse.urlencode(form).encode() if form is not None else b""
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential=AKIASETUP/20240101/us-east-1/{service}/"
                                "aws4_request, SignedHeaders=host, Signature=0")
    req = urllib.request.Request(endpoint + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return str(resp.read().decode())


@contextlib.contextmanager
def s3_server(bucket: str = "lake") -> Iterator[S3Server]:
    """A moto S3 server on 127.0.0.1 that enforces credentials, with ``bucket`` made; yields its endpoint/key."""
    binary = moto_bin()
    if binary is None:
        raise RuntimeError("moto_server is not installed (scripts/setup.sh makes .venv-s3 with moto[server])")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()
    # moto lets the first 4 requests through unauthenticated (user, key, policy, bucket), then checks every one
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "4"}
    proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"moto_server did not start: {log.read().decode()[-2000:]}") from None
                time.sleep(0.1)
        iam = {"Version": "2010-05-08", "UserName": "lake"}
        _s3_request(endpoint, "POST", "/", form={**iam, "Action": "CreateUser"}, service="iam")
        out = _s3_request(endpoint, "POST", "/", form={**iam, "Action": "CreateAccessKey"}, service="iam")
        key_id = re.search("<AccessKeyId>(.*?)</AccessKeyId>", out)
        secret = re.search("<SecretAccessKey>(.*?)</SecretAccessKey>", out)
        assert key_id and secret, out
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        _s3_request(endpoint, "POST", "/", form={**iam, "Action": "PutUserPolicy", "PolicyName": "lake",
                                                 "PolicyDocument": json.dumps(policy)}, service="iam")
        _s3_request(endpoint, "PUT", f"/{bucket}")
        yield S3Server(endpoint, key_id.group(1), secret.group(1), bucket)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def require_servers() -> None:
    """Skip when PostgreSQL or moto is missing -- except in CI (``CI`` set), where these tests must run."""
    import pytest

    missing = [name for name, found in (("postgresql (apt-get install postgresql; .ci/run does)", pg_bin()),
                                        ("moto_server (scripts/setup.sh makes .venv-s3)", moto_bin())) if not found]
    if missing:
        msg = "not installed: " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(f"{msg} -- CI must run the Postgres + S3 lake tests")
        pytest.skip(msg)


@contextlib.contextmanager
def test_lake_env(kind: str) -> Iterator[dict[str, str]]:
    """The settings that put every test workdir's lake on real servers: ``pg-s3`` starts PostgreSQL and moto once
    and yields GEORESET_LAKE_METADATA (the server), GEORESET_LAKE_SCHEMA (a schema per workdir) and
    GEORESET_LAKE_DATA (a prefix per workdir) plus the AWS_* settings."""
    if kind != "pg-s3":
        raise RuntimeError(f"{TEST_LAKE}={kind!r}: use embedded or pg-s3")
    with postgres_server() as dsn, s3_server() as s3:
        yield {**s3.env("{workdir}"), "GEORESET_LAKE_METADATA": f"postgres:{dsn}",
               "GEORESET_LAKE_SCHEMA": "lake_{workdir}"}


@contextlib.contextmanager
def backend_env(kind: str, prefix: str) -> Iterator[dict[str, str]]:
    """The lake settings of one backend for a test's worker processes: ``embedded`` clears them (the workdir's own
    lake); ``postgres+s3`` starts PostgreSQL and moto and names them, with the data under ``prefix``."""
    if kind == "embedded":
        yield {"GEORESET_LAKE_METADATA": "", "GEORESET_LAKE_DATA": "", "GEORESET_LAKE_SCHEMA": ""}
        return
    require_servers()
    with postgres_server() as dsn, s3_server() as s3:
        yield {"GEORESET_LAKE_METADATA": f"postgres:{dsn}", "GEORESET_LAKE_SCHEMA": "", **s3.env(prefix)}
