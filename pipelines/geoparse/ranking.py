"""Ranking candidate places, one document at a time, with the features that are known to matter.

Every candidate of every toponym gets a feature vector (:data:`FEATURES`):

- prominence: population (log scale, absolute and relative to the most populous candidate of the same name);
- feature class: country, first/second-order division, continent, capital;
- name match: the place's primary name, or only an alternate one -- penalised further when another candidate
  carries the name as its primary name (``"Philadelphia"`` is an old name of Amman, ``"Paris"`` of a few towns);
  such a shadowed capital does not get the capital feature either (it would outweigh the penalty when the text
  names no other place);
- the document's own point, when it has one (proximity);
- the other toponyms of the same text, read jointly (:func:`resolve_document`): a country or division written right
  after the name (``"Paris, Texas"``), the countries and divisions (ADM1, ADM2) the other names may stand for
  (``"Lima ... Allen County, Ohio"``), and how close the candidate lies to the places the other names may stand
  for -- both the expected closeness under the current beliefs about those names and whether *any* reading of
  them lies nearby (``"Paris ... Henry County"``: a Paris and a Henry County 20 km apart support each other).

The score of a candidate is a logistic function of a weighted sum of its features: the probability that it lies
within 161 km of the place meant. The weights (:data:`WEIGHTS`) are fitted with
:func:`georeset.pipelines.geoparse.calibrate.fit_weights` (see that module for the data and the check).

Joint resolution is a few rounds of mean-field updates: each name starts with a belief over its candidates from
its own features (a softmax of the scores); each round recomputes every candidate's context features from the other
names' beliefs and updates the beliefs. Candidates of a name are cut to the :data:`CONTEXT_TOP` most likely ones
when they serve as context for the others (cost stays linear in the number of candidates).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from georeset.pipelines.geoparse import ranker
from georeset.pipelines.geoparse.candidates import Candidate

__all__ = ["DOC_FEATURES", "FEATURES", "LEVEL", "RANKER_FEATURES", "WEIGHTS", "DocContext", "Ranked",
           "candidate_features", "contains", "haversine_km", "haversine_matrix", "rank", "resolve_document",
           "set_weights"]

FEATURES = ("bias", "pop", "pop_rel", "pcli", "adm1", "adm2", "cont", "pplc", "primary", "shadowed", "container",
            "in_admin", "in_country", "co_near", "co_any", "alone", "near_point", "n_cands")
# Document-level features computed after the joint rounds (:func:`doc_features`), read by the learned ranker
# (:mod:`georeset.pipelines.geoparse.ranker`) next to :data:`FEATURES`; the linear mean-field does not use them.
DOC_FEATURES = ("z_lin", "z_margin", "pop_rank", "vote_admin", "vote_country", "any_admin", "any_country",
                "centroid", "n_names", "seat")
RANKER_FEATURES = FEATURES + DOC_FEATURES
# The priors (an earlier fit) from which scripts/fit_geoparser.py starts; the shipped, refitted values are loaded
# from weights.json below. Kept as priors, not fitted: ``near_point`` (no corpus at hand has document points) and
# ``container`` (fitted to ~0 because collinear with ``in_admin`` on the training data, which left "Paris, Texas"
# in France; a comma pattern is reliable in news).
WEIGHTS: dict[str, float] = {
    "bias": -5.482, "pop": 5.088, "pop_rel": -0.834, "pcli": 2.238, "adm1": 1.785, "adm2": -0.373, "cont": 1.057,
    "pplc": 2.29, "primary": -0.193, "shadowed": -0.889, "container": 2.0, "in_admin": 1.513,
    "in_country": 0.882, "co_near": 9.795, "co_any": 4.543, "alone": 2.481, "near_point": 6.0, "n_cands": -4.147,
}


def _shipped_ranking() -> dict[str, float]:
    from georeset.pipelines.geoparse.commit import load_shipped

    return dict(load_shipped().get("ranking", {}))


NEAR_SCALE_KM = 100.0  # the document's own point
SPREAD_SCALE_KM = 300.0  # expected closeness to the other names' places
ANY_SCALE_KM = 50.0  # some reading of another name right next to the candidate
ADM2_RADIUS_KM = 120.0  # a second-order division (no admin2 codes in the gazetteer) contains what lies this close
CONTEXT_TOP = 25
ROUNDS = 3
_IDX = {name: i for i, name in enumerate(FEATURES)}
_CONTEXT = [_IDX[k] for k in ("in_admin", "in_country", "co_near", "co_any")]
LEVEL = {"ADM2": 1, "ADM1": 2, "PCLI": 3, "CONT": 4}
# A town and a county of the text that lie together are read together (:mod:`georeset.pipelines.geoparse.pairs`).
TOWN_COUNTY_PAIRS = True


@dataclass
class DocContext:
    """What the ranker knows about the document: its own point, the countries / (country, admin1) it names for
    sure, and where its toponyms were resolved (used by :func:`rank` alone; :func:`resolve_document` fills them)."""

    lon: float | None = None
    lat: float | None = None
    countries: set[str] = field(default_factory=set)
    admin1: set[tuple[str, str]] = field(default_factory=set)
    resolved: list[tuple[str, float, float]] = field(default_factory=list)  # (name key, lon, lat)


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    score: float
    reason: str
    n_candidates: int


def haversine_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


def haversine_matrix(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat1)[:, None], np.radians(lat2)[None, :]
    dl = np.radians(lon2)[None, :] - np.radians(lon1)[:, None]
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def contains(area: Candidate, c: Candidate) -> bool:
    """Whether the area candidate (country / division) contains candidate ``c`` (by codes; an ADM2 by its
    admin1 code only, the gazetteer has no admin2 codes)."""
    if area.place_id == c.place_id or not area.country_code or area.country_code != c.country_code:
        return False
    if area.feature_code == "PCLI":
        return True
    if area.feature_code in ("ADM1", "ADM2"):
        return bool(area.admin1_code) and area.admin1_code == c.admin1_code and c.feature_code != "ADM1"
    return False


def candidate_features(cands: Sequence[Candidate], ctx: DocContext, *, mention: str = "",
                       containers: Sequence[Candidate] = (), **_: object) -> np.ndarray:
    """Feature matrix (len(cands) x len(FEATURES)) for the candidates of one toponym, with the context that
    ``ctx`` holds for sure (countries and divisions named, places resolved); :func:`resolve_document` overwrites
    the context columns with its joint estimates. ``mention`` is the toponym's name key: other mentions of the
    same name are not context for it."""
    n = len(cands)
    f = np.zeros((n, len(FEATURES)))
    if not n:
        return f
    pops = np.array([math.log10(max(0, c.population) + 1) / 7.0 for c in cands])
    f[:, _IDX["bias"]] = 1.0
    f[:, _IDX["pop"]] = np.minimum(pops, 1.2)
    f[:, _IDX["pop_rel"]] = pops - pops.max()
    f[:, _IDX["n_cands"]] = math.log10(n) / 2
    codes = [c.feature_code for c in cands]
    for name, code in (("pcli", "PCLI"), ("adm1", "ADM1"), ("adm2", "ADM2"), ("cont", "CONT"), ("pplc", "PPLC")):
        f[:, _IDX[name]] = [x == code for x in codes]
    primary = np.array([c.is_primary for c in cands], dtype=float)
    f[:, _IDX["primary"]] = primary
    if primary.any():
        f[:, _IDX["shadowed"]] = 1.0 - primary
        # A capital matched only by an old or foreign name ("Philadelphia" for Amman) is not the capital the
        # text names when another place carries that name as its own: its capital status says nothing then.
        f[:, _IDX["pplc"]] *= primary
    lons = np.array([c.lon for c in cands], dtype=float)
    lats = np.array([c.lat for c in cands], dtype=float)
    if ctx.lon is not None and ctx.lat is not None:
        d = haversine_matrix(lons, lats, np.array([ctx.lon]), np.array([ctx.lat]))[:, 0]
        f[:, _IDX["near_point"]] = np.exp(-d / NEAR_SCALE_KM)
    others = [(lo, la) for k, lo, la in ctx.resolved if k != mention]
    if others:
        d = haversine_matrix(lons, lats, np.array([o[0] for o in others]), np.array([o[1] for o in others]))
        f[:, _IDX["co_near"]] = np.exp(-d / SPREAD_SCALE_KM).mean(axis=1)
        f[:, _IDX["co_any"]] = np.exp(-d / ANY_SCALE_KM).max(axis=1)
    else:
        f[:, _IDX["alone"]] = 1.0
    for i, c in enumerate(cands):
        if containers and any(contains(a, c) or contains(c, a) for a in containers):
            f[i, _IDX["container"]] = 1.0
        cc = c.country_code
        if cc and c.feature_code != "PCLI":
            f[i, _IDX["in_country"]] = cc in ctx.countries
            f[i, _IDX["in_admin"]] = (c.feature_code != "ADM1" and (cc, c.admin1_code) in ctx.admin1)
    return f


# The starting point of the fit (scripts/fit_geoparser.py) and the two priors it keeps.
PRIOR_WEIGHTS: dict[str, float] = dict(WEIGHTS)
PRIORS_KEPT = ("near_point", "container")
WEIGHTS.update({k: float(v) for k, v in _shipped_ranking().items() if k in WEIGHTS})
_W = np.array([WEIGHTS[k] for k in FEATURES])


def set_weights(weights: dict[str, float]) -> None:
    """Replace the ranking weights (e.g. with freshly fitted ones from :mod:`calibrate`)."""
    global _W
    WEIGHTS.update(weights)
    _W = np.array([WEIGHTS[k] for k in FEATURES])


def _why(c: Candidate, feats: np.ndarray) -> str:
    if feats[_IDX["near_point"]] > 0.6:
        return "near the document's point"
    if feats[_IDX["container"]]:
        return f"in the area written next to it ({c.country_code})"
    if feats[_IDX["in_admin"]] > 0.5:
        return f"in a division named in the text ({c.country_code} {c.admin1_code})"
    if feats[_IDX["co_any"]] > 0.5 or feats[_IDX["co_near"]] > 0.5:
        return "close to the text's other places"
    if feats[_IDX["in_country"]] > 0.5:
        return f"in a country named in the text ({c.country_code})"
    return "most prominent (population, feature class)"


def _usable(candidates: Sequence[Candidate]) -> list[Candidate]:
    return [c for c in candidates if c.lon is not None and c.lat is not None]


def _best(usable: Sequence[Candidate], feats: np.ndarray, full: np.ndarray | None = None) -> Ranked:
    model = ranker.active()
    z = model.logit(full) if model is not None and full is not None and full.shape[1] > len(FEATURES) \
        else feats @ _W
    j = int(np.argmax(z))
    p = 1.0 / (1.0 + math.exp(-float(z[j])))
    c = usable[j]
    return Ranked(c, round(p, 4), f"{_why(c, feats[j])}; {len(usable)} candidate(s)", len(usable))


def rank(candidates: Sequence[Candidate], ctx: DocContext, containers: Sequence[Candidate] = (), *,
         mention: str = "") -> Ranked | None:
    """Best candidate with a calibrated score in [0, 1] and a short reason, or None when there is no candidate."""
    usable = _usable(candidates)
    if not usable:
        return None
    return _best(usable, candidate_features(usable, ctx, mention=mention, containers=containers))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def _coded(values: list[str | None], codes: dict[object, int]) -> np.ndarray:
    return np.array([codes.setdefault(v, len(codes)) for v in values], dtype=np.int64)


def _joint_context(names: list[str], cands: dict[str, list[Candidate]], feats: dict[str, np.ndarray],
                   rounds: int) -> None:
    """Mean-field updates of the context columns of ``feats`` (in place); see the module docstring."""
    m = len(names)
    ev = [(k, i, c) for k in names for i, c in enumerate(cands[k])]
    e_name = np.array([names.index(k) for k, _, _ in ev])
    e_lon = np.array([c.lon for _, _, c in ev], dtype=float)
    e_lat = np.array([c.lat for _, _, c in ev], dtype=float)
    reps: list[tuple[int, int]] = []  # (name index, candidate index) of the context representatives
    for j, k in enumerate(names):
        order = np.argsort(-(feats[k] @ _W), kind="stable")[:CONTEXT_TOP]
        reps.extend((j, int(i)) for i in order)
    r_name = np.array([j for j, _ in reps])
    rc = [cands[names[j]][i] for j, i in reps]
    r_lon = np.array([c.lon for c in rc], dtype=float)
    r_lat = np.array([c.lat for c in rc], dtype=float)
    d = haversine_matrix(e_lon, e_lat, r_lon, r_lat)
    wide = np.array([c.feature_code in ("PCLI", "CONT") for c in rc])  # no point to be near
    near = np.where(wide[None, :], 0.0, np.exp(-d / SPREAD_SCALE_KM))
    anyn = np.where(wide[None, :], 0.0, np.exp(-d / ANY_SCALE_KM))
    ecs = [c for _, _, c in ev]
    codes: dict[object, int] = {None: -1, "": -1}
    e_cc, r_cc = _coded([c.country_code for c in ecs], codes), _coded([a.country_code for a in rc], codes)
    e_a1 = _coded([f"{c.country_code}.{c.admin1_code}" if c.admin1_code else None for c in ecs], codes)
    r_a1 = _coded([f"{a.country_code}.{a.admin1_code}" if a.admin1_code else None for a in rc], codes)
    e_fc, r_fc = [np.array([c.feature_code or "" for c in x]) for x in (ecs, rc)]
    e_id, r_id = _coded([c.place_id for c in ecs], codes), _coded([a.place_id for a in rc], codes)
    same_cc = (e_cc[:, None] == r_cc[None, :]) & (e_cc[:, None] >= 0)
    country = (same_cc & (r_fc == "PCLI")[None, :] & (e_fc != "PCLI")[:, None]).astype(float)
    r_adm = (r_fc == "ADM1") | (r_fc == "ADM2")
    admin = ((e_a1[:, None] == r_a1[None, :]) & (e_a1[:, None] >= 0) & r_adm[None, :] & (e_fc != "ADM1")[:, None]
             & (e_id[:, None] != r_id[None, :])
             & ((r_fc == "ADM1")[None, :] | ((e_fc != "ADM2")[:, None] & (d <= ADM2_RADIUS_KM)))).astype(float)
    starts = np.flatnonzero(np.r_[True, r_name[1:] != r_name[:-1]])
    own = e_name[:, None] == np.arange(m)[None, :]
    any_by_name = np.maximum.reduceat(anyn, starts, axis=1)  # fixed: any reading of name j near the candidate
    any_by_name[own] = 0.0
    co_any = any_by_name.sum(axis=1) / (m - 1)
    offs = np.r_[0, np.cumsum([len(cands[k]) for k in names])]
    for _ in range(rounds):
        belief = np.zeros((len(reps), m))
        for j, k in enumerate(names):
            sel = r_name == j
            z = feats[k][[i for jj, i in reps if jj == j]] @ _W
            belief[sel, j] = _softmax(z)
        expected = near @ belief
        expected[own] = 0.0
        in_country = country @ belief
        in_admin = admin @ belief
        in_country[own] = 0.0
        in_admin[own] = 0.0
        ctx = np.stack([in_admin.max(axis=1), in_country.max(axis=1), expected.sum(axis=1) / (m - 1), co_any], 1)
        for j, k in enumerate(names):
            feats[k][:, _CONTEXT] = ctx[offs[j]:offs[j + 1]]


def _unit(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lo, la = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=1)


def doc_features(names: list[str], cands: dict[str, list[Candidate]], feats: dict[str, np.ndarray]) -> dict[
        str, np.ndarray]:
    """The :data:`DOC_FEATURES` of every candidate of every name (one matrix per name), from the linear scores
    after the joint rounds. All sums run over the other names, leaving the name's own contribution out, and cost
    is linear in the number of candidates:

    - ``z_lin``, ``z_margin``: the linear score, and its distance to the name's best one;
    - ``pop_rank``: rank by population among the namesakes (log2(1 + rank) / 4; 0 for the most populous);
    - ``vote_admin`` / ``vote_country``: the "home region" vote -- the share of the other names' belief mass that
      lies in the candidate's first-order division / country (whatever its feature class);
    - ``any_admin`` / ``any_country``: the share of the other names with *some* candidate there;
    - ``centroid``: closeness (exp(-d / 500 km)) to the belief-weighted centre of the other names' best points;
    - ``n_names``: log10 of the number of distinct names read with it; ``seat``: a capital or an administrative
      seat (GeoNames PPLC, PPLA*)."""
    m = len(names)
    z = {k: feats[k] @ _W for k in names}
    probs = {k: _softmax(v) for k, v in z.items()}
    codes: dict[object, int] = {None: -1, "": -1}
    cc = {k: _coded([c.country_code for c in cands[k]], codes) for k in names}
    a1 = {k: _coded([f"{c.country_code}.{c.admin1_code}" if c.admin1_code else None for c in cands[k]], codes)
          for k in names}
    size = len(codes)
    mass_a = {k: np.bincount(a1[k][a1[k] >= 0], probs[k][a1[k] >= 0], minlength=size) for k in names}
    mass_c = {k: np.bincount(cc[k][cc[k] >= 0], probs[k][cc[k] >= 0], minlength=size) for k in names}
    has_a = {k: np.bincount(np.unique(a1[k][a1[k] >= 0]), minlength=size) for k in names}
    has_c = {k: np.bincount(np.unique(cc[k][cc[k] >= 0]), minlength=size) for k in names}
    tot = [sum(d.values(), np.zeros(size)) for d in (mass_a, mass_c, has_a, has_c)]
    tops: dict[str, tuple[np.ndarray, float]] = {}
    for k in names:
        point = [i for i, c in enumerate(cands[k]) if c.feature_code not in ("PCLI", "CONT")]
        if point:
            j = max(point, key=lambda i: probs[k][i])
            c = cands[k][j]
            tops[k] = (_unit(np.array([c.lon], dtype=float), np.array([c.lat], dtype=float))[0], float(probs[k][j]))
    centre = sum((v * w for v, w in tops.values()), np.zeros(3))
    out: dict[str, np.ndarray] = {}
    for k in names:
        n = len(cands[k])
        f = np.zeros((n, len(DOC_FEATURES)))
        f[:, 0] = z[k]
        f[:, 1] = z[k] - z[k].max()
        pops = np.array([c.population for c in cands[k]])
        f[:, 2] = np.log2(1 + np.argsort(np.argsort(-pops, kind="stable"), kind="stable")) / 4
        if m > 1:
            ia, ic = a1[k], cc[k]
            for col, (t, own, idx) in enumerate(((tot[0], mass_a[k], ia), (tot[1], mass_c[k], ic),
                                                 (tot[2], has_a[k], ia), (tot[3], has_c[k], ic)), start=3):
                f[:, col] = np.where(idx >= 0, (t - own)[np.maximum(idx, 0)] / (m - 1), 0.0)
            own_c = tops[k][0] * tops[k][1] if k in tops else np.zeros(3)
            rest = centre - own_c
            if np.linalg.norm(rest) > 1e-9:
                u = _unit(np.array([c.lon for c in cands[k]], dtype=float),
                          np.array([c.lat for c in cands[k]], dtype=float))
                cos = np.clip(u @ (rest / np.linalg.norm(rest)), -1.0, 1.0)
                f[:, 7] = np.exp(-6371.0088 * np.arccos(cos) / 500.0)
        f[:, 8] = math.log10(m)
        f[:, 9] = [(c.feature_code or "") == "PPLC" or (c.feature_code or "").startswith("PPLA")
                   for c in cands[k]]
        out[k] = f
    return out


def resolve_document(cands: Sequence[Sequence[Candidate]], keys: Sequence[str], ctx: DocContext,
                     containers: dict[int, int] | None = None, *, rounds: int = ROUNDS,
                     collect: list[tuple[int, list[Candidate], np.ndarray]] | None = None,
                     appositions: Collection[int] = ()) -> list[Ranked | None]:
    """Resolve all toponyms of one document together.

    ``cands[i]``: candidates of mention i; ``keys[i]``: its name key (mentions of one name are resolved alike);
    ``containers``: mention i -> mention j when j is written right after i with a comma between (``"Paris,
    Texas"``) or as its area (``"X is a town in Y"``): each constrains the other; ``appositions``: the i of those
    written as an apposition (never read as a list of places). ``collect`` receives ``(mention
    index, candidates, feature matrix)`` of the last round (for fitting the weights). ``ctx`` gets the countries
    and divisions the text is sure to name (score >= 0.3) and the resolved points."""
    from georeset.pipelines.geoparse.fallback import fall_back_to_container, fall_back_to_focus

    containers = containers or {}
    partners: dict[int, list[int]] = {}
    for i, j in containers.items():
        partners.setdefault(i, []).append(j)
        partners.setdefault(j, []).append(i)
    usable = [_usable(c) for c in cands]
    by_name: dict[str, list[Candidate]] = {}
    areas: dict[str, list[Candidate]] = {}
    for i, (k, us) in enumerate(zip(keys, usable, strict=True)):
        if us:
            by_name.setdefault(k, us)
            areas.setdefault(k, []).extend(c for j in partners.get(i, []) for c in usable[j])
    names = list(by_name)
    base = DocContext(ctx.lon, ctx.lat)
    feats = {k: candidate_features(by_name[k], base, mention=k, containers=areas[k]) for k in names}
    if len(names) > 1:
        for k in names:
            feats[k][:, _IDX["alone"]] = 0.0
        _joint_context(names, by_name, feats, rounds)
    full: dict[str, np.ndarray] = feats
    if collect is not None or ranker.active() is not None:  # the document-level features cost only when read
        full = {k: np.hstack([feats[k], v]) for k, v in doc_features(names, by_name, feats).items()}
    best_by_name = {k: _best(by_name[k], feats[k], full[k]) for k in names}
    if TOWN_COUNTY_PAIRS and len(names) > 1:  # imported here: pairs imports this module
        from georeset.pipelines.geoparse.pairs import read_town_county_pairs

        best_by_name.update(read_town_county_pairs(by_name, best_by_name))
    best: list[Ranked | None] = [best_by_name.get(k) if us else None for k, us in zip(keys, usable, strict=True)]
    if collect is not None:
        collect.extend((i, by_name[k], full[k]) for i, (k, us) in enumerate(zip(keys, usable, strict=True)) if us)
    sure = [r.candidate for r in best_by_name.values() if r.score >= 0.3]
    ctx.countries = {c.country_code for c in sure if c.feature_code in ("PCLI", "ADM1", "ADM2") and c.country_code}
    ctx.admin1 = {(c.country_code, c.admin1_code) for c in sure
                  if c.feature_code in ("ADM1", "ADM2") and c.country_code and c.admin1_code}
    ctx.resolved = [(k, float(r.candidate.lon), float(r.candidate.lat))  # type: ignore[arg-type]
                    for k, r in best_by_name.items() if r.candidate.feature_code not in ("PCLI", "CONT")]
    return fall_back_to_focus(fall_back_to_container(best, usable, containers, appositions), keys, ctx)
