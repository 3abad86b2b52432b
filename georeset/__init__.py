"""GEO-ReSeT: geocoded text and Sentinel-1/2 imagery in one paired, queryable corpus.

The code lives in three top-level folders (``pipelines/``, ``models/``, ``data_catalog/``) that are exposed
under this one namespace (``georeset.pipelines`` ...) through symlinks; see docs/decisions/0001-namespace.md.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
