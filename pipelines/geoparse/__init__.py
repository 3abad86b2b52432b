"""Geoparsing: a GeoNames gazetteer in the catalogue, spaCy NER + gazetteer matching, ranking, corpora readers."""

from georeset.pipelines.geoparse.candidates import Candidate, CandidateIndex
from georeset.pipelines.geoparse.corpora import GoldDocument, GoldToponym, read_corpus, read_lgl, read_wiktor
from georeset.pipelines.geoparse.evaluate import evaluate
from georeset.pipelines.geoparse.gazetteer import (
    GAZETTEER_LICENCE,
    GAZETTEER_SOURCE,
    cached_gazetteer_rows,
    gazetteer_rows,
)
from georeset.pipelines.geoparse.geolocate import geolocate
from georeset.pipelines.geoparse.names import name_key
from georeset.pipelines.geoparse.parser import (
    METHOD,
    Geoparser,
    TextTruncatedWarning,
    Toponym,
    load_nlp,
)

__all__ = [
    "GAZETTEER_LICENCE",
    "GAZETTEER_SOURCE",
    "METHOD",
    "Candidate",
    "CandidateIndex",
    "Geoparser",
    "GoldDocument",
    "GoldToponym",
    "TextTruncatedWarning",
    "Toponym",
    "cached_gazetteer_rows",
    "evaluate",
    "gazetteer_rows",
    "geolocate",
    "load_nlp",
    "name_key",
    "read_corpus",
    "read_lgl",
    "read_wiktor",
]
