"""Band and sensor specifications: what each image channel *is*, independent of its position in an array.

The image encoder never sees "channel 3"; it sees a band described by physics (central wavelength and bandwidth
for optical bands; polarisation and radar frequency for SAR) plus the ground sampling distance. This module holds
the registry of known bands and builds specs for unknown sensors from user-supplied wavelengths.

Sentinel-2 values are the Sentinel-2A MSI central wavelengths / bandwidths (ESA spectral response functions,
S2-SRF COPE-GSEG-EOPG-TN-15-0007), native GSD in metres. Sentinel-1 is C-band SAR at 5.405 GHz.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from georeset.errors import InputError

__all__ = [
    "BandSpec",
    "BAND_REGISTRY",
    "SAR_POLARIZATIONS",
    "S1_FREQUENCY_GHZ",
    "get_band",
    "register_band",
    "optical_band",
    "sar_band",
    "resolve_bands",
]

BandKind = Literal["optical", "sar"]

S1_FREQUENCY_GHZ = 5.405
SAR_POLARIZATIONS: tuple[str, ...] = ("VV", "VH", "HH", "HV")


@dataclass(frozen=True)
class BandSpec:
    """Physical description of one image channel.

    Optical bands carry ``wavelength_um`` and ``bandwidth_um``; SAR bands carry ``polarization`` and
    ``frequency_ghz``. ``gsd_m`` is the band's native ground sampling distance (informative only: the encoder
    uses the GSD of the patch it is given).
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


# name: (central wavelength nm, bandwidth nm, native GSD m)
_S2_MSI: dict[str, tuple[float, float, float]] = {
    "B01": (442.7, 21.0, 60.0),
    "B02": (492.4, 66.0, 10.0),
    "B03": (559.8, 36.0, 10.0),
    "B04": (664.6, 31.0, 10.0),
    "B05": (704.1, 15.0, 20.0),
    "B06": (740.5, 15.0, 20.0),
    "B07": (782.8, 20.0, 20.0),
    "B08": (832.8, 106.0, 10.0),
    "B8A": (864.7, 21.0, 20.0),
    "B09": (945.1, 20.0, 60.0),
    "B10": (1373.5, 31.0, 60.0),
    "B11": (1613.7, 91.0, 20.0),
    "B12": (2202.4, 175.0, 20.0),
}


def _build_registry() -> dict[str, BandSpec]:
    reg: dict[str, BandSpec] = {}
    for name, (wl, bw, gsd) in _S2_MSI.items():
        reg[name] = BandSpec(name, "S2", "optical", wavelength_um=wl / 1000.0, bandwidth_um=bw / 1000.0, gsd_m=gsd)
    for pol in SAR_POLARIZATIONS:
        reg[pol] = BandSpec(pol, "S1", "sar", polarization=pol, frequency_ghz=S1_FREQUENCY_GHZ, gsd_m=10.0)
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


def get_band(name: str) -> BandSpec:
    """Look a band up by name (``"B04"``, ``"B4"``, ``"red"``, ``"VV"``...)."""
    key = _ALIASES.get(name, name)
    if key not in BAND_REGISTRY:
        key = _ALIASES.get(name.lower(), name.upper())
    try:
        return BAND_REGISTRY[key]
    except KeyError:
        raise InputError(
            f"band {name!r} is not in the band registry",
            hint="pass its central wavelength and bandwidth (optical) or polarisation (SAR) explicitly, "
            "or register it with georeset.models.bands.register_band(...)",
        ) from None


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

    Per channel, the order of preference is: an explicit polarisation (SAR), an explicit finite wavelength
    (optical, bandwidth optional), then the registry by name. This mirrors the training-shard columns
    (``bands``, ``wavelengths_um``, ``bandwidths_um``, ``polarizations``).
    """
    n = _common_length(names, wavelengths_um, bandwidths_um, polarizations)
    out: list[BandSpec] = []
    for i in range(n):
        name = names[i] if names is not None else f"band{i}"
        pol = polarizations[i] if polarizations is not None else ""
        wl = wavelengths_um[i] if wavelengths_um is not None else math.nan
        bw = bandwidths_um[i] if bandwidths_um is not None else math.nan
        if pol:
            known = BAND_REGISTRY.get(_ALIASES.get(name, name))
            if known is not None and known.kind == "sar" and known.polarization == pol.upper():
                out.append(known)
            else:
                out.append(sar_band(pol, sensor=sensor, name=name))
        elif wl is not None and math.isfinite(wl):
            known = BAND_REGISTRY.get(_ALIASES.get(name, name))
            if known is not None and known.kind == "optical" and abs((known.wavelength_um or 0.0) - wl) < 1e-3:
                out.append(known)
            else:
                out.append(optical_band(name, wl, bw, sensor=sensor))
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
