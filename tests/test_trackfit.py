"""The road fit (hepgan.reco.roadfit): exact on exact helices, better than the seed with noise,
better with its scattering model than without when tracks scatter, and it picks the right hit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hepgan.reco.helix import crossing_barrel, perigee_to_circle
from hepgan.reco.roadfit import fit_road

B = 2.0
RADII = (32.0, 72.0, 116.0, 172.0, 260.0, 360.0, 500.0, 660.0, 820.0, 1020.0)
PIXEL, STRIP = (0.0144, 0.0144), (0.023, 0.35)


def _helix_hits(d0, z0, phi, theta, qop, *, rng=None, hit_sigma=True, th0=0.0, b=B):
    """Crossings of the helix with the barrel RADII: (x, y, z) per layer, optionally smeared by
    the resolutions and kinked by Gaussian scattering of angle th0 at every layer (the kinks
    displace all later hits: across the track by the angle times the path, in z by the same
    over sin(theta))."""
    xc, yc, radius, h = perigee_to_circle(d0, phi, theta, qop, b)
    cot = math.cos(theta) / math.sin(theta)
    out, s_prev, kink_t, kink_z, off_t, off_z = [], 0.0, 0.0, 0.0, 0.0, 0.0
    for i, r in enumerate(RADII):
        s, x, y, z, ux, uy, ok = crossing_barrel(xc, yc, radius, h, phi, z0, cot, r, 0.0)
        assert ok
        off_t += kink_t * (s - s_prev) / math.sin(theta)
        off_z += kink_z * (s - s_prev) / math.sin(theta) ** 2
        s_prev = s
        # across the track in the transverse plane: the normal (-uy, ux)
        x, y = x - uy * off_t, y + ux * off_t
        z = z + off_z
        if rng is not None:
            sig = PIXEL if i < 4 else STRIP
            if hit_sigma:
                rphi = rng.normal(0, sig[0])
                x, y = x - uy * rphi, y + ux * rphi
                z += rng.normal(0, sig[1])
            if th0:
                kink_t += rng.normal(0, th0)
                kink_z += rng.normal(0, th0)
        out.append((x, y, z))
    return np.array(out)


def _fit(hits, seed, th0=0.0, candidates=None, ms=0.0, b=B):
    """fit_road over 3 seed hits and one (or the given) candidates per further layer; `ms` the
    road's scattering width (mm) at the slot hits."""
    n_layers = len(hits)
    rows = [(i, hits[i], 0.0) for i in range(3)]
    for m in range(3, n_layers):
        for p, chi in candidates.get(m, [(hits[m], 0.0)]) if candidates else [(hits[m], 0.0)]:
            rows.append((m, p, chi))
    n = len(rows)
    hx = np.array([r[1][0] for r in rows])
    hy = np.array([r[1][1] for r in rows])
    hz = np.array([r[1][2] for r in rows])
    s0 = np.array([PIXEL[0] if r[0] < 4 else STRIP[0] for r in rows])
    s1 = np.array([PIXEL[1] if r[0] < 4 else STRIP[1] for r in rows])
    surf = np.array([r[0] for r in rows], np.int64)
    chi = np.array([r[2] for r in rows])
    sel = np.empty(n_layers, np.int64)
    hit_chi2 = np.empty(n)
    ms2 = np.where(surf >= 3, ms * ms, 0.0)
    out = fit_road(hx, hy, hz, s0, s1, np.zeros(n, np.bool_), ms2, surf, chi, n,
                   hits[:, 0].copy(), hits[:, 1].copy(), n_layers, np.full(n_layers, th0), *seed, b, sel, hit_chi2)  # fmt: skip
    _fit.hit_chi2 = hit_chi2
    return np.array(out[:5]), out[5:], sel


TRUE = (0.02, 12.0, 0.7, 1.2, 0.8)  # 1.16 GeV positive track


def _shifted(p, scale=1.0):
    d0, z0, phi, theta, qop = p
    return (d0 + 0.05 * scale, z0 + 0.06 * scale, phi + 2e-3 * scale, theta + 3e-4 * scale, qop * (1 + 0.12 * scale))


@pytest.mark.parametrize(("charge", "b"), [(1, B), (-1, B), (1, -B), (-1, 0.5 * B)])
@pytest.mark.parametrize("phi", [0.7, 3.1, -3.1])
def test_exact_helix_is_recovered_from_a_wrong_seed(charge: int, b: float, phi: float) -> None:
    """Both charges, both field directions, phi across the -pi/pi seam."""
    true = (TRUE[0], TRUE[1], phi, TRUE[3], charge * TRUE[4])
    hits = _helix_hits(*true, b=b)
    fit, (chi2_t, chi2_z, n_used, ok), _ = _fit(hits, _shifted(true), b=b)
    assert ok and n_used == len(RADII)
    diff = fit - np.array(true)
    diff[2] = np.remainder(diff[2] + np.pi, 2 * np.pi) - np.pi
    assert np.allclose(diff, 0, rtol=0, atol=[1e-5, 1e-5, 1e-8, 1e-8, 1e-7]), diff
    assert chi2_t < 1e-6 and chi2_z < 1e-6


