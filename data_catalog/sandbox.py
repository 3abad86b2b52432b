"""The analyst sandbox: the one way analysts' tools (``sql``, ``search``, ``report``, ``export-geoparquet``) open the
catalogue, and the recipe that ``docs/duckdb-clients.md`` gives plain DuckDB clients.

What it does, in order (DuckDB 1.5.5; see "Securing DuckDB" in the DuckDB docs):

1. ``LOAD`` spatial, fts and vss (and ducklake + its metadata scanner) from their pip-package paths
   (autoinstall/autoload are off: no network);
2. attach the DuckLake catalogue **READ_ONLY** and ``USE`` it, and the derived search index READ_ONLY as ``search``
   (on the ``search_path``, so ``fts_main_documents.match_bm25`` and ``vss_*`` resolve);
3. ``SET temp_directory`` to a private temporary directory, ``SET allowed_directories`` to that directory and the
   lake's data folder (DuckLake reads its Parquet files after the lock),
   ``SET enable_external_access = false``: no file, glob, URL, ATTACH, COPY TO, EXPORT/IMPORT DATABASE, INSTALL,
   LOAD of another extension, or persistent secret can reach the disk or the network;
4. ``SET lock_configuration = true``: no later ``SET``/``RESET``/``PRAGMA`` can undo the above.

On top of DuckDB's own refusals, :meth:`AnalystConnection.query` accepts only read statements (``SELECT`` and what
DuckDB rewrites to it: ``SHOW``, ``DESCRIBE``, ``SUMMARIZE``, ``FROM t``, ``VALUES``, ``PRAGMA table_info``; and
``EXPLAIN``; ``CALL f()`` is ``SELECT * FROM f()``) so that
every other statement is refused *before* it runs with a message that says why; a time limit (``timeout_s``,
``con.interrupt()`` from a timer), a row cap (``max_rows``) and Ctrl-C (SIGINT interrupts the query instead of
raising inside DuckDB) end a query cleanly.

How the catalogue is attached lives in :func:`catalog_source` and :func:`_attach` only.

Known limit: DuckDB adds every attached database file to its allowed paths when external access is switched off, so
with the settings alone a client could ATTACH the lake's metadata file a second time; the statement filter of
:meth:`AnalystConnection.query` refuses every ATTACH before it runs.
"""

from __future__ import annotations

import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import duckdb

from georeset.errors import GeoResetError, InputError

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_MAX_ROWS",
    "READ_STATEMENTS",
    "SANDBOX_SETTINGS_SQL",
    "AnalystConnection",
    "QueryResult",
    "QueryTimeout",
    "QueryInterrupted",
    "ExtensionNeeded",
    "analyst_connection",
    "catalog_source",
    "extensions_for",
]

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_ROWS = 10_000

# Statement types an analyst may run; DuckDB rewrites SHOW/DESCRIBE/SUMMARIZE/PRAGMA show_tables/VALUES to SELECT.
READ_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})

# The settings applied after the extensions are loaded (docs/duckdb-clients.md shows the same lines).
SANDBOX_SETTINGS_SQL = (
    "SET enable_external_access = false",
    "SET lock_configuration = true",
)

_SANDBOX_HINT = ("analyst SQL reads the catalogue only: no files, URLs, ATTACH, COPY TO, EXPORT, INSTALL/LOAD, SET "
                 "or secrets; save results with `georeset sql --format csv|json|parquet --out FILE`")


class QueryTimeout(InputError):
    """A query ran past its time limit and was stopped (exit 2)."""


class QueryInterrupted(GeoResetError):
    """Ctrl-C stopped a query (the CLI exits 130)."""

    exit_code = 130


class ExtensionNeeded(InputError):
    """The query needs an extension the connection did not load (reopen with it: :func:`extensions_for`)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message, hint=f"open the catalogue with the {name} extension loaded")
        self.name = name


_NEEDS = {
    "spatial": re.compile(r"\bst_\w", re.I),
    "fts": re.compile(r"match_bm25|fts_main|\bstem\s*\(", re.I),
    "vss": re.compile(r"vss_|hnsw|array_(cosine|distance|inner|negative)", re.I),
}
_SECRETS = re.compile(r"\b(duckdb_secrets|which_secret)\s*\(", re.I)
_MISSING = re.compile(r"exists in the (\w+) extension")


def extensions_for(sql: str) -> tuple[str, ...]:
    """The extensions a query is likely to need, from its text (LOAD spatial alone costs ~0.8 s; a query that
    needs one that was not guessed raises :class:`ExtensionNeeded` and is re-run with all of them)."""
    from georeset.data_catalog.connect import EXTENSIONS

    return tuple(n for n in EXTENSIONS if n in _NEEDS and _NEEDS[n].search(sql))


@dataclass
class QueryResult:
    """Rows of one query; ``truncated`` when the result had more than ``max_rows`` rows."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False
    max_rows: int = 0


