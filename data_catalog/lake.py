"""DuckLake primitives: attach a lake (embedded, or PostgreSQL metadata + object-storage data), snapshot ids,
and an upsert that keeps natural keys unique without PRIMARY KEY constraints.

The catalogue is a DuckLake attached through these (:func:`georeset.data_catalog.connect.open_lake`; embedded
default: SQLite metadata + Parquet data in the workdir). What DuckLake 1.5.5 does and does not do, as probed by
``tests/data_catalog/test_lake.py``: COMMENT ON, views, macros, ``ALTER TABLE ... ADD COLUMN``, ``MERGE INTO``,
``GEOMETRY``, ``JSON``, variable-length ``FLOAT[]`` and ``AT (VERSION => n)`` work; PRIMARY KEY/UNIQUE constraints
and fixed-size ``FLOAT[n]`` arrays do not (so HNSW indexes must live in a derived database that casts ``FLOAT[]``);
an embedded lake whose metadata is a DuckDB file is locked by one process at a time.
"""

from __future__ import annotations

import os
import random
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from georeset.errors import InputError

__all__ = ["SETTING_METADATA", "SETTING_DATA", "SETTING_SCHEMA", "workdir_slug", "S3Settings", "LakeSettings", "attach", "snapshot_id", "UpsertResult",
           "upsert", "ensure_claim", "rows_at", "maintain"]

SETTING_METADATA = "GEORESET_LAKE_METADATA"
SETTING_DATA = "GEORESET_LAKE_DATA"
SETTING_SCHEMA = "GEORESET_LAKE_SCHEMA"
_REMOTE_META = ("postgres:", "sqlite:", "mysql:")