def test_fit_beats_the_seed_on_smeared_hits() -> None:
    """With hit resolution only, q/p from ten layers is an order of magnitude better than the
    12% seed error it starts from, and the chi^2 per degree of freedom is about one."""
    rng = np.random.default_rng(1)
    fits, chi = [], []
    for _ in range(300):
        hits = _helix_hits(*TRUE, rng=rng)
        fit, (c_t, c_z, _, ok), _ = _fit(hits, _shifted(TRUE, rng.normal()))
        assert ok
        fits.append(fit)
        chi.append(c_t + c_z)
    d = np.array(fits) - np.array(TRUE)
    assert np.std(d[:, 4] / TRUE[4]) < 0.01
    assert np.std(d[:, 1]) < 0.03
    # 2 n - 5 degrees of freedom over both projections
    assert 0.7 < np.mean(chi) / (2 * len(RADII) - 5) < 1.3


def test_scattering_model_improves_z0_and_qop_when_tracks_scatter() -> None:
    """The point of the inward filter: with scattering on every layer, weighting hits as if
    independent (th0 = 0 in the fit) gives a worse z0 and q/p than the scattering-aware fit."""
    rng = np.random.default_rng(2)
    th0 = 2e-3
    aware, blind = [], []
    for _ in range(400):
        hits = _helix_hits(*TRUE, rng=rng, th0=th0)
        seed = _shifted(TRUE, rng.normal())
        aware.append(_fit(hits, seed, th0=th0)[0])
        blind.append(_fit(hits, seed, th0=0.0)[0])
    da, db = np.array(aware) - np.array(TRUE), np.array(blind) - np.array(TRUE)
    assert np.std(da[:, 1]) < 0.8 * np.std(db[:, 1])
    assert np.std(da[:, 4]) < 0.8 * np.std(db[:, 4])


def test_second_pass_takes_the_hit_on_the_track_not_the_nearest_to_the_seed() -> None:
    """On layer 6 the seed's road ranks a wrong hit first (1 mm off the track); the first fit
    uses it, but the second pass takes the true hit (roads 0.2 mm wide from scattering)."""
    hits = _helix_hits(*TRUE)
    wrong = hits[6] + np.array([0.7, -0.7, 0.0])
    fit, (_, _, n_used, ok), sel = _fit(hits, _shifted(TRUE), th0=1e-3, ms=0.2,
                                        candidates={6: [(wrong, 0.5), (hits[6], 1.0)]})  # fmt: skip
    assert ok and n_used == len(RADII)
    # rows: 3 seed hits, layers 3-5 one each (rows 3-5), then layer 6's wrong (6) and true (7)
    assert sel[6] == 7
    # and the agreement the features get says so: the true hit fits, the wrong one does not
    assert _fit.hit_chi2[7] < 1.0 < 9.0 < _fit.hit_chi2[6]


@pytest.mark.parametrize("wrong", [0, 2])
def test_a_seed_hit_of_another_particle_stands_out_in_its_chi2(wrong: int) -> None:
    """The seed hits' chi^2 to the fit (the features' seed agreement, what tells a seed with
    one hit of another particle from a real one): on smeared hits of one helix all three are
    small; with the inner or outer seed hit moved 0.3 mm across the track, that hit's is large,
    and the two others stay far below it."""
    rng = np.random.default_rng(5)
    hits = _helix_hits(*TRUE, rng=rng)
    _fit(hits, _shifted(TRUE))
    assert (_fit.hit_chi2[:3] < 9.0).all(), _fit.hit_chi2[:3]
    moved = hits.copy()
    xc, yc, _, _ = perigee_to_circle(TRUE[0], TRUE[2], TRUE[3], TRUE[4], B)
    radial = (moved[wrong, :2] - (xc, yc)) / np.hypot(*(moved[wrong, :2] - (xc, yc)))
    moved[wrong, :2] += 0.3 * radial
    _fit(moved, _shifted(TRUE))
    chi2 = _fit.hit_chi2[:3].copy()
    assert chi2[wrong] > 25.0, chi2
    assert all(chi2[j] < chi2[wrong] / 2 for j in range(3) if j != wrong), chi2


def test_too_few_hits_return_the_seed() -> None:
    hits = _helix_hits(*TRUE)[:3]
    seed = _shifted(TRUE)
    fit, (_, _, n_used, ok), _ = _fit(hits, seed)
    assert not ok and n_used == 3
    assert np.allclose(fit, seed)