def catalog_source(catalog_location: str | Path, *, live: bool = False) -> Path:
    """The work directory whose catalogue an analyst reads (``catalog_location``: the workdir or a file in it).
    ``live`` is kept for old callers: every reader sees the newest committed lake snapshot anyway."""
    from georeset.data_catalog.connect import catalog_root

    return catalog_root(catalog_location)


def _attach(source: Path, extensions: tuple[str, ...]) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    """The lake of ``source`` attached READ_ONLY (and USEd) with the extensions loaded, and the derived search index
    attached READ_ONLY as ``search`` when there is one (the one place that knows how the catalogue is attached).
    Returns the connection and the local folders DuckDB must still read after the lock (the lake's data)."""
    from georeset.data_catalog.connect import INDEX, LAKE, index_path, lake_settings, open_lake

    con = open_lake(source, read_only=True, extensions=extensions)
    try:
        idx = index_path(source)
        if idx.is_file():
            con.execute(f"ATTACH '{idx}' AS {INDEX} (READ_ONLY)")
            con.execute(f"SET search_path = '{LAKE}.main,{INDEX}.main,{INDEX}.fts_main_documents'")
        settings = lake_settings(source)
        data = settings.data_path if settings.data_path.endswith("/") else settings.data_path + "/"
    except BaseException:
        con.close()
        raise
    return con, [data]


def _statement_name(t: Any) -> str:
    return str(getattr(t, "name", t)).rsplit(".", 1)[-1]


