"""Tracking performance: matching, efficiency, fake and duplicate rates with intervals, the
TrackML score, truth perigee parameters, residuals, resolutions and pulls, agreement with the
classic tracks, and the ROC AUC (docs/metrics.md).

One package used by the tests, the benchmarks and the reports; pure numpy plus small numba
kernels, no I/O. Inputs are awkward arrays (or mappings of arrays) in the file layout of
`hepgan.io.schema`, one entry per event, with flat branch names as uproot reads them:

- ``hits``: ``hit_particle_id`` (var * int64, 0 = noise); for the TrackML score also the hit
  positions ``hit_tz`` (true) or ``hit_z`` (measured), mm.
- ``particles``: ``particle_id`` (var * int64), ``particle_q`` (e), ``particle_px/py/pz``
  (GeV), ``particle_vx/vy/vz`` (mm), ``particle_primary`` (bool); optionally
  ``particle_hard_scatter`` and ``particle_vertex_secondary`` for the efficiency categories.
- ``tracks``: ``track_d0, track_z0, track_phi, track_theta, track_qop`` (mm, mm, rad, rad,
  e/GeV) and ``track_err_*``; ``track_nhits`` (var * int32) and ``track_hit_index``
  (var * int32: the event's hit indices of all its tracks, concatenated in track order).

Modules, each with the conventions it decides: `matching` (ACTS double matching),
`efficiency` (denominator, categories, binned, paired counts), `intervals` (Clopper-Pearson,
McNemar), `trackml` (trackml-library's score and hepgan's variant), `resolution` (perigee,
residuals, core widths), `agreement` (with the classic tracks), `auc`, `summary`.

>>> from hepgan.perf import metrics as m
>>> round(float(m.clopper_pearson(10, 10)[0]), 4)
0.8319
"""

from __future__ import annotations

from hepgan.perf.metrics._common import histogram_dict
from hepgan.perf.metrics.agreement import AGREEMENT_FRACTION, agreement
from hepgan.perf.metrics.auc import auc
from hepgan.perf.metrics.efficiency import (
    CATEGORIES,
    DEFAULT_ETA_BINS,
    DEFAULT_PT_BINS,
    BinnedEfficiency,
    Efficiency,
    available_categories,
    binned_efficiency,
    efficiency,
    efficiency_denominator,
    efficiency_vs_eta,
    efficiency_vs_pt,
    paired_counts,
    particle_kinematics,
)
from hepgan.perf.metrics.intervals import ONE_SIGMA_CL, clopper_pearson, mcnemar_p_value, rate_with_interval
from hepgan.perf.metrics.matching import MatchResult, duplicate_rate, fake_rate, match_tracks
from hepgan.perf.metrics.resolution import (
    C_GEV_PER_T_MM,
    PERIGEE_PARAMETERS,
    Residuals,
    core_width,
    perigee_from_vertex,
    resolution_summary,
    track_residuals,
    truth_perigee,
    wrap_phi,
)
from hepgan.perf.metrics.summary import summarize
from hepgan.perf.metrics.trackml import (
    TRACKML_ORDER_MATRIX,
    hepgan_trackml_event_scores,
    hepgan_trackml_hit_weights,
    hepgan_trackml_score,
    trackml_event_scores,
    trackml_hit_weights,
    trackml_order_weight,
    trackml_pt_weight,
    trackml_score,
)

__all__ = [
    "AGREEMENT_FRACTION",
    "CATEGORIES",
    "C_GEV_PER_T_MM",
    "DEFAULT_ETA_BINS",
    "DEFAULT_PT_BINS",
    "ONE_SIGMA_CL",
    "PERIGEE_PARAMETERS",
    "TRACKML_ORDER_MATRIX",
    "BinnedEfficiency",
    "Efficiency",
    "MatchResult",
    "Residuals",
    "agreement",
    "auc",
    "available_categories",
    "binned_efficiency",
    "clopper_pearson",
    "core_width",
    "duplicate_rate",
    "efficiency",
    "efficiency_denominator",
    "efficiency_vs_eta",
    "efficiency_vs_pt",
    "fake_rate",
    "histogram_dict",
    "hepgan_trackml_event_scores",
    "hepgan_trackml_hit_weights",
    "hepgan_trackml_score",
    "match_tracks",
    "mcnemar_p_value",
    "paired_counts",
    "particle_kinematics",
    "perigee_from_vertex",
    "rate_with_interval",
    "resolution_summary",
    "summarize",
    "track_residuals",
    "trackml_event_scores",
    "trackml_hit_weights",
    "trackml_order_weight",
    "trackml_pt_weight",
    "trackml_score",
    "truth_perigee",
    "wrap_phi",
]
