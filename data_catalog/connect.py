"""Open the DuckDB catalogue with its extensions LOADed from the installed PyPI packages (never INSTALLed)."""

from __future__ import annotations

import importlib
from pathlib import Path

import duckdb

from georeset.errors import CatalogError

__all__ = ["EXTENSIONS", "extension_path", "load_extensions", "connect"]

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
