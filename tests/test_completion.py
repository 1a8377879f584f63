"""hepgan.reco.completion on real simulated particles: a track given only some of a particle's
pixel hits gets the others back (inner layers, a skipped layer, overlapping modules), and never
a hit another track holds."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
from _fake_model import SHIPPED

from hepgan.io.events import read_events
from hepgan.perf import metrics
from hepgan.reco.completion import complete_tracks
from hepgan.reco.geometry import GENERIC_DETECTOR
from hepgan.reco.model_file import read_model_info


def _event(sim: Path, i: int = 0):
    data = read_events(sim, trees=("hits", "particles"), truth=True)
    hits, particles = data["hits"][i], data["particles"][i]
    cols = {k: ak.to_numpy(hits[k]) for k in ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id", "hit_particle_id")}
    truth = metrics.truth_perigee(data["particles"][i : i + 1])
    params = np.stack([ak.to_numpy(truth[p][0]) for p in ("d0", "z0", "phi", "theta", "qop")], axis=1)
    return cols, ak.to_numpy(particles["particle_id"]), params


def _pixel_hits_in_flight_order(cols, pid: int) -> np.ndarray:
    layer = GENERIC_DETECTOR.layer_index(cols["hit_volume_id"], cols["hit_layer_id"])
    pixel = np.isin(cols["hit_volume_id"], GENERIC_DETECTOR.pixel_volumes) & (layer >= 0)
    mine = np.flatnonzero((cols["hit_particle_id"] == pid) & pixel)
    return mine[np.argsort(np.hypot(cols["hit_x"][mine], cols["hit_y"][mine]) + np.abs(cols["hit_z"][mine]) * 1e-3)]


def test_missing_pixel_hits_come_back_and_nothing_else(sim_20x50: Path) -> None:
    cols, pids, params = _event(sim_20x50)
    layer = GENERIC_DETECTOR.layer_index(cols["hit_volume_id"], cols["hit_layer_id"])
    flat, nhits, full, rows = [], [], [], []
    for k, pid in enumerate(pids):
        mine = _pixel_hits_in_flight_order(cols, pid)
        layers = layer[mine]
        distinct = list(dict.fromkeys(layers.tolist()))
        beyond = np.flatnonzero((cols["hit_particle_id"] == pid) & ~np.isin(cols["hit_volume_id"], (7, 8, 9)))
        # central particles crossing the four pixel barrel layers, with an overlap somewhere
        if len(distinct) < 4 or len(distinct) == len(layers) or not len(beyond) or abs(params[k, 3] - np.pi / 2) > 0.6:
            continue
        outer = beyond[np.argmin(np.hypot(cols["hit_x"][beyond], cols["hit_y"][beyond]))]
        # the "seed": the 2nd and 4th pixel layers and a strip hit (the 1st layer inside it, the
        # 3rd skipped, overlapping modules' second hits left out)
        flat += [mine[layers == distinct[1]][0], mine[layers == distinct[3]][0], outer]
        nhits.append(3)
        full.append(set(mine.tolist()) | {int(outer)})
        rows.append(k)
        if len(rows) == 40:
            break
    assert len(rows) >= 20
    # the shipped model's errors for such tracks (hepgan.reco.uncertainty)
    errors = read_model_info(SHIPPED).error_model.errors(params[rows, 3], params[rows, 4])
    out, counts = complete_tracks(
        cols["hit_x"], cols["hit_y"], cols["hit_z"], layer, np.asarray(flat, np.int32), np.asarray(nhits, np.int32),
        params[rows], errors, geometry=GENERIC_DETECTOR, bfield=2.0,
    )  # fmt: skip
    assert out.dtype == np.int32 and counts.dtype == np.int32
    assert len(out) == counts.sum() and len(np.unique(out)) == len(out)  # no hit on two tracks
    starts = np.concatenate([[0], np.cumsum(counts)])
    recovered = wrong = wanted = 0
    for t, want in enumerate(full):
        got = set(out[starts[t] : starts[t + 1]].tolist())
        # the strip hit's own overlap partner may come too (windows made for pixels): the particle's
        got -= {h for h in got - want if cols["hit_particle_id"][h] == pids[rows[t]]}
        assert set(flat[3 * t : 3 * t + 3]) <= got
        recovered += len(got & want) - 3
        wanted += len(want) - 3
        wrong += len(got - want)
    assert wrong == 0
    assert recovered >= 0.95 * wanted, (recovered, wanted)


def test_overlap_search_bounds_drop_only_hits_the_windows_reject() -> None:
    """The z / r bounds that skip most of a layer in the overlap search give the same partner as
    the unbounded search (huge extents switch the bounds off), on barrel-like and disk-like
    blocks, central and forward tangents, partners placed just inside and outside the windows."""
    from hepgan.reco.completion import WINDOW_T, WINDOW_Z, _best_partner

    rng = np.random.default_rng(5)
    for disk in (False, True):
        n = 4000
        phi = rng.uniform(-np.pi, np.pi, n)
        r = rng.uniform(60.0, 180.0, n) if disk else 72.0 + rng.uniform(-2.0, 2.0, n)
        # a disk's two faces of overlapping modules, 2 mm apart
        z = 600.0 + rng.choice([-1.0, 1.0], n) + rng.uniform(-0.1, 0.1, n) if disk else rng.uniform(-500.0, 500.0, n)
        x, y = r * np.cos(phi), r * np.sin(phi)
        # a partner for each of the first 300 hits along a random tangent, at the windows' edge
        m = 300
        theta = rng.uniform(0.1, 1.2, m) if disk else rng.uniform(0.1, np.pi - 0.1, m)
        u_phi = phi[:m] + rng.uniform(-np.pi, np.pi, m)
        u = np.stack([np.sin(theta) * np.cos(u_phi), np.sin(theta) * np.sin(u_phi), np.cos(theta)], axis=1)
        # on a disk the partner is on the other face; on a barrel anywhere along the tangent
        along = -np.sign(z[:m] - 600.0) * 2.0 / np.cos(theta) if disk else rng.uniform(-20.0, 20.0, m)
        edge = rng.uniform(0.3, 1.1, m) / np.sqrt(2.0)  # of the windows' (elliptic) edge
        off_t = edge * WINDOW_T
        off_z = edge * WINDOW_Z
        radial = np.stack([np.cos(phi[:m]), np.sin(phi[:m])], axis=1)
        x = np.concatenate([x, x[:m] + along * u[:, 0] + off_t * radial[:, 0]])
        y = np.concatenate([y, y[:m] + along * u[:, 1] + off_t * radial[:, 1]])
        z = np.concatenate([z, z[:m] + along * u[:, 2] + off_z * np.sign(rng.normal(size=m))])
        hphi = np.arctan2(y, x)
        order = np.argsort(hphi, kind="stable")
        xs, ys, zs = x[order], y[order], z[order]
        rs = np.hypot(xs, ys)
        pix = (order, hphi[order], xs, ys, zs, np.zeros(len(x), np.bool_), rs)
        span = float(zs.max() - zs.min())
        found = 0
        for i in range(m):
            args = (i, x, y, z, pix, 0, len(x), u[i, 0], u[i, 1], u[i, 2])
            bounded = _best_partner(*args, float(rs.min()), float(rs.max()), span)
            assert bounded == _best_partner(*args, 0.0, 1e6, 1e6), (disk, i)
            found += bounded >= 0
        assert 0.2 * m < found < m  # partners inside and outside the windows
