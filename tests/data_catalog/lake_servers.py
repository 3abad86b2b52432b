"""A real PostgreSQL for the lake tests: initdb into a temp dir, started on 127.0.0.1 with a free port, stopped
at the end (Debian's ``postgresql`` package; ``.ci/run`` installs it)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["pg_bin", "postgres_server"]


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
