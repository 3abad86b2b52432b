"""The one band registry of GEO-ReSeT: what each image channel *is*, for imagery, export, training and inference.

Every module that needs a band's physics (central wavelength, bandwidth, polarisation, radar frequency, native
GSD) reads it here (Sentinel-2 MSI, Sentinel-1 C-band, Landsat OLI and TM/ETM+ surface reflectance): :mod:`georeset.pipelines.imagery` (STAC assets -> patches), :mod:`georeset.data_catalog.export`
(the ``wavelengths_um`` / ``bandwidths_um`` columns of training shards), :mod:`georeset.models` (token descriptors,
checkpoints, ``georeset model embed``). Nothing here imports anything but :mod:`georeset.errors`.

**Sentinel-2 source.** ESA, *Sentinel-2 Spectral Response Functions (S2-SRF)*, COPE-GSEG-EOPG-TN-15-0007,
issue 3.0 (2017), as tabulated in the Sentinel-2 MSI User Guide, "Radiometric resolutions" (central wavelength and
bandwidth in nm, per unit S2A and S2B). The registry's canonical value of a band is the **S2A** one (the spec the
model sees, whatever unit took the scene); :data:`S2_SRF` keeps both units, and :func:`s2_tolerance_um` derives
from them how far a user-given wavelength may be from the canonical one and still name that band:
``max(0.005 µm, |S2A - S2B| centre, 0.1 x bandwidth)``. That covers the S2A/S2B spread and the commonly quoted
rounded centres (B02 0.490, B08 0.842, B11 1.610, B12 2.190 as in Earth Search ``eo:bands``) while keeping
neighbouring bands apart. Sentinel-1 is C-band SAR at 5.405 GHz.

**Versions.** :data:`BAND_REGISTRY_VERSION` is stored in checkpoints. ``georeset-bands/1`` (no field in the
checkpoint) was the time of two tables: shards carried the rounded wavelengths of the imagery table while
checkpoints recorded the S2A values, so a model of that time saw B02/B08/B11/B12 at other wavelengths than
inference gives it; such checkpoints are refused with a message naming both versions (see
:func:`georeset.models.checkpoint.check_checkpoint`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from georeset.errors import GeoResetWarning, InputError

__all__ = [
    "BAND_REGISTRY_VERSION",
    "BandSpec",
    "BandToleranceWarning",
    "BAND_REGISTRY",
    "S2_SRF",
    "LANDSAT_OLI",
    "LANDSAT_TM",
    "S2_BANDS",
    "S2_DEFAULT_BANDS",
    "S1_DEFAULT_BANDS",
    "SAR_POLARIZATIONS",
    "S1_FREQUENCY_GHZ",
    "band_metadata",
    "canonical_name",
    "get_band",
    "match_wavelength",
    "optical_band",
    "register_band",
    "resolve_bands",
    "s2_tolerance_um",
    "sar_band",
]

BAND_REGISTRY_VERSION = "georeset-bands/2"

BandKind = Literal["optical", "sar"]

S1_FREQUENCY_GHZ = 5.405
SAR_POLARIZATIONS: tuple[str, ...] = ("VV", "VH", "HH", "HV")

#: Sentinel-2 MSI, ESA S2-SRF issue 3.0: name -> ((S2A centre nm, S2A bandwidth nm), (S2B centre nm, S2B bandwidth
#: nm), native GSD m).
S2_SRF: dict[str, tuple[tuple[float, float], tuple[float, float], float]] = {
    "B01": ((442.7, 21.0), (442.2, 21.0), 60.0),
    "B02": ((492.4, 66.0), (492.1, 66.0), 10.0),
    "B03": ((559.8, 36.0), (559.0, 36.0), 10.0),
    "B04": ((664.6, 31.0), (664.9, 31.0), 10.0),
    "B05": ((704.1, 15.0), (703.8, 16.0), 20.0),
    "B06": ((740.5, 15.0), (739.1, 15.0), 20.0),
    "B07": ((782.8, 20.0), (779.7, 20.0), 20.0),
    "B08": ((832.8, 106.0), (832.9, 106.0), 10.0),
    "B8A": ((864.7, 21.0), (864.0, 22.0), 20.0),
    "B09": ((945.1, 20.0), (943.2, 21.0), 60.0),
    "B10": ((1373.5, 31.0), (1376.9, 30.0), 60.0),
    "B11": ((1613.7, 91.0), (1610.4, 94.0), 20.0),
    "B12": ((2202.4, 175.0), (2185.7, 185.0), 20.0),
}
#: name -> (canonical central wavelength µm, bandwidth µm, native GSD m), the S2A values of :data:`S2_SRF`.
S2_BANDS: dict[str, tuple[float, float, float]] = {
    name: (a[0] / 1000.0, a[1] / 1000.0, gsd) for name, (a, _b, gsd) in S2_SRF.items()
}
#: Landsat 8/9 OLI Collection 2 Level-2 surface-reflectance bands by STAC common name: (band, centre µm, width µm)
#: (USGS Landsat 8-9 OLI/TIRS C2 L2 Science Product Guide, LSDS-1619). Named as Earth Search's ``eo:bands`` names
#: them (``OLI_B4``), so that a name means one band whichever Landsat it comes from.
LANDSAT_OLI: dict[str, tuple[str, float, float]] = {
    "coastal": ("OLI_B1", 0.443, 0.016), "blue": ("OLI_B2", 0.482, 0.060), "green": ("OLI_B3", 0.561, 0.057),
    "red": ("OLI_B4", 0.655, 0.037), "nir08": ("OLI_B5", 0.865, 0.028), "swir16": ("OLI_B6", 1.609, 0.085),
    "swir22": ("OLI_B7", 2.201, 0.187),
}  # fmt: skip
#: Landsat 4-5 TM / 7 ETM+ C2 L2 surface-reflectance bands (LSDS-1618).
LANDSAT_TM: dict[str, tuple[str, float, float]] = {
    "blue": ("TM_B1", 0.485, 0.070), "green": ("TM_B2", 0.560, 0.080), "red": ("TM_B3", 0.660, 0.060),
    "nir08": ("TM_B4", 0.835, 0.130), "swir16": ("TM_B5", 1.650, 0.200), "swir22": ("TM_B7", 2.220, 0.270),
}  # fmt: skip
#: The 12 surface-reflectance bands of L2A (no B10), in wavelength order.
S2_DEFAULT_BANDS: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
S1_DEFAULT_BANDS: tuple[str, ...] = ("VV", "VH")


class BandToleranceWarning(GeoResetWarning):
    """A given wavelength was taken as a registry band within its tolerance (the registry's value is used)."""


@dataclass(frozen=True)
class BandSpec:
    """Physical description of one image channel.

    Optical bands carry ``wavelength_um`` and ``bandwidth_um``; SAR bands carry ``polarization`` and
    ``frequency_ghz``. ``gsd_m`` is the band's native ground sampling distance (informative only: the encoder
    uses the GSD of the pixels it is given).
    """

    name: str
    sensor: str
    kind: BandKind
    wavelength_um: float | None = None
    bandwidth_um: float | None = None
    polarization: str | None = None
    frequency_ghz: float | None = None
    gsd_m: float | None = None

    def __post_init__(self) -> None:
        if self.kind == "optical":
            if not _finite_pos(self.wavelength_um) or not _finite_pos(self.bandwidth_um):
                raise InputError(
                    f"optical band {self.name!r} needs a positive wavelength_um and bandwidth_um",
                    hint="pass wavelengths in micrometres, e.g. 0.665 for red, and a bandwidth such as 0.03",
                )
        elif self.kind == "sar":
            if self.polarization not in SAR_POLARIZATIONS:
                raise InputError(
                    f"SAR band {self.name!r} has polarisation {self.polarization!r}",
                    hint=f"use one of {', '.join(SAR_POLARIZATIONS)}",
                )
            if not _finite_pos(self.frequency_ghz):
                raise InputError(f"SAR band {self.name!r} needs a positive frequency_ghz", hint="C-band is 5.405")
        else:
            raise InputError(f"band kind {self.kind!r} is unknown", hint="use 'optical' or 'sar'")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (stored in checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BandSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


def _finite_pos(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def _build_registry() -> dict[str, BandSpec]:
    reg: dict[str, BandSpec] = {}
    for name, (wl, bw, gsd) in S2_BANDS.items():
        reg[name] = BandSpec(name, "S2", "optical", wavelength_um=wl, bandwidth_um=bw, gsd_m=gsd)
    for pol in SAR_POLARIZATIONS:
        reg[pol] = BandSpec(pol, "S1", "sar", polarization=pol, frequency_ghz=S1_FREQUENCY_GHZ, gsd_m=10.0)
    for name, wl, bw in [*LANDSAT_OLI.values(), *LANDSAT_TM.values()]:
        reg[name] = BandSpec(name, "LANDSAT", "optical", wavelength_um=wl, bandwidth_um=bw, gsd_m=30.0)
    return reg


BAND_REGISTRY: dict[str, BandSpec] = _build_registry()

# Common spellings -> registry names ("B1" and "B8a" as in some STAC catalogues, colour names as in Earth Search).
_ALIASES: dict[str, str] = {
    **{f"B{i}": f"B{i:02d}" for i in range(1, 13)},
    "B8a": "B8A",
    "coastal": "B01",
    "blue": "B02",
    "green": "B03",
    "red": "B04",
    "rededge1": "B05",
    "rededge2": "B06",
    "rededge3": "B07",
    "nir": "B08",
    "nir08": "B8A",
    "nir09": "B09",
    "cirrus": "B10",
    "swir16": "B11",
    "swir22": "B12",
    "vv": "VV",
    "vh": "VH",
    "hh": "HH",
    "hv": "HV",
}


def canonical_name(name: str) -> str | None:
    """Registry name of ``name`` (``"B4"``, ``"red"``, ``"b8a"``, ``"vv"`` ...), or None when unknown."""
    for key in (name, _ALIASES.get(name), _ALIASES.get(name.lower()), name.upper(), _ALIASES.get(name.upper())):
        if key and key in BAND_REGISTRY:
            return key
    return None


def get_band(name: str) -> BandSpec:
    """Look a band up by name (``"B04"``, ``"B4"``, ``"red"``, ``"VV"``...)."""
    key = canonical_name(name)
    if key is None:
        raise InputError(
            f"band {name!r} is not in the band registry",
            hint="pass its central wavelength and bandwidth (optical) or polarisation (SAR) explicitly, "
            "or register it with georeset.bands.register_band(...)",
        )
    return BAND_REGISTRY[key]


def s2_tolerance_um(name: str) -> float:
    """How far (µm) a given centre may be from the canonical one of Sentinel-2 band ``name`` (module docstring)."""
    (a_c, a_bw), (b_c, _b_bw), _gsd = S2_SRF[name]
    return max(0.005, abs(a_c - b_c) / 1000.0, 0.1 * a_bw / 1000.0)


def match_wavelength(name: str, wavelength_um: float) -> BandSpec | None:
    """The registry band called ``name`` when ``wavelength_um`` is within its tolerance, else None.

    Warns (:class:`BandToleranceWarning`) when the value is accepted but is not the canonical one (more than
    0.5 nm away), naming both values.
    """
    key = canonical_name(name)
    if key is None or not math.isfinite(wavelength_um):
        return None
    spec = BAND_REGISTRY[key]
    if spec.kind != "optical" or spec.wavelength_um is None:
        return None
    tol = s2_tolerance_um(key) if key in S2_SRF else 0.001
    diff = abs(spec.wavelength_um - wavelength_um)
    if diff > tol:
        return None
    if diff > 0.0005:
        warnings.warn(
            f"band {name!r} at {wavelength_um:g} µm taken as {key} (registry centre {spec.wavelength_um:g} µm, "
            f"tolerance {tol:.4g} µm covering the Sentinel-2A/2B spread); the registry's value is used",
            BandToleranceWarning, stacklevel=3,
        )
    return spec


def band_metadata(name: str) -> tuple[float, float, str]:
    """(central wavelength µm, bandwidth µm, polarisation) of a band name; NaN wavelengths for SAR or unknown."""
    key = canonical_name(name)
    if key is None:
        return math.nan, math.nan, ""
    spec = BAND_REGISTRY[key]
    if spec.kind == "sar":
        return math.nan, math.nan, spec.polarization or ""
    return float(spec.wavelength_um or math.nan), float(spec.bandwidth_um or math.nan), ""


def register_band(spec: BandSpec, *, overwrite: bool = False) -> None:
    """Add a band of a new sensor to the registry."""
    if spec.name in BAND_REGISTRY and not overwrite and BAND_REGISTRY[spec.name] != spec:
        raise InputError(f"band {spec.name!r} is already registered", hint="pass overwrite=True to replace it")
    BAND_REGISTRY[spec.name] = spec


def optical_band(
    name: str, wavelength_um: float, bandwidth_um: float | None = None, *, sensor: str = "custom",
    gsd_m: float | None = None,
) -> BandSpec:
    """Spec for an optical band of any sensor; the bandwidth defaults to 5 % of the wavelength."""
    bw = bandwidth_um if bandwidth_um is not None and math.isfinite(bandwidth_um) else 0.05 * wavelength_um
    return BandSpec(name, sensor, "optical", wavelength_um=float(wavelength_um), bandwidth_um=float(bw), gsd_m=gsd_m)


def sar_band(
    polarization: str, *, frequency_ghz: float = S1_FREQUENCY_GHZ, sensor: str = "custom", name: str | None = None,
    gsd_m: float | None = None,
) -> BandSpec:
    """Spec for a SAR channel (any frequency; Sentinel-1 C-band by default)."""
    pol = polarization.upper()
    return BandSpec(name or pol, sensor, "sar", polarization=pol, frequency_ghz=float(frequency_ghz), gsd_m=gsd_m)


def resolve_bands(
    names: Sequence[str] | None = None,
    *,
    wavelengths_um: Sequence[float] | None = None,
    bandwidths_um: Sequence[float] | None = None,
    polarizations: Sequence[str] | None = None,
    sensor: str = "custom",
) -> list[BandSpec]:
    """Band specs for a stack of channels, from whatever the caller knows.

    Per channel: an explicit polarisation (SAR: the registry band of that name and polarisation, else a new SAR
    band); an explicit finite wavelength (optical: the registry band of that name when the wavelength is within
    its tolerance, see :func:`match_wavelength`, else a new band with that wavelength and the optional
    bandwidth); otherwise the registry by name. This mirrors the training-shard columns (``bands``,
    ``wavelengths_um``, ``bandwidths_um``, ``polarizations``), so shards and inference resolve alike.
    """
    n = _common_length(names, wavelengths_um, bandwidths_um, polarizations)
    out: list[BandSpec] = []
    for i in range(n):
        name = names[i] if names is not None else f"band{i}"
        pol = polarizations[i] if polarizations is not None else ""
        wl = wavelengths_um[i] if wavelengths_um is not None else math.nan
        bw = bandwidths_um[i] if bandwidths_um is not None else math.nan
        if pol:
            key = canonical_name(name)
            known = BAND_REGISTRY.get(key) if key else None
            if known is not None and known.kind == "sar" and known.polarization == pol.upper():
                out.append(known)
            else:
                out.append(sar_band(pol, sensor=sensor, name=name))
        elif wl is not None and math.isfinite(wl):
            known = match_wavelength(name, wl)
            out.append(known if known is not None else optical_band(name, wl, bw, sensor=sensor))
        else:
            out.append(get_band(name))
    return out


def _common_length(*seqs: Sequence[Any] | None) -> int:
    lengths = {len(s) for s in seqs if s is not None}
    if not lengths:
        raise InputError("no band description given", hint="pass band names, wavelengths or polarisations")
    if len(lengths) > 1:
        raise InputError(
            f"band descriptions have different lengths {sorted(lengths)}",
            hint="give one name / wavelength / polarisation per image channel",
        )
    return lengths.pop()
