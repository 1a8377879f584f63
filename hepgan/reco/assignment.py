"""Hit assignment: network outputs -> candidate tracks (seed hits + the most probable hits).

Per seed whose ``score`` passes ``score_min``: the three seed hits, then on each crossed
surface (slot) the candidates whose ``hit_prob`` is at least ``hit_threshold``, the most
probable first, up to ``max_hits_per_slot``; candidates with fewer than ``min_hits`` hits are
dropped. The ambiguity resolver (:mod:`hepgan.reco.ambiguity`) then chooses among them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepgan.errors import InputError
from hepgan.reco.features import N_HELIX, N_SEED_HITS
from hepgan.reco.jit import kernel

__all__ = ["AssignmentConfig", "assign_hits"]


@dataclass(frozen=True)
class AssignmentConfig:
    """How network outputs become track candidates.

    Attributes:
        hit_threshold: a candidate hit joins the track when its ``hit_prob`` is at least this.
        max_hits_per_slot: hits taken per crossed surface (the most probable first); 2 admits
            the second module where modules of a layer overlap, as ACTS's CKF collects it
            (measured on tuning events, seed 3011, 20 x 50: hits per track 9.68 -> 10.95 against
            ACTS's 12.1, TrackML score 0.79 -> 0.87, ACTS tracks reproduced 74% -> 96%, fakes
            0.04% -> 0.02%, efficiency unchanged; 3 adds 0.5% more agreement but no physics: a
            helix crosses a layer's modules at most twice). 1 takes one hit per surface.
        score_min: seeds whose ``score`` is below this make no track.
        min_hits: candidates with fewer hits (seed hits included) are dropped (ACTS's
            ambiguity solver in ``hepgan.acts.chain`` keeps >= 7 measurements).
        preselect: thin the seeds before the network (`hepgan.reco.ambiguity.preselect_seeds`):
            duplicates of one particle's track shrink to about one, which divides the
            network's cost by the seeds per particle (~5 here).
        preselect_chi2: provisional hits of the preselection lie within this squared
            normalised residual (both axes).
        leftover_pt_min: the engine's leftover pass (``hepgan.reco.engine``): the chain once
            more over the hits no track took, its seeds' pT down to this (GeV); 0: one pass.
        drop_duplicate_seeds: drop the seeds that repeat an earlier one's track segment before
            the features (``hepgan.reco.seeding.drop_duplicate_seeds``), in both passes. On
            since the shipped model's error model was refitted on the tracks it makes (the fit
            on the full seed set made the z0 errors of low-pT central gun tracks 17% too wide).
        leftover_seeds_per_middle: the leftover pass keeps this many seeds per middle hit (the
            first pass: the model's ``max_seeds_per_middle``, 2). Why 3: seeded down to 0.3 GeV
            with the model's |d0| window, its seeds compete with the low-pT combinatorics, and
            the displaced particles the prompt first pass leaves to it lost their places (tuning
            seed 5201, pile-up 200: displaced pT > 0.5 GeV 738 of 856 with 2, 748 with 3, 752
            before the prompt pass), for no time measurable above the machine's noise.
        prompt_d0_max: with the leftover pass, the first pass seeds only |d0| below this (mm,
            the first layer's cut too; 0: the model's, 5 mm and 2.5 mm from the first layer),
            and the leftover pass with the model's cuts seeds the displaced particles, as
            iterative tracking's prompt and displaced iterations do. The d0 allowance was the
            largest part of the doublet windows; on tuning events it took a fifth to a third of
            the seeding time away for the same efficiency (``hepgan.reco.engine``).
        prompt_confirmed_eta_max: with the leftover pass, the first pass seeds only confirmed
            triplets at middle hits of |eta| below this (``SeedingConfig.confirmed_eta_max``; 0:
            all), and the leftover pass, with all triplets, the particles that have no confirmed
            one. Why: at pile-up 200 most of the first pass's seeds were unconfirmed fakes, each
            paying for its road, fit and network; on tuning events (seeds 5200 / 5201,
            ``benchmarks/results/ablation-confirmation.json``) the features stage took 12-23%
            less time, the engine 0.87-0.99x (per repeat), fakes 0.70% / 0.80% -> 0.62% /
            0.71%, the efficiency the same within 6 particles of 9000 at pT > 0.5 GeV (hard
            scatter and displaced the same), the guns' unchanged. Everywhere (|eta| up to 3) it
            lost 0.2% of the particles at pT > 1 GeV, at |eta| 1.6-2.1, where particles' only
            triplets were unconfirmed, for no more time saved; confirming the leftover pass's
            seeds as well (tried once) lost 0.1% at pT > 0.5 GeV.
    """

    hit_threshold: float = 0.5
    max_hits_per_slot: int = 2
    score_min: float = 0.5
    min_hits: int = 7
    preselect: bool = True
    preselect_chi2: float = 9.0
    leftover_pt_min: float = 0.3
    leftover_seeds_per_middle: int = 3
    drop_duplicate_seeds: bool = True
    prompt_d0_max: float = 1.0
    prompt_confirmed_eta_max: float = 1.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.hit_threshold <= 1.0 or not 0.0 <= self.score_min <= 1.0:
            msg = f"hit_threshold and score_min must be in [0, 1], got {self.hit_threshold}, {self.score_min}"
            raise InputError(msg)
        if not 0.0 <= self.leftover_pt_min <= 100.0:
            msg = f"leftover_pt_min must be 0 (one pass) or a pT in GeV, got {self.leftover_pt_min}"
            raise InputError(msg)
        if not 1 <= self.leftover_seeds_per_middle <= 64:
            msg = f"leftover_seeds_per_middle must be 1-64, got {self.leftover_seeds_per_middle}"
            raise InputError(msg)
        if not 0.0 <= self.prompt_confirmed_eta_max <= 10.0:
            msg = f"prompt_confirmed_eta_max must be 0 (all triplets) or an |eta| up to 10, got {self.prompt_confirmed_eta_max}"
            raise InputError(msg)
        if not 0.0 <= self.prompt_d0_max <= 1000.0:
            msg = f"prompt_d0_max must be 0 (the model's d0 cuts) or a |d0| in mm, got {self.prompt_d0_max}"
            raise InputError(msg)
        if self.max_hits_per_slot < 1 or self.min_hits < 3:
            msg = f"max_hits_per_slot must be >= 1 and min_hits >= 3, got {self.max_hits_per_slot}, {self.min_hits}"
            raise InputError(msg)


@kernel()
def _assign_kernel(seeds, cand, prob, feats, score, threshold, per_slot, score_min, min_hits, head, per_slot_cols):
    """Candidate tracks: (keep (n_kept,) seed indices, hits flat, nhits, chi2, ndf).

    chi2 sums the squared normalised residuals (columns res1, res2 of the features) of the
    assigned candidate hits; ndf = 2 per such hit. Seed hits add nothing: the seed helix, from
    which the residuals are measured, passes through them.
    """
    n, n_slots, n_cand = cand.shape
    max_len = 3 + n_slots * min(per_slot, n_cand)
    hits = np.empty(n * max_len, dtype=np.int64)
    nhits = np.empty(n, dtype=np.int64)
    chi2 = np.empty(n, dtype=np.float64)
    ndf = np.empty(n, dtype=np.int64)
    keep = np.empty(n, dtype=np.int64)
    taken = np.empty(n_cand, dtype=np.bool_)
    n_keep = 0
    pos = 0
    for i in range(n):
        if not score[i] >= score_min:  # also drops NaN scores
            continue
        start = pos
        hits[pos] = seeds[i, 0]
        hits[pos + 1] = seeds[i, 1]
        hits[pos + 2] = seeds[i, 2]
        pos += 3
        c2 = 0.0
        na = 0
        for s in range(n_slots):
            for k in range(n_cand):
                taken[k] = False
            for _ in range(per_slot):
                best = -1
                best_p = threshold
                for k in range(n_cand):
                    p = prob[i, s, k]
                    if cand[i, s, k] >= 0 and not taken[k] and p >= best_p and (best < 0 or p > prob[i, s, best]):
                        best = k
                        best_p = p
                if best < 0:
                    break
                taken[best] = True
                hits[pos] = cand[i, s, best]
                pos += 1
                col = head + s * per_slot_cols + 4 + 3 * best
                c2 += feats[i, col] ** 2 + feats[i, col + 1] ** 2
                na += 1
        if pos - start < min_hits:
            pos = start
            continue
        keep[n_keep] = i
        nhits[n_keep] = pos - start
        chi2[n_keep] = c2
        ndf[n_keep] = 2 * na
        n_keep += 1
    return keep[:n_keep], hits[:pos], nhits[:n_keep], chi2[:n_keep], ndf[:n_keep]


def assign_hits(
    seeds: np.ndarray,
    cand: np.ndarray,
    hit_prob: np.ndarray,
    feats: np.ndarray,
    score: np.ndarray,
    *,
    config: AssignmentConfig,
    n_candidates: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate tracks of one event's seeds.

    Args:
        seeds: (n, 3) hit indices; cand: (n, L, K) candidate hit indices (-1: none).
        hit_prob: (n, L, K) and score: (n,) network outputs; feats: (n, F) float32 features
            (the residual columns give the chi^2).
        config: the cuts; n_candidates: K of the feature config (the features' slot width).

    Returns:
        ``(keep, hits, nhits, chi2, ndf)``: (n_kept,) indices of the seeds that made a
        candidate, their hits concatenated (int64 hit indices, seed hits first), and per
        candidate its hit count, chi^2 and ndf (2 per assigned non-seed hit).
    """
    return _assign_kernel(
        np.ascontiguousarray(seeds, dtype=np.int64),
        cand,
        np.ascontiguousarray(hit_prob, dtype=np.float32),
        feats,
        np.ascontiguousarray(score, dtype=np.float32),
        float(config.hit_threshold),
        int(config.max_hits_per_slot),
        float(config.score_min),
        int(config.min_hits),
        N_HELIX + N_SEED_HITS,
        4 + 3 * n_candidates,
    )