def _q(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def workdir_slug(root: str | Path) -> str:
    """A short name of a work directory, unique per absolute path (``demo_1a2b3c4d``): what ``{workdir}`` in
    ``GEORESET_LAKE_DATA`` / ``GEORESET_LAKE_SCHEMA`` becomes, so one server and bucket can hold many workdirs."""
    import hashlib
    import re

    path = str(Path(root).expanduser().resolve())
    name = re.sub(r"[^a-z0-9]+", "_", Path(path).name.lower()).strip("_")[:24] or "root"
    return f"{name}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class S3Settings:
    """How DuckDB's httpfs reaches the object store, from the usual AWS variables.

    ``AWS_ENDPOINT_URL`` (``http://host:port`` for MinIO/moto/Ceph; unset = AWS itself), ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` (optional), ``AWS_REGION`` (default ``us-east-1``) and
    ``GEORESET_S3_URL_STYLE`` (``path``, the default with an endpoint, or ``vhost``, the default on AWS)."""

    endpoint: str = ""
    key_id: str = ""
    secret: str = ""
    session_token: str = ""
    region: str = "us-east-1"
    url_style: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Settings:
        env = os.environ if env is None else env
        return cls(endpoint=env.get("AWS_ENDPOINT_URL", ""), key_id=env.get("AWS_ACCESS_KEY_ID", ""),
                   secret=env.get("AWS_SECRET_ACCESS_KEY", ""), session_token=env.get("AWS_SESSION_TOKEN", ""),
                   region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
                   url_style=env.get("GEORESET_S3_URL_STYLE", ""))

    def secret_sql(self, name: str, scope: str) -> str:
        """``CREATE OR REPLACE SECRET`` for this store, scoped to ``scope`` (``s3://bucket``)."""
        opts = ["TYPE s3", f"REGION {_q(self.region)}", f"SCOPE {_q(scope)}"]
        if self.key_id:
            opts += [f"KEY_ID {_q(self.key_id)}", f"SECRET {_q(self.secret)}"]
        if self.session_token:
            opts.append(f"SESSION_TOKEN {_q(self.session_token)}")
        if self.endpoint:
            host = self.endpoint.split("://", 1)[-1].rstrip("/")
            opts += [f"ENDPOINT {_q(host)}", f"USE_SSL {'false' if self.endpoint.startswith('http://') else 'true'}"]
        style = self.url_style or ("path" if self.endpoint else "vhost")
        if style not in ("path", "vhost"):
            raise InputError(f"GEORESET_S3_URL_STYLE={self.url_style!r} is not a URL style",
                             hint="use path (MinIO, moto, most self-hosted stores) or vhost (AWS)")
        opts.append(f"URL_STYLE {_q(style)}")
        return f"CREATE OR REPLACE TEMPORARY SECRET {name} ({', '.join(opts)})"


@dataclass(frozen=True)
class LakeSettings:
    """Where the lake's metadata and data live.

    ``metadata``: ``sqlite:<file>`` (the embedded default: several local processes may read while one commits), a
    plain file path (a DuckDB file: one process at a time) or ``postgres:dbname=... host=...``;
    ``data_path``: a folder or ``s3://bucket/prefix/``; ``metadata_schema``: the PostgreSQL schema of the lake's
    metadata tables (DuckLake's METADATA_SCHEMA, created when missing; empty = DuckLake's default).
    """

    metadata: str
    data_path: str
    s3: S3Settings | None = None  # None: from the AWS_* variables when data_path is s3://
    # which locations came from the settings ("metadata", "data"): a missing folder there is an error, not created
    configured: frozenset[str] = frozenset()
    metadata_schema: str = ""

    @classmethod
    def for_workdir(cls, root: str | Path, env: Mapping[str, str] | None = None) -> LakeSettings:
        """The embedded default inside ``root`` (``sqlite:lake/metadata.sqlite``, ``lake/data/``), unless
        ``GEORESET_LAKE_METADATA`` / ``GEORESET_LAKE_DATA`` / ``GEORESET_LAKE_SCHEMA`` say otherwise; ``{workdir}``
        in the data path or the schema becomes :func:`workdir_slug` of ``root``."""
        env = os.environ if env is None else env
        lake = Path(root) / "lake"
        slug = workdir_slug(root) if "{workdir}" in env.get(SETTING_DATA, "") + env.get(SETTING_SCHEMA, "") else ""
        data = (env.get(SETTING_DATA) or str(lake / "data") + "/").replace("{workdir}", slug)
        return cls(metadata=env.get(SETTING_METADATA) or "sqlite:" + str(lake / "metadata.sqlite"), data_path=data,
                   s3=S3Settings.from_env(env) if data.startswith("s3://") else None,
                   configured=frozenset(k for k, name in (("metadata", SETTING_METADATA), ("data", SETTING_DATA))
                                        if env.get(name)),
                   metadata_schema=env.get(SETTING_SCHEMA, "").replace("{workdir}", slug))

    @property
    def embedded(self) -> bool:
        """Metadata in a local file (SQLite or DuckDB), no server."""
        return self.metadata.startswith("sqlite:") or not self.metadata.startswith(_REMOTE_META)

    @property
    def metadata_file(self) -> Path | None:
        """The local metadata file of an embedded lake (None for a server)."""
        return Path(self.metadata.removeprefix("sqlite:")) if self.embedded else None

    @property
    def remote_data(self) -> bool:
        return "://" in self.data_path


def _check_local(settings: LakeSettings, *, read_only: bool, create: bool) -> None:
    if settings.remote_data and not settings.data_path.startswith("s3://"):
        raise InputError(f"{SETTING_DATA}={settings.data_path}: only local folders and s3:// are supported",
                         hint="use a folder, or s3://bucket/prefix/ (any S3-compatible store via AWS_ENDPOINT_URL)")
    to_make: list[Path] = []  # checked first, created only when every location is fine (nothing half-made)
    if settings.metadata_file is not None:
        meta = settings.metadata_file
        if (read_only or not create) and not meta.is_file():
            raise InputError(f"{SETTING_METADATA}={settings.metadata}: no DuckLake catalogue there",
                             hint="build one first (georeset demo) or point the setting at the catalogue file")
        if not meta.parent.is_dir():
            if not create or "metadata" in settings.configured:
                raise InputError(f"{SETTING_METADATA}={settings.metadata}: the folder {meta.parent} does not exist",
                                 hint="create it (mkdir -p), or fix the setting")
            to_make.append(meta.parent)
    if not settings.remote_data:
        data = Path(settings.data_path)
        if data.exists() and not data.is_dir():
            raise InputError(f"{SETTING_DATA}={settings.data_path} is a file, not a folder",
                             hint="point it at a folder (or s3://bucket/prefix/)")
        if not data.exists():
            if not create or read_only or "data" in settings.configured:
                raise InputError(f"{SETTING_DATA}={settings.data_path}: the folder does not exist",
                                 hint="create it (mkdir -p), or fix the setting")
            to_make.append(data)
    for folder in to_make:
        folder.mkdir(parents=True, exist_ok=True)


_HTTP_STATUS = re.compile(r"\(HTTP (\d{3})\b")  # httpfs: "HTTP GET error reading 's3://...' (HTTP 403 Forbidden)"
_S3_CODE = re.compile(r"^(NoSuchBucket|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch):", re.MULTILINE)


def _storage_error(settings: LakeSettings, s3: S3Settings, exc: BaseException) -> InputError:
    """An object-store failure as an InputError naming the setting at fault and the fix.

    Read from the HTTP status and the S3 error code the store answered, never from digits anywhere in the message:
    an endpoint on port 40377 that nobody listens on is a store that is down, not a denied key."""
    text = str(exc)
    where = f"{SETTING_DATA}={settings.data_path}"
    status_match = _HTTP_STATUS.search(text) if isinstance(exc, duckdb.HTTPException) else None
    status = status_match.group(1) if status_match else ""
    code_match = _S3_CODE.search(text)
    code = code_match.group(1) if code_match else ""
    if code == "NoSuchBucket" or status == "404":
        bucket = settings.data_path[len("s3://"):].split("/", 1)[0]
        return InputError(f"{where}: the bucket {bucket!r} does not exist",
                          hint=f"create the bucket {bucket!r} on the object store, or fix {SETTING_DATA}")
    if code or status == "403":
        return InputError(f"{where}: the object store denies access ({code or 'HTTP 403'}, key id "
                          f"{s3.key_id or '(none)'!r})",
                          hint="set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY to a key that may read and write "
                               "this bucket and prefix")
    endpoint = s3.endpoint or "AWS S3"
    return InputError(f"{where}: cannot reach the object store at {endpoint} "
                      f"({text.splitlines()[0] if text else type(exc).__name__})",
                      hint="start the object store, or fix AWS_ENDPOINT_URL (http://host:port)")


def _metadata_error(settings: LakeSettings, exc: BaseException) -> InputError:
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    if settings.metadata.startswith("postgres:"):
        if ("role" in text and "does not exist" in text) or "authentication" in text or "password" in text:
            hint = ("use a PostgreSQL user and password it accepts (user=... in the setting; the password in "
                    "PGPASSWORD or ~/.pgpass)")
        elif "database" in text and "does not exist" in text:
            hint = "create the database (createdb NAME), or fix dbname=... in the setting"
        else:
            hint = "start PostgreSQL, or fix host=... port=... in the setting (is the server up, accepting TCP?)"
        return InputError(f"{SETTING_METADATA}={settings.metadata}: PostgreSQL refused the lake's metadata "
                          f"connection: {first}", hint=hint)
    return InputError(f"cannot attach the DuckLake catalogue ({SETTING_METADATA}={settings.metadata}): {first}",
                      hint="check the setting, and that no other process holds the embedded catalogue open "
                           "(one process at a time; use PostgreSQL metadata for many)")


def attach(con: duckdb.DuckDBPyConnection, settings: LakeSettings, *, alias: str = "lake", read_only: bool = False,
           create: bool = True) -> None:
    """ATTACH the lake as ``alias`` (extensions are LOADed from their packages, never INSTALLed).

    Data on ``s3://``: an httpfs secret is made from :class:`S3Settings` and the store is probed (a listing of the
    prefix) before anything is attached. Settings that cannot work (a missing folder, a refused or unknown
    PostgreSQL, an object store down, a denied key, a missing bucket) raise InputError naming the setting and the
    fix, before anything is written."""
    from georeset.data_catalog.connect import load_extensions

    _check_local(settings, read_only=read_only, create=create)
    s3 = settings.s3 or S3Settings.from_env()
    remote_s3 = settings.data_path.startswith("s3://")
    scanner = {"postgres:": "postgres_scanner", "sqlite:": "sqlite_scanner"}
    load_extensions(con, ("ducklake",) + tuple(v for k, v in scanner.items() if settings.metadata.startswith(k))
                    + (("httpfs",) if remote_s3 else ()))
    data = settings.data_path if settings.data_path.endswith("/") else settings.data_path + "/"
    if remote_s3:
        bucket = data[len("s3://"):].split("/", 1)[0]
        if not bucket:
            raise InputError(f"{SETTING_DATA}={settings.data_path}: no bucket", hint="use s3://bucket/prefix/")
        con.execute(s3.secret_sql(f"{alias}_s3", f"s3://{bucket}"))
        try:
            con.execute(f"SELECT count(*) FROM glob({_q(data + '*')})").fetchone()
        except duckdb.Error as exc:
            raise _storage_error(settings, s3, exc) from exc
    opts = [f"DATA_PATH {_q(data)}"] + (["READ_ONLY"] if read_only else [])
    if settings.metadata_file is not None and "data" not in settings.configured and not remote_s3:
        # the embedded default keeps its data next to its metadata (<workdir>/lake/data/): a work directory that
        # was moved or copied keeps working (DuckLake stores the absolute DATA_PATH, file paths relative to it)
        opts.append("OVERRIDE_DATA_PATH TRUE")
    if settings.metadata_schema:
        if settings.embedded:
            raise InputError(f"{SETTING_SCHEMA}={settings.metadata_schema} needs server metadata",
                             hint=f"unset {SETTING_SCHEMA}, or set {SETTING_METADATA}=postgres:...")
        opts.append(f"METADATA_SCHEMA {_q(settings.metadata_schema)}")
    try:
        con.execute(f"ATTACH {_q('ducklake:' + settings.metadata)} AS {alias} ({', '.join(opts)})")
    except duckdb.Error as exc:
        raise _metadata_error(settings, exc) from exc


def snapshot_id(con: duckdb.DuckDBPyConnection, alias: str = "lake") -> int:
    """The lake's current snapshot id (the lineage key: ``AT (VERSION => id)`` reads the rows as of it)."""
    row = con.execute(f"FROM {alias}.current_snapshot()").fetchone()
    assert row is not None
    return int(row[0])


@dataclass(frozen=True)
class UpsertResult:
    table: str
    staged: int
    inserted: int
    updated: int
    snapshot_id: int
    attempts: int


def _conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    # "database is locked": two writers on SQLite lake metadata (the embedded default) take turns
    return isinstance(exc, duckdb.TransactionException) or "conflict" in text or "database is locked" in text


CLAIMS = "georeset_commit_claims"


def ensure_claim(con: duckdb.DuckDBPyConnection, alias: str, table: str) -> None:
    """One claim row per table: every upsert rewrites it, so two overlapping upserts of one table conflict.

    The row must exist BEFORE the first concurrent commits: deleting a row that is not there conflicts with
    nothing, so two first commits of a table would both land (measured: duplicates)."""
    for attempt in range(10):
        try:
            con.execute(f"CREATE TABLE IF NOT EXISTS {alias}.{CLAIMS} (table_name VARCHAR, claimed_by VARCHAR)")
            if not con.execute(f"SELECT 1 FROM {alias}.{CLAIMS} WHERE table_name = ?", [table]).fetchone():
                con.execute(f"INSERT INTO {alias}.{CLAIMS} VALUES (?, 'init')", [table])
            return
        except duckdb.Error as exc:
            if not _conflict(exc) and "already exists" not in str(exc):
                raise
            time.sleep(0.05 * (attempt + 1) * (0.5 + random.random()))
    raise InputError(f"cannot create {alias}.{CLAIMS}: the lake keeps conflicting", hint="retry the task")


def upsert(con: duckdb.DuckDBPyConnection, table: str, source_sql: str, key: Sequence[str], *, alias: str = "lake",
           retries: int = 20) -> UpsertResult:
    """Upsert ``source_sql``'s rows into ``alias.table`` on the natural ``key``, in one transaction.

    DuckLake has no unique constraints, so uniqueness is kept here: the staged rows are deduplicated on the key
    (newest ``retrieved_at`` wins), changed rows (other ``content_hash``, not older) are deleted and re-inserted,
    new keys inserted; unchanged or older rows are left alone.

    Concurrent inserts never conflict in DuckLake, so two writers whose inputs overlap could both insert a key. To
    make them conflict, every upsert of ``table`` also rewrites the table's claim row (``georeset_commit_claims``):
    two transactions deleting the same row conflict at commit, the loser is rolled back and retried (with jitter,
    up to ``retries`` times) on the new snapshot, where it sees the winner's rows."""
    keys = ", ".join(f'"{k}"' for k in key)
    on = " AND ".join(f't."{k}" = s."{k}"' for k in key)
    target = f"{alias}.{table}"
    cols = [r[0] for r in con.execute(f"DESCRIBE {target}").fetchall()]
    has_time, has_hash = "retrieved_at" in cols, "content_hash" in cols
    order = ("retrieved_at DESC NULLS LAST" if has_time else "1") + (", content_hash" if has_hash else "")
    guard = ("t.content_hash IS DISTINCT FROM s.content_hash" if has_hash else "true") + (
        " AND (t.retrieved_at IS NULL OR s.retrieved_at >= t.retrieved_at)" if has_time else "")
    col_list = ", ".join(f'"{c}"' for c in cols)
    # The staged rows, deduplicated, are read once into a temporary table before the transaction: that work (a
    # read of Parquet files, maybe from object storage) runs in parallel across writers and is not redone on retry.
    src = f"temp.main.georeset_upsert_{uuid.uuid4().hex}"
    con.execute(f"CREATE TEMP TABLE {src.split('.')[-1]} AS SELECT {col_list} FROM ({source_sql}) "
                f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {order}) = 1")
    try:
        return _upsert_from(con, alias, table, src, on, guard, col_list, retries)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {src}")


def _upsert_from(con: duckdb.DuckDBPyConnection, alias: str, table: str, src: str, on: str, guard: str,
                 col_list: str, retries: int) -> UpsertResult:
    target = f"{alias}.{table}"
    ensure_claim(con, alias, table)
    for attempt in range(1, retries + 2):
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"DELETE FROM {alias}.{CLAIMS} WHERE table_name = ?", [table])
            con.execute(f"INSERT INTO {alias}.{CLAIMS} VALUES (?, ?)", [table, f"{os.getpid()}-{attempt}"])
            staged = int(con.execute(f"SELECT count(*) FROM {src}").fetchone()[0])  # type: ignore[index]
            updated = int(con.execute(f"SELECT count(*) FROM {src} s JOIN {target} t ON {on} WHERE {guard}"
                                      ).fetchone()[0])  # type: ignore[index]
            if updated:
                con.execute(f"DELETE FROM {target} t WHERE EXISTS (SELECT 1 FROM {src} s WHERE {on} AND {guard})")
            cur = con.execute(f"INSERT INTO {target} ({col_list}) SELECT {col_list} FROM {src} s "
                              f"WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {on})")
            written = int(cur.fetchone()[0])  # type: ignore[index]
            con.execute("COMMIT")
        except duckdb.Error as exc:
            try:
                con.execute("ROLLBACK")
            except duckdb.TransactionException:
                pass  # a failed COMMIT has already ended the transaction
            if _conflict(exc) and attempt <= retries:
                time.sleep(min(1.0, 0.02 * 2 ** attempt) * (0.5 + random.random()))
                continue
            raise
        return UpsertResult(table, staged, written - updated, updated, snapshot_id(con, alias), attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def rows_at(con: duckdb.DuckDBPyConnection, table: str, version: int, *, alias: str = "lake",
            columns: str = "*", order: str = "1") -> list[tuple[Any, ...]]:
    """The rows of ``table`` as of snapshot ``version`` (what a shard made then was built from)."""
    return con.execute(f"SELECT {columns} FROM {alias}.{table} AT (VERSION => {int(version)}) ORDER BY {order}"
                       ).fetchall()


def _table_stats(con: duckdb.DuckDBPyConnection, alias: str) -> dict[str, tuple[int, int]]:
    """``{table: (rows, data files)}`` of every table of the lake."""
    names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
                                       "ORDER BY table_name", [alias]).fetchall()]
    out = {}
    for name in names:
        rows = int(con.execute(f'SELECT count(*) FROM {alias}."{name}"').fetchone()[0])  # type: ignore[index]
        files = int(con.execute(f"SELECT count(*) FROM ducklake_list_files({_q(alias)}, {_q(name)})"
                                ).fetchone()[0])  # type: ignore[index]
        out[name] = (rows, files)
    return out


