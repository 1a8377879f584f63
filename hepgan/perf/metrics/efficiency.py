"""Tracking efficiency: the denominator, its categories, intervals, binned efficiencies and
paired counts of two track collections on the same particles.

The denominator (docs/metrics.md) is primary (``particle_primary``: generator-level, not a
Fatras secondary), charged, with at least 7 hits in the event, ``|eta| < 2.5`` and ``pT >
pt_min`` (1 and 0.5 GeV are quoted). Categories narrow it where the particles tree says more:

- ``hard_scatter``: ``particle_hard_scatter != 0`` (from the hard-scatter collision, not pile-up);
- ``displaced``: ``particle_vertex_secondary > 0`` (made at a displaced decay vertex: b, c, tau
  and V0 decay products); ``prompt``: ``particle_vertex_secondary == 0``.

Files without those branches (older files, imports) have no such categories (a gun's
'hard scatter' is its first vertex).
:func:`available_categories` says which ones a particles array supports.
Rates carry Clopper-Pearson intervals (:mod:`hepgan.perf.metrics.intervals`).
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from hepgan.errors import InputError
from hepgan.perf.metrics._common import has_field, jagged, json_float, unflatten
from hepgan.perf.metrics.intervals import ONE_SIGMA_CL, clopper_pearson, mcnemar_p_value
from hepgan.perf.metrics.matching import MatchResult

__all__ = [
    "CATEGORIES",
    "DEFAULT_ETA_BINS",
    "DEFAULT_PT_BINS",
    "BinnedEfficiency",
    "Efficiency",
    "available_categories",
    "binned_efficiency",
    "efficiency",
    "efficiency_denominator",
    "efficiency_vs_eta",
    "efficiency_vs_pt",
    "paired_counts",
    "particle_kinematics",
]

DEFAULT_PT_BINS = np.array([0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 7.0, 10.0, 20.0, 100.0])
DEFAULT_ETA_BINS = np.linspace(-2.5, 2.5, 21)

#: Efficiency categories: name -> (particles branch, test on its values). "all" needs none.
CATEGORIES: dict[str, tuple[str, str] | None] = {
    "all": None,
    "hard_scatter": ("particle_hard_scatter", "!= 0"),
    "prompt": ("particle_vertex_secondary", "== 0"),
    "displaced": ("particle_vertex_secondary", "> 0"),
}


def available_categories(particles) -> list[str]:
    """The categories of :data:`CATEGORIES` whose branch `particles` holds, in that order."""
    return [c for c, need in CATEGORIES.items() if need is None or has_field(particles, need[0], "particles")]


def _category_mask(particles, category: str) -> np.ndarray | None:
    if category not in CATEGORIES:
        msg = f"efficiency category {category!r} is unknown; expected one of {sorted(CATEGORIES)}"
        raise InputError(msg)
    need = CATEGORIES[category]
    if need is None:
        return None
    branch, test = need
    if not has_field(particles, branch, "particles"):
        msg = f"efficiency category {category!r} needs the particles branch {branch!r}, which this file lacks"
        raise InputError(msg)
    values, _ = jagged(particles, branch, "particles", np.int64)
    return {"!= 0": values != 0, "== 0": values == 0, "> 0": values > 0}[test]


def particle_kinematics(particles) -> tuple[ak.Array, ak.Array]:
    """(pT [GeV], eta) of each particle, var * float64 each. eta = +-inf when pT = 0."""
    px, c = jagged(particles, "particle_px", "particles", np.float64)
    py, _ = jagged(particles, "particle_py", "particles", np.float64)
    pz, _ = jagged(particles, "particle_pz", "particles", np.float64)
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1.0)), np.copysign(np.inf, pz))
    return unflatten(pt, c), unflatten(eta, c)


def efficiency_denominator(
    particles,
    match: MatchResult,
    *,
    pt_min: float | None = 1.0,
    eta_max: float | None = 2.5,
    min_hits: int = 7,
    category: str = "all",
) -> ak.Array:
    """Particles in the efficiency denominator, var * bool.

    Primary (``particle_primary``), charged (``particle_q != 0``), at least `min_hits` hits in
    the event (counted from ``hit_particle_id``, `MatchResult.particle_nhits`), ``|eta| <
    eta_max`` and ``pT > pt_min`` [GeV]; a cut given as None is not applied. `category` (module
    docstring) narrows it further; InputError when the particles lack its branch.
    """
    primary, c = jagged(particles, "particle_primary", "particles", np.bool_)
    q, _ = jagged(particles, "particle_q", "particles", np.int64)
    nh = np.asarray(ak.flatten(match.particle_nhits), dtype=np.int64)
    if len(nh) != len(q):
        msg = f"match was computed on other particles: {len(nh)} particles there, {len(q)} here"
        raise InputError(msg)
    pt, eta = (np.asarray(ak.flatten(a), dtype=np.float64) for a in particle_kinematics(particles))
    sel = primary & (q != 0) & (nh >= min_hits)
    if eta_max is not None:
        sel &= np.abs(eta) < eta_max
    if pt_min is not None:
        sel &= pt > pt_min
    cat = _category_mask(particles, category)
    if cat is not None:
        sel &= cat
    return unflatten(sel, c)


@dataclass(frozen=True)
class Efficiency:
    """Efficiency = n_matched / n_total, its binomial error sqrt(e (1 - e) / n_total) and its
    Clopper-Pearson interval [lower, upper] at confidence `cl`.

    NaN efficiency, error and bounds when n_total = 0.
    """

    efficiency: float
    error: float
    n_matched: int
    n_total: int
    lower: float = float("nan")
    upper: float = float("nan")
    cl: float = ONE_SIGMA_CL

    def as_dict(self) -> dict:
        return {
            "efficiency": json_float(self.efficiency),
            "error": json_float(self.error),
            "lower": json_float(self.lower),
            "upper": json_float(self.upper),
            "cl": self.cl,
            "n_matched": self.n_matched,
            "n_total": self.n_total,
        }


def _binomial(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(n > 0, k / n, np.nan)
        err = np.where(n > 0, np.sqrt(eff * (1.0 - eff) / n), np.nan)
    return eff, err


def efficiency(
    match: MatchResult,
    particles,
    *,
    pt_min: float | None = 1.0,
    eta_max: float | None = 2.5,
    min_hits: int = 7,
    category: str = "all",
    cl: float = ONE_SIGMA_CL,
) -> Efficiency:
    """Fraction of the denominator particles (`efficiency_denominator`) with a matching track,
    with its Clopper-Pearson interval at confidence `cl`."""
    den = np.asarray(
        ak.flatten(
            efficiency_denominator(
                particles, match, pt_min=pt_min, eta_max=eta_max, min_hits=min_hits, category=category
            )
        )
    )
    found = np.asarray(ak.flatten(match.particle_n_matched)) > 0
    n = int(den.sum())
    k = int((den & found).sum())
    e, err = _binomial(np.array(k), np.array(n))
    lo, hi = clopper_pearson(k, n, cl=cl)
    return Efficiency(float(e), float(err), k, n, float(lo), float(hi), cl)


@dataclass(frozen=True)
class BinnedEfficiency:
    """Efficiency in bins: edges (n_bins + 1,), and per bin (n_bins,) n_total, n_matched
    (int64), efficiency, binomial error and the Clopper-Pearson bounds at 68.27% (float64, NaN
    in empty bins)."""

    edges: np.ndarray
    n_total: np.ndarray
    n_matched: np.ndarray
    efficiency: np.ndarray
    error: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def as_dict(self) -> dict:
        return {
            "edges": [float(x) for x in self.edges],
            "n_total": [int(x) for x in self.n_total],
            "n_matched": [int(x) for x in self.n_matched],
            "efficiency": [json_float(x) for x in self.efficiency],
            "error": [json_float(x) for x in self.error],
            "lower": [json_float(x) for x in self.lower],
            "upper": [json_float(x) for x in self.upper],
        }


def binned_efficiency(values, passed, bins) -> BinnedEfficiency:
    """Efficiency of `passed` (n,) bool in bins of `values` (n,) float; `bins` are increasing
    edges (as np.histogram: the last bin includes its upper edge, values outside are dropped)."""
    values = np.asarray(values, dtype=np.float64)
    passed = np.asarray(passed, dtype=np.bool_)
    edges = np.asarray(bins, dtype=np.float64)
    if values.shape != passed.shape or values.ndim != 1:
        msg = f"values and passed must be 1-d of the same length; got {values.shape} and {passed.shape}"
        raise InputError(msg)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        msg = f"bins must be at least 2 increasing edges; got {edges!r}"
        raise InputError(msg)
    n_total, _ = np.histogram(values, bins=edges)
    n_pass, _ = np.histogram(values[passed], bins=edges)
    eff, err = _binomial(n_pass, n_total)
    lo, hi = clopper_pearson(n_pass, n_total)
    return BinnedEfficiency(edges, n_total.astype(np.int64), n_pass.astype(np.int64), eff, err, lo, hi)


def efficiency_vs_pt(
    match: MatchResult, particles, *, bins=DEFAULT_PT_BINS, eta_max: float | None = 2.5, min_hits: int = 7,
    category: str = "all",
) -> BinnedEfficiency:
    """Efficiency in bins of particle pT [GeV]: the denominator cuts except pT (bins set it)."""
    return _efficiency_vs(match, particles, 0, bins, pt_min=None, eta_max=eta_max, min_hits=min_hits, category=category)


def efficiency_vs_eta(
    match: MatchResult, particles, *, bins=DEFAULT_ETA_BINS, pt_min: float | None = 1.0, min_hits: int = 7,
    category: str = "all",
) -> BinnedEfficiency:
    """Efficiency in bins of particle eta: the denominator cuts except eta (bins set it)."""
    return _efficiency_vs(match, particles, 1, bins, pt_min=pt_min, eta_max=None, min_hits=min_hits, category=category)


def _efficiency_vs(match, particles, which, bins, **cuts) -> BinnedEfficiency:
    den = np.asarray(ak.flatten(efficiency_denominator(particles, match, **cuts)))
    var = np.asarray(ak.flatten(particle_kinematics(particles)[which]), dtype=np.float64)
    found = np.asarray(ak.flatten(match.particle_n_matched)) > 0
    return binned_efficiency(var[den], found[den], bins)



def paired_counts(
    match_a: MatchResult,
    match_b: MatchResult,
    particles,
    *,
    pt_min: float | None = 1.0,
    eta_max: float | None = 2.5,
    min_hits: int = 7,
    category: str = "all",
) -> dict:
    """Which of the denominator particles two track collections on the same events find.

    Returns {'n_total', 'both', 'only_a', 'only_b', 'neither', 'mcnemar_p_value'}: counts of
    the denominator particles (`efficiency_denominator` of `match_a`; both matches must be
    of the same hits and particles) and the exact McNemar p-value of the discordant counts
    (small: the two efficiencies differ by more than chance on these particles).
    """
    nh_a = np.asarray(ak.flatten(match_a.particle_nhits), dtype=np.int64)
    nh_b = np.asarray(ak.flatten(match_b.particle_nhits), dtype=np.int64)
    if len(nh_a) != len(nh_b) or np.any(nh_a != nh_b):
        msg = "paired counts need two matches of the same hits and particles; their particles differ"
        raise InputError(msg)
    cuts = {"pt_min": pt_min, "eta_max": eta_max, "min_hits": min_hits, "category": category}
    den = np.asarray(ak.flatten(efficiency_denominator(particles, match_a, **cuts)), dtype=np.bool_)
    a = np.asarray(ak.flatten(match_a.particle_n_matched))[den] > 0
    b = np.asarray(ak.flatten(match_b.particle_n_matched))[den] > 0
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    return {
        "n_total": int(den.sum()),
        "both": int((a & b).sum()),
        "only_a": only_a,
        "only_b": only_b,
        "neither": int((~a & ~b).sum()),
        "mcnemar_p_value": mcnemar_p_value(only_a, only_b),
    }
