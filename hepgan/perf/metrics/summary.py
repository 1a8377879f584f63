"""The headline figures of one track collection against truth, as one JSON-ready dict."""

from __future__ import annotations

import awkward as ak

from hepgan.perf.metrics._common import json_float
from hepgan.perf.metrics.efficiency import available_categories, efficiency, efficiency_denominator
from hepgan.perf.metrics.intervals import ONE_SIGMA_CL, rate_with_interval
from hepgan.perf.metrics.matching import duplicate_rate, fake_rate, match_tracks
from hepgan.perf.metrics.resolution import resolution_summary, track_residuals
from hepgan.perf.metrics.trackml import hepgan_trackml_score, trackml_score

__all__ = ["summarize"]


def summarize(
    hits,
    particles,
    tracks,
    *,
    pt_min: float = 1.0,
    eta_max: float = 2.5,
    min_hits: int = 7,
    bfield: float = 2.0,
    position: str = "auto",
    cl: float = ONE_SIGMA_CL,
) -> dict:
    """Headline figures as a plain JSON-serialisable dict (NaN written as None).

    Keys: n_events, n_tracks, n_particles, n_particles_denominator, n_particles_matched,
    pt_min, eta_max, efficiency, efficiency_error (binomial), efficiency_interval
    (`rate_with_interval`: Clopper-Pearson at `cl`), efficiency_pt_0.5, efficiency_pt_1.0
    (denominator with pT > 0.5 and > 1 GeV), efficiency_categories ({category: interval dict}
    for the categories the particles support, `available_categories`), fake_rate (fakes / all
    tracks), duplicate_rate (duplicates / all tracks) and their ``*_interval``, n_fakes,
    n_duplicates, trackml_score (trackml-library's definition), trackml_score_hepgan (hepgan's
    variant), resolutions (`resolution_summary` of the good tracks of the denominator particles
    with pT > pt_min).
    """
    match = match_tracks(hits, particles, tracks)
    cuts = {"pt_min": pt_min, "eta_max": eta_max, "min_hits": min_hits}
    eff = efficiency(match, particles, **cuts, cl=cl)
    den = efficiency_denominator(particles, match, **cuts)
    res = track_residuals(tracks, particles, match, bfield=bfield, particle_mask=den)
    n_tracks = match.n_tracks
    n_fakes = int(ak.sum(match.track_is_fake))
    n_dups = int(ak.sum(match.track_is_duplicate))
    out = {
        "n_events": match.n_events,
        "n_tracks": n_tracks,
        "n_particles": int(ak.sum(ak.num(match.particle_n_matched, axis=1))),
        "n_particles_denominator": eff.n_total,
        "n_particles_matched": eff.n_matched,
        "pt_min": float(pt_min),
        "eta_max": float(eta_max),
        "efficiency": json_float(eff.efficiency),
        "efficiency_error": json_float(eff.error),
        "efficiency_interval": rate_with_interval(eff.n_matched, eff.n_total, cl=cl),
    }
    for cut in (0.5, 1.0):
        e = efficiency(match, particles, pt_min=cut, eta_max=eta_max, min_hits=min_hits)
        out[f"efficiency_pt_{cut}"] = json_float(e.efficiency)
    categories = {}
    for category in available_categories(particles):
        e = efficiency(match, particles, **cuts, category=category, cl=cl)
        categories[category] = rate_with_interval(e.n_matched, e.n_total, cl=cl)
    out.update(
        {
            "efficiency_categories": categories,
            "fake_rate": json_float(fake_rate(match)),
            "fake_rate_interval": rate_with_interval(n_fakes, n_tracks, cl=cl),
            "duplicate_rate": json_float(duplicate_rate(match)),
            "duplicate_rate_interval": rate_with_interval(n_dups, n_tracks, cl=cl),
            "n_fakes": n_fakes,
            "n_duplicates": n_dups,
            "trackml_score": json_float(trackml_score(hits, particles, tracks, position=position)),
            "trackml_score_hepgan": json_float(
                hepgan_trackml_score(hits, particles, tracks, match=match, position=position)
            ),
            "resolutions": resolution_summary(res),
        }
    )
    return out
