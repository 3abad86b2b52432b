"""Open the catalogue: an in-memory DuckDB with its extensions LOADed from the installed PyPI packages (never
INSTALLed) and the DuckLake catalogue ATTACHed (:func:`open_lake`); :func:`connect` opens plain DuckDB files (the
derived search index)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import duckdb

from georeset.errors import CatalogError, InputError

__all__ = ["EXTENSIONS", "LAKE", "INDEX", "extension_path", "load_extensions", "connect", "catalog_root", "lake_settings",
           "index_path", "open_lake"]

EXTENSIONS: tuple[str, ...] = ("spatial", "fts", "vss")


def extension_path(name: str) -> Path:
    """Path of the ``<name>.duckdb_extension`` binary shipped by the ``duckdb-extension-<name>`` wheel."""
    try:
        mod = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError as exc:
        raise CatalogError(
            f"DuckDB extension package for {name!r} is not installed",
            hint=f"pip install duckdb-extension-{name}=={duckdb.__version__}",
        ) from exc
    assert mod.__file__ is not None
    path = Path(mod.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise CatalogError(
            f"{path} is missing: the duckdb-extension-{name} package does not match duckdb {duckdb.__version__}",
            hint=f"pip install duckdb=={duckdb.__version__} duckdb-extension-{name}=={duckdb.__version__}",
        )
    return path


def load_extensions(con: duckdb.DuckDBPyConnection, names: tuple[str, ...] = EXTENSIONS) -> None:
    """LOAD each extension from its package path (no network, no writes to HOME)."""
    for name in names:
        con.execute(f"LOAD '{extension_path(name)}'")


def connect(
    path: str | Path = ":memory:", *, read_only: bool = False, extensions: tuple[str, ...] = EXTENSIONS
) -> duckdb.DuckDBPyConnection:
    """Connect to the catalogue file and load the extensions.

    Autoinstall/autoload are off, so a missing extension is an explicit error instead of a network call.
    """
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    if path != ":memory:":
        p = Path(path)
        if read_only and not p.exists():
            raise CatalogError(f"catalogue {p} does not exist", hint="run `georeset demo --workdir DIR` first")
        p.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.Error as exc:
        raise CatalogError(
            f"cannot open catalogue {path}: {exc}",
            hint="check the path, and that no other process holds it open for writing",
        ) from exc
    load_extensions(con, extensions)
    if "vss" in extensions:
        con.execute("SET hnsw_enable_experimental_persistence = true")
    return con


# --- the catalogue: a DuckLake ------------------------------------------------------------------------------------

LAKE = "lake"  # the alias the catalogue is attached as (and USEd): `SELECT ... FROM documents` reads lake.documents
INDEX = "search"  # the alias of the derived search index database in reader connections
_LEGACY_NAMES = ("georeset.duckdb",)


def catalog_root(location: str | Path) -> Path:
    """The work directory a catalogue location names: the workdir itself, or a file in it (``georeset.duckdb``, the
    catalogue file of earlier versions, or ``lake/metadata.sqlite``) -- what ``--db`` accepts."""
    p = Path(location).expanduser()
    if p.name in _LEGACY_NAMES or p.suffix == ".duckdb":
        return p.parent.resolve()
    if p.name == "metadata.sqlite" and p.parent.name == "lake":
        return p.parent.parent.resolve()
    return p.resolve()


def lake_settings(location: str | Path) -> Any:
    """Where the catalogue of ``location`` lives (the embedded default in the workdir, or the environment's
    GEORESET_LAKE_METADATA / GEORESET_LAKE_DATA)."""
    from georeset.data_catalog.lake import LakeSettings

    return LakeSettings.for_workdir(catalog_root(location))


def index_path(location: str | Path) -> Path:
    """The derived search index database (BM25 + HNSW) of the catalogue at ``location``."""
    return catalog_root(location) / "index" / "search.duckdb"


def open_lake(location: str | Path, *, read_only: bool = False, extensions: tuple[str, ...] = EXTENSIONS,
              create: bool | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the extensions LOADed and the catalogue lake ATTACHed as ``lake`` and USEd.

    ``location``: a work directory or a file in it (:func:`catalog_root`); ``":memory:"``: a new throwaway lake in
    a temporary directory, removed when the connection is garbage-collected or the interpreter exits.
    ``read_only``: readers (analysts, search, report) attach READ_ONLY and see committed snapshots only, never
    waiting on a writer. A catalogue that is not there raises InputError naming ``--workdir``/``--db`` and the
    lake settings, with the fix."""
    from georeset.data_catalog.lake import SETTING_DATA, SETTING_METADATA, attach

    throwaway = str(location) == ":memory:"
    if throwaway:  # a throwaway catalogue (tests, probes): a fresh embedded lake of its own
        import tempfile

        location = tempfile.mkdtemp(prefix="georeset-lake-")
    settings = lake_settings(location)
    con = connect(":memory:", extensions=extensions)
    if throwaway:  # its folder goes with the connection (or at interpreter exit), never left behind in the temp dir
        import shutil
        import weakref

        weakref.finalize(con, shutil.rmtree, location, True)
    try:
        attach(con, settings, alias=LAKE, read_only=read_only, create=not read_only if create is None else create)
        con.execute(f"USE {LAKE}")
        if not read_only and settings.metadata.startswith("sqlite:"):
            _sqlite_wal(settings.metadata_file)
    except InputError as exc:
        con.close()
        where = f"--workdir/--db {catalog_root(location)}"
        if os.environ.get(SETTING_METADATA) or os.environ.get(SETTING_DATA):
            where += f" with {SETTING_METADATA}/{SETTING_DATA} from the environment"
        raise InputError(f"{exc.message} [catalogue of {where}]",
                         hint=(exc.hint or "") + "; build the catalogue first (georeset demo --workdir DIR), or point "
                              f"--workdir at an existing one, or fix {SETTING_METADATA}/{SETTING_DATA}") from exc
    except BaseException:
        con.close()
        raise
    return con


def _sqlite_wal(path: Path | None) -> None:
    """Put SQLite lake metadata in WAL mode (kept in the file): readers then never wait on a committing writer
    (measured: 666 vs 92 snapshot reads in 4 s while a writer commits in a loop), writers still take turns."""
    import sqlite3

    if path is None or not path.is_file():
        return
    try:
        db = sqlite3.connect(path, timeout=5)
        try:
            if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
        finally:
            db.close()
    except sqlite3.Error:
        pass  # busy now: the next writer that opens the lake sets it