@dataclass
class AnalystConnection:
    """A sandboxed, read-only DuckDB connection to the catalogue with a time limit and a row cap."""

    con: duckdb.DuckDBPyConnection
    source: Path
    extensions: tuple[str, ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_rows: int = DEFAULT_MAX_ROWS
    _tmpdir: Path | None = None
    _state: dict[str, bool] = field(default_factory=dict)

    def __enter__(self) -> AnalystConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    @contextmanager
    def guard(self, timeout_s: float | None = None) -> Iterator[None]:
        """Run the body under the time limit; Ctrl-C interrupts the query. DuckDB errors become GeoResetErrors."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        self._state = {"timeout": False, "sigint": False}
        timer = None
        if limit and limit > 0:
            timer = threading.Timer(limit, self._on_timeout)
            timer.daemon = True
            timer.start()
        old = None
        if threading.current_thread() is threading.main_thread():
            old = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield
        except KeyboardInterrupt as exc:
            raise QueryInterrupted("interrupted (Ctrl-C): the query was stopped; the catalogue is unchanged") from exc
        except duckdb.Error as exc:
            raise self._translate(exc, limit) from exc
        except RuntimeError as exc:  # DuckDB's Python client raises RuntimeError("Query interrupted") on a signal
            if "interrupt" in str(exc).lower():
                raise self._translate(exc, limit) from exc
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if old is not None:
                signal.signal(signal.SIGINT, old)

    def _on_timeout(self) -> None:
        self._state["timeout"] = True
        self.con.interrupt()

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self._state["sigint"] = True
        self.con.interrupt()

    def _translate(self, exc: BaseException, limit: float | None) -> GeoResetError:
        text = str(exc)
        low = text.lower()
        missing = _MISSING.search(text)
        if missing:
            from georeset.data_catalog.connect import EXTENSIONS

            name = missing.group(1)
            if name in EXTENSIONS and name not in self.extensions:
                return ExtensionNeeded(name, text)
            return InputError(f"refused by the analyst sandbox: the {name} extension is not available "
                              f"({text.splitlines()[0]})", hint=f"the sandbox loads {', '.join(EXTENSIONS)} only")
        if self._state.get("sigint"):
            return QueryInterrupted("interrupted (Ctrl-C): the query was stopped; the catalogue is unchanged")
        if self._state.get("timeout") or isinstance(exc, duckdb.InterruptException):
            return QueryTimeout(f"the query ran longer than the time limit ({(limit or 0):g} s) and was stopped",
                                hint="narrow it (WHERE, LIMIT, a bbox prefilter) or raise --timeout (0 = no limit)")
        if isinstance(exc, duckdb.PermissionException) or "disabled through configuration" in low:
            return InputError(f"refused by the analyst sandbox: {text}", hint=_SANDBOX_HINT)
        if "configuration has been locked" in low:
            return InputError(f"refused by the analyst sandbox (settings are locked): {text}", hint=_SANDBOX_HINT)
        if "read-only" in low or "read only" in low:
            return InputError(f"the catalogue is opened read-only and the query tries to write: {text}",
                              hint="analyst SQL can only read; write through the pipeline stages (georeset demo / "
                                   "harvest ...)")
        return InputError(f"query failed: {text}", hint="check the SQL; list tables with: SHOW TABLES, columns with: "
                                                         "georeset schema")

    def check_read_only(self, sql: str) -> None:
        """Refuse anything but read statements before it runs (a clear message instead of DuckDB's)."""
        try:
            statements = self.con.extract_statements(sql)
        except duckdb.Error as exc:  # IMPORT DATABASE reads its files while parsing: refused there
            err = self._translate(exc, None)
            if err.message.startswith("query failed"):
                err = InputError(f"invalid query: {exc}", hint="check the SQL; list tables with: SHOW TABLES")
            raise err from exc
        if not statements:
            raise InputError("the query is empty", hint='e.g. georeset sql "SELECT count(*) FROM pairs"')
        secret = _SECRETS.search(sql)
        if secret:  # the lake's ATTACH has loaded the secret manager before the lock: DuckDB would list them
            raise InputError(f"refused by the analyst sandbox: {secret.group(1)}() lists credentials",
                             hint=_SANDBOX_HINT)
        for st in statements:
            if st.type not in READ_STATEMENTS:
                name = _statement_name(st.type)
                raise InputError(
                    f"refused by the analyst sandbox (the catalogue is read-only here): {name} statements are not "
                    f"allowed ({str(st.query).strip()[:80]!r}); only SELECT, SHOW, DESCRIBE, SUMMARIZE and EXPLAIN run",
                    hint=_SANDBOX_HINT)

    def query(self, sql: str, *, max_rows: int | None = None) -> QueryResult:
        """Run analyst SQL: read statements only, under the time limit, at most ``max_rows`` rows (0 = no cap)."""
        cap = self.max_rows if max_rows is None else max_rows
        self.check_read_only(sql)
        with self.guard():
            rel = self.con.sql(sql)
            if rel is None:
                return QueryResult([], [], False, cap)
            cols = list(rel.columns)
            rows = (rel.limit(cap + 1) if cap > 0 else rel).fetchall()
        truncated = cap > 0 and len(rows) > cap
        return QueryResult(cols, rows[:cap] if truncated else rows, truncated, cap)

    def arrow(self, sql: str, *, max_rows: int | None = None) -> tuple[Any, bool]:
        """Like :meth:`query` but returns a pyarrow Table (for Parquet output) and whether it was cut."""
        cap = self.max_rows if max_rows is None else max_rows
        self.check_read_only(sql)
        with self.guard():
            rel = self.con.sql(sql)
            if rel is None:
                raise InputError("the query returns no rows to write", hint="end the query with a SELECT")
            table = (rel.limit(cap + 1) if cap > 0 else rel).to_arrow_table()
        truncated = cap > 0 and table.num_rows > cap
        return (table.slice(0, cap) if truncated else table), truncated


def analyst_connection(
    catalog_location: str | Path, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_rows: int = DEFAULT_MAX_ROWS,
    live: bool = False, extensions: tuple[str, ...] | None = None,
) -> AnalystConnection:
    """Open the catalogue for analysts: read-only, extensions loaded, no external access, configuration locked.

    ``catalog_location``: the work directory (or a file in it, :func:`catalog_source`); its DuckLake is attached
    READ_ONLY (the newest committed snapshot; a writer committing meanwhile is never waited on) and the derived
    search index as ``search``. ``timeout_s``: time limit of each query (0 = none). ``max_rows``: row cap of
    :meth:`AnalystConnection.query` (0 = none). ``extensions``: the extensions to LOAD before the lock (default:
    spatial, fts and vss); a query needing another one raises :class:`ExtensionNeeded`.
    """
    from georeset.data_catalog.connect import EXTENSIONS

    if timeout_s < 0:
        raise InputError(f"--timeout {timeout_s:g} is negative", hint="give seconds, e.g. --timeout 60 (0 = no limit)")
    if max_rows < 0:
        raise InputError(f"--max-rows {max_rows} is negative", hint="give a row count, e.g. --max-rows 10000 (0 = all)")
    source = catalog_source(catalog_location, live=live)
    exts = EXTENSIONS if extensions is None else tuple(extensions)
    con, data_dirs = _attach(source, exts)
    tmpdir = Path(tempfile.mkdtemp(prefix="georeset-sql-"))
    try:
        con.execute(f"SET temp_directory = '{tmpdir}'")
        allowed = ", ".join(f"'{d}'" for d in [f"{tmpdir}/", *data_dirs])
        con.execute(f"SET allowed_directories = [{allowed}]")
        for stmt in SANDBOX_SETTINGS_SQL:
            con.execute(stmt)
    except BaseException:
        con.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    return AnalystConnection(con=con, source=source, extensions=exts, timeout_s=timeout_s, max_rows=max_rows, _tmpdir=tmpdir)