def maintain(con: duckdb.DuckDBPyConnection, *, alias: str = "lake", keep_days: float = 30.0,
             keep_versions: Sequence[int] = ()) -> dict[str, Any]:
    """DuckLake's own maintenance, in this order: merge small adjacent data files
    (``ducklake_merge_adjacent_files``), expire snapshots older than ``keep_days`` except the current one and
    ``keep_versions`` (the snapshots shards and runs name, so they stay reproducible) with
    ``ducklake_expire_snapshots``, then delete the files nothing references any more
    (``ducklake_cleanup_old_files``). Rows are never changed: the report has rows and files per table, before and
    after, and the snapshots expired."""
    if keep_days < 0:
        raise InputError(f"--keep-days {keep_days} is negative", hint="give 0 or more days of snapshots to keep")
    before = _table_stats(con, alias)
    snaps = con.execute(f"SELECT snapshot_id, snapshot_time < now() - INTERVAL ({float(keep_days)} * 86400) SECOND "
                        f"FROM {alias}.snapshots() ORDER BY snapshot_id").fetchall()
    current = snapshot_id(con, alias)
    keep = {int(v) for v in keep_versions} | {current}
    expire = [int(sid) for sid, old in snaps if old and int(sid) not in keep]
    con.execute(f"CALL ducklake_merge_adjacent_files({_q(alias)})")
    if expire:
        con.execute(f"CALL ducklake_expire_snapshots({_q(alias)}, versions => {expire})")
    cleaned = con.execute(f"CALL ducklake_cleanup_old_files({_q(alias)}, cleanup_all => true)").fetchall()
    after = _table_stats(con, alias)
    return {"tables": {t: {"rows_before": before[t][0], "rows_after": after.get(t, (0, 0))[0],
                           "files_before": before[t][1], "files_after": after.get(t, (0, 0))[1]} for t in before},
            "files_before": sum(f for _, f in before.values()), "files_after": sum(f for _, f in after.values()),
            "snapshots_before": len(snaps), "snapshots_expired": expire, "snapshots_kept": sorted(keep),
            "files_deleted": len(cleaned), "snapshot_id": snapshot_id(con, alias)}
