"""The second hit where modules of a seed layer overlap.

Why: the seed's three hits take one hit on each of their layers, and the network's slots start
on the surfaces after the seed, so a particle crossing two overlapping modules of a seed layer
left its second hit behind (ACTS's CKF collects both): on tuning events (seed 3011, 20 x 50) those
were two thirds of the hits the surrogate missed against ACTS.

How: for each seed hit of a chosen track, the unused hits of the same layer within a few
millimetres are compared with the track's straight-line tangent at that hit (over the few
millimetres between overlapping modules the helix's sagitta is below 0.02 mm even at 0.5 GeV):
the distance off that line, split into its transverse and z parts, must be within the windows.
Measured on the same tuning events (3360 true partners, 185910 other hits of the layers): 0.1 mm
and 0.5 mm keep 99.8% of the partners and admit 4 other hits. A hit already on another track
is never taken, so no hit becomes shared here.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from hepgan.reco.helix import perigee_to_circle

__all__ = ["add_overlap_hits"]

#: transverse and z windows (mm) on the distance off the track's tangent line
WINDOW_T = 0.1
WINDOW_Z = 0.5
#: how far (mm, in the transverse plane) from the seed hit an overlapping module's hit can lie
_REACH = 12.0


@numba.njit(cache=True)
def _best_partner(i, x, y, z, order, phi_sorted, lo, hi, used, ux, uy, uz):
    """The unused hit of the layer block [lo, hi) (sorted by phi) nearest the tangent line
    through hit i, within the windows; -1 when none."""
    r = math.hypot(x[i], y[i])
    dphi = _REACH / max(r, 1.0)
    phi_i = math.atan2(y[i], x[i])
    best, best_d = -1, 1.0
    for wrap in (-2.0 * math.pi, 0.0, 2.0 * math.pi):
        a = np.searchsorted(phi_sorted[lo:hi], phi_i + wrap - dphi) + lo
        b = np.searchsorted(phi_sorted[lo:hi], phi_i + wrap + dphi) + lo
        for q in range(a, b):
            j = order[q]
            if j == i or used[j]:
                continue
            dx, dy, dz = x[j] - x[i], y[j] - y[i], z[j] - z[i]
            along = dx * ux + dy * uy + dz * uz
            wx, wy, wz = dx - along * ux, dy - along * uy, dz - along * uz
            d = (wx * wx + wy * wy) / (WINDOW_T * WINDOW_T) + wz * wz / (WINDOW_Z * WINDOW_Z)
            if math.hypot(wx, wy) < WINDOW_T and abs(wz) < WINDOW_Z and d < best_d:
                best, best_d = j, d
    return best


@numba.njit(cache=True)
def _overlap_kernel(x, y, z, order, phi_sorted, block_lo, block_hi, layer, flat, nhits, d0, phi, theta, qop,
                    bfield, n_seed):  # fmt: skip
    n_tracks = len(nhits)
    used = np.zeros(len(x), dtype=np.bool_)
    for k in range(len(flat)):
        used[flat[k]] = True
    partner = np.full(n_tracks * n_seed, -1, dtype=np.int64)
    start = 0
    for t in range(n_tracks):
        xc, yc, radius, h = perigee_to_circle(d0[t], phi[t], theta[t], qop[t], bfield)
        st, ct = math.sin(theta[t]), math.cos(theta[t])
        for s in range(min(n_seed, nhits[t])):
            i = flat[start + s]
            lay = layer[i]
            if lay < 0:
                continue
            # tangent of the circle at the hit, in the direction of flight
            ux = -(y[i] - yc) / (h * radius) * st
            uy = (x[i] - xc) / (h * radius) * st
            j = _best_partner(i, x, y, z, order, phi_sorted, block_lo[lay], block_hi[lay], used, ux, uy, ct)
            if j >= 0:
                used[j] = True
                partner[t * n_seed + s] = j
        start += nhits[t]
    added = np.zeros(n_tracks, dtype=np.int64)
    for t in range(n_tracks):
        for s in range(n_seed):
            if partner[t * n_seed + s] >= 0:
                added[t] += 1
    out = np.empty(len(flat) + added.sum(), dtype=flat.dtype)
    pos, start = 0, 0
    for t in range(n_tracks):
        for s in range(nhits[t]):
            out[pos] = flat[start + s]
            pos += 1
            if s < n_seed and partner[t * n_seed + s] >= 0:
                out[pos] = partner[t * n_seed + s]
                pos += 1
        start += nhits[t]
    return out, nhits + added


def add_overlap_hits(x, y, z, layer, flat, nhits, params, *, bfield: float, n_layers: int, n_seed: int = 3):
    """Tracks with the overlapping-module partners of their seed hits inserted after them.

    Args:
        x, y, z: (n_hits,) float positions (mm); layer: (n_hits,) int layer index (-1: unknown).
        flat: the tracks' hit indices concatenated, each track's `n_seed` seed hits first;
        nhits: (n_tracks,) int their counts; params: (n_tracks, 5) perigee (d0, z0, phi, theta,
        qop) of each track; bfield: tesla; n_layers: layer indices run from 0 to n_layers - 1.

    Returns:
        ``(flat, nhits)`` with the partners added (same dtypes).
    """
    x64, y64, z64 = (np.asarray(a, np.float64) for a in (x, y, z))
    layer = np.asarray(layer, np.int64)
    hit_phi = np.arctan2(y64, x64)
    order = np.lexsort((hit_phi, layer))
    sorted_layer = layer[order]
    block_lo = np.searchsorted(sorted_layer, np.arange(n_layers), side="left")
    block_hi = np.searchsorted(sorted_layer, np.arange(n_layers), side="right")
    p = np.asarray(params, np.float64).reshape(-1, 5)
    out, counts = _overlap_kernel(
        x64, y64, z64, order, hit_phi[order], block_lo, block_hi, layer, np.asarray(flat, np.int64),
        np.asarray(nhits, np.int64), p[:, 0].copy(), p[:, 2].copy(), p[:, 3].copy(), p[:, 4].copy(), float(bfield),
        int(n_seed),
    )  # fmt: skip
    return out.astype(np.asarray(flat).dtype), counts.astype(np.asarray(nhits).dtype)
