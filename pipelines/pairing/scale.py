"""Which resolved places are small enough to pair with an image patch.

A toponym says *where* a text is, at the scale of the place it names: "Kaivopuisto" (a park) fits a 160 m patch,
"Helsinki" (a city) or "France" (a country) does not -- pairing every text that names a city with the patch at the
city's point joins unrelated texts to one patch. A place's *extent* (metres, its larger side) comes from its
geometry when that is an area, else from a typical size of its GeoNames feature code, else of its feature class
(``PLACE_EXTENT_BY_CODE``, ``PLACE_EXTENT_BY_CLASS``; values are order-of-magnitude sizes). A toponym pairs with a
patch only when ``extent <= FIT_RATIO * patch extent`` (``gsd * size``). Places without a class (unknown scale)
never pair. Coarse places stay in ``places``/``toponyms`` for analysts and location targets, not as patch pairs.
"""

from __future__ import annotations

__all__ = ["FIT_RATIO", "PLACE_EXTENT_BY_CLASS", "PLACE_EXTENT_BY_CODE", "extent_sql", "place_extent_m"]

FIT_RATIO = 4.0

# GeoNames feature classes: A admin, P populated place, L area/park, S spot/building, R road/railway,
# H hydrography, T terrain, V vegetation, U undersea.
PLACE_EXTENT_BY_CLASS: dict[str, float] = {
    "A": 100_000.0, "P": 5_000.0, "L": 2_000.0, "S": 100.0, "R": 500.0, "H": 2_000.0, "T": 2_000.0,
    "V": 3_000.0, "U": 100_000.0,
}  # fmt: skip

PLACE_EXTENT_BY_CODE: dict[str, float] = {
    # populated places: all coarser than a patch except a small locality or farm
    "PPLC": 20_000.0, "PPLA": 10_000.0, "PPLA2": 8_000.0, "PPLA3": 5_000.0, "PPLA4": 3_000.0, "PPL": 3_000.0,
    "PPLX": 1_000.0, "PPLL": 1_000.0, "PPLF": 300.0, "PPLS": 3_000.0,
    # areas and parks
    "PRK": 500.0, "AREA": 2_000.0, "LCTY": 1_000.0, "RGN": 50_000.0, "PRT": 1_000.0, "RES": 5_000.0,
    # spots: buildings and sites
    "AIRP": 3_000.0, "AIRF": 1_500.0, "STDM": 250.0, "SQR": 150.0, "CMTY": 300.0, "UNIV": 500.0, "HSP": 200.0,
    "MALL": 250.0, "CSTL": 150.0, "PAL": 150.0, "MUS": 100.0, "CH": 60.0, "HTL": 60.0, "SCH": 100.0,
    "RSTN": 200.0, "MNMT": 30.0, "LTHSE": 20.0, "BDG": 100.0, "MKT": 100.0, "ZOO": 500.0, "GDN": 300.0,
    # roads, rails, water, terrain
    "ST": 400.0, "RD": 2_000.0, "RR": 10_000.0, "TNL": 500.0, "LK": 2_000.0, "PND": 100.0, "POOL": 50.0,
    "BAY": 5_000.0, "COVE": 500.0, "HBR": 1_000.0, "STM": 10_000.0, "CNL": 2_000.0, "ISL": 2_000.0,
    "ISLET": 200.0, "HLL": 500.0, "MT": 3_000.0, "PK": 1_000.0, "PT": 300.0, "FRST": 5_000.0,
    # countries and divisions
    "PCLI": 1_000_000.0, "PCL": 1_000_000.0, "ADM1": 200_000.0, "ADM2": 50_000.0, "ADM3": 20_000.0,
    "ADM4": 5_000.0, "ADMD": 20_000.0,
}  # fmt: skip


def place_extent_m(feature_class: str | None, feature_code: str | None, geom_extent_m: float | None = None
                   ) -> float | None:
    """The larger side of a place in metres, or None when its scale is unknown (the place then never pairs)."""
    if geom_extent_m is not None and geom_extent_m > 0:
        return float(geom_extent_m)
    if feature_code and feature_code in PLACE_EXTENT_BY_CODE:
        return PLACE_EXTENT_BY_CODE[feature_code]
    if feature_class and feature_class in PLACE_EXTENT_BY_CLASS:
        return PLACE_EXTENT_BY_CLASS[feature_class]
    return None


def _values(d: dict[str, float]) -> str:
    return ", ".join(f"('{k}', {v!r})" for k, v in sorted(d.items()))


def extent_sql(alias: str = "pl") -> tuple[str, str]:
    """(joins, expression): SQL joins on the ``places`` alias and the extent expression of :func:`place_extent_m`
    (an area geometry's larger side in metres first, then the code table, then the class table)."""
    joins = (
        f"LEFT JOIN (VALUES {_values(PLACE_EXTENT_BY_CODE)}) ext_code(code, m) ON ext_code.code = {alias}.feature_code "
        f"LEFT JOIN (VALUES {_values(PLACE_EXTENT_BY_CLASS)}) ext_class(cls, m) ON ext_class.cls = {alias}.feature_class"
    )
    geom_m = (
        f"CASE WHEN {alias}.geom IS NOT NULL AND ST_GeometryType({alias}.geom) IN ('POLYGON', 'MULTIPOLYGON') "
        f"THEN greatest((ST_YMax({alias}.geom) - ST_YMin({alias}.geom)) * 111195.0, "
        f"(ST_XMax({alias}.geom) - ST_XMin({alias}.geom)) * 111195.0 "
        f"* cos(radians((ST_YMax({alias}.geom) + ST_YMin({alias}.geom)) / 2))) END"
    )
    return joins, f"coalesce({geom_m}, ext_code.m, ext_class.m)"
