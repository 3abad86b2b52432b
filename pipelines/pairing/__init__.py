"""Pairing: documents <-> imagery patches by location (document point or resolved toponym inside a patch)."""

from georeset.pipelines.pairing.pair import PAIRING_METHOD, pair_documents

__all__ = ["PAIRING_METHOD", "pair_documents"]
