"""A helix fit over a seed and the hits along its road, with multiple scattering.

Why it exists: the seed helix comes from three hits, so its curvature and z0 are known only to
the precision of three points. The classic algorithm's Kalman filter fits ten or more. A
network asked to turn normalised candidate residuals into that fit learns it poorly (measured:
z0 did not move from the seed at all). So the feature builder fits the helix itself, over the
seed hits and one candidate per surface, and the generator corrects that fit instead of the
seed: what is left to learn is the classic algorithm's choices, not arithmetic.

How (all scalar numba code, called per seed from ``hepgan.reco.features``): a Kalman filter run
from the outermost surface inwards, linearised around a reference helix, one projection at a
time. Because it runs inwards, its final state is the innermost track segment, which is the
perigee estimate itself (no smoother needed), and it equals the least-squares fit with the full
scattering covariance.

* Transverse: the state is the change (d0, phi, omega) of the reference circle, omega = h / R
  the signed curvature. A hit at turning angle beta from the perigee measures its signed
  distance rho = |p - c| - R from the circle, with derivatives ``h cos(beta)``,
  ``(d0 + 1/omega) sin(beta)`` and ``2 h sin^2(beta / 2) / omega^2`` (the last written so that
  it stays exact for nearly straight tracks). Scattering at a surface at beta_m kinks the track
  there, which in these parameters is the direction ``(-h R sin(beta_m), R cos(beta_m) /
  (d0 + h R), 0)`` with angle variance ``theta0^2 / sin^2(theta)``. Relinearised
  around each new estimate (``_ITERATIONS_FIRST``, ``_ITERATIONS_SECOND``).
* Longitudinal: the state is the change of (z0, cot(theta)) of z = z0 + s cot(theta) in the
  transverse arc length s of the fitted circle; a kink at s_m moves it along ``(-s_m, 1)`` with
  variance ``theta0^2 / sin^4(theta)``. A disk measures r, not z: its r error enters as
  ``sigma_r |cot(theta)|``.
* Scattering happens at the seed hits' surfaces and at every surface the road crosses after
  them, hit or not, each with its own ``theta0``: the features' material of its layer through
  the track's path across it (``FeatureConfig.path_length``). Surfaces the seed skipped
  between its hits are not modelled.
* Two passes choose the hits: the first takes the seed hits and each surface's nearest candidate
  inside the road; the second takes on each surface the candidate with the smallest chi^2 to the
  first fit (hit error plus the road's scattering variance), when under ``_PASS2_CHI2``.

Returns the fitted perigee, the filter's chi^2 of each projection and the number of hits used;
the seed's own helix when there is nothing to fit (fewer than four hits, or a degenerate
system).

Fastmath without its no-NaN and no-inf assumptions (``hepgan.reco.jit.NAN_SAFE_FASTMATH``): the
filter's guards against degenerate systems test for NaN, which those would compile away.
"""

from __future__ import annotations

import math

from hepgan.reco.helix import PT_PER_TESLA_METRE
from hepgan.reco.jit import NAN_SAFE_FASTMATH, kernel

__all__ = ["fit_road"]

#: transverse relinearisations of the first fit (from the seed, up to 12% off in q/p: one
#: leaves outer hits off by more than their resolution) and of the second (from the first fit)
_ITERATIONS_FIRST = 2
_ITERATIONS_SECOND = 1
#: per-hit chi^2 (two projections) to take a candidate in the first pass, in road widths
_PASS1_CHI2 = 9.0
#: and in the second, against the first fit
_PASS2_CHI2 = 16.0
#: scale of the transverse state (mm): d0, phi * _S and omega * _S^2 are all of order one
_S = 1000.0
#: prior variance of the state in those units: no information
_PRIOR = 1e8


@kernel(error_model="numpy", fastmath=NAN_SAFE_FASTMATH, allocates=False)
def _circle(d0, phi, omega):
    """Centre (xc, yc), radius and sense h of the circle (d0, phi, omega = h / R)."""
    h = 1.0 if omega > 0.0 else -1.0
    k = d0 + 1.0 / omega
    return -k * math.sin(phi), k * math.cos(phi), 1.0 / abs(omega), h


@kernel(inline="always", error_model="numpy", fastmath=NAN_SAFE_FASTMATH)
def _point(xc, yc, radius, h, ux, uy, x, y):
    """Where (x, y) lies relative to the circle (centre xc, yc, radius, sense h; ux, uy the
    perigee relative to the centre): cos and sin of the turning angle beta from the perigee
    to the nearest point of the circle (positive along the motion), the signed distance rho
    from the circle (mm), and the direction (nx, ny) from the centre to (x, y). No
    trigonometric call: this runs for every hit of every seed."""
    vx = x - xc
    vy = y - yc
    vn = math.sqrt(vx * vx + vy * vy)
    norm = 1.0 / (radius * vn)
    cos_b = (ux * vx + uy * vy) * norm
    sin_b = h * (ux * vy - uy * vx) * norm
    return cos_b, sin_b, vn - radius, vx / vn, vy / vn


@kernel(inline="always", error_model="numpy", fastmath=NAN_SAFE_FASTMATH)
def _frame(d0, phi, omega):
    """(xc, yc, radius, h, ux, uy) of the circle (d0, phi, omega) for `_point`."""
    xc, yc, radius, h = _circle(d0, phi, omega)
    return xc, yc, radius, h, -d0 * math.sin(phi) - xc, d0 * math.cos(phi) - yc


@kernel(inline="always", error_model="numpy", fastmath=NAN_SAFE_FASTMATH)
def _var_transverse(x, y, s0, s1, endcap, nx, ny):
    """Variance (mm^2) of a hit across the track: its r*phi resolution, and for a disk also its
    r resolution projected on the track normal (nx, ny), which turns radial as the track
    curls."""
    if not endcap:
        return s0 * s0
    cos_a = (nx * x + ny * y) / math.sqrt(x * x + y * y)
    return s0 * s0 * (1.0 - cos_a * cos_a) + s1 * s1 * cos_a * cos_a


@kernel(inline="always", error_model="numpy", fastmath=NAN_SAFE_FASTMATH)
def _add_kink(p00, p01, p11, kink_var, g0, g1):
    """A scattering kink of angle variance `kink_var` along (g0, g1) added to the covariance
    block of the two state components it moves (both projections' filters)."""
    return p00 + kink_var * g0 * g0, p01 + kink_var * g0 * g1, p11 + kink_var * g1 * g1


@kernel(error_model="numpy", fastmath=NAN_SAFE_FASTMATH, allocates=False)
def _filter_transverse(hx, hy, s0, s1, endcap, px, py, sel, n_surf, th0, kink_scale, d0, phi, omega):
    """One inward filter pass; returns (d0, phi, omega, chi2, ok) of the updated circle.
    The kink angle variance at surface m is th0[m]^2 * kink_scale."""
    x0 = x1 = x2 = 0.0
    p00 = p11 = p22 = _PRIOR
    p01 = p02 = p12 = 0.0
    chi2 = 0.0
    xc, yc, radius, h, ux, uy = _frame(d0, phi, omega)
    arm = d0 + 1.0 / omega
    for m in range(n_surf - 1, -1, -1):
        j = sel[m]
        # the kink at the hit, or where the reference crosses the surface when it has none
        cos_b, sin_b, rho, nx, ny = _point(xc, yc, radius, h, ux, uy, hx[j] if j >= 0 else px[m], hy[j] if j >= 0 else py[m])
        g0 = -h * radius * sin_b
        g1 = radius * cos_b / arm * _S
        p00, p01, p11 = _add_kink(p00, p01, p11, th0[m] * th0[m] * kink_scale, g0, g1)
        if j < 0:
            continue
        # H = -d rho / d state: the circle moving by the state moves rho the other way;
        # 1 - cos(beta) written without cancellation
        h0 = -h * cos_b
        h1 = -arm * sin_b / _S
        h2 = -h * sin_b * sin_b / (1.0 + cos_b) * radius * radius / (_S * _S)
        ph0 = p00 * h0 + p01 * h1 + p02 * h2
        ph1 = p01 * h0 + p11 * h1 + p12 * h2
        ph2 = p02 * h0 + p12 * h1 + p22 * h2
        var = h0 * ph0 + h1 * ph1 + h2 * ph2 + _var_transverse(hx[j], hy[j], s0[j], s1[j], endcap[j], nx, ny)
        if not var > 0.0:
            return d0, phi, omega, 0.0, False
        r = rho - (h0 * x0 + h1 * x1 + h2 * x2)
        chi2 += r * r / var
        k0 = ph0 / var
        k1 = ph1 / var
        k2 = ph2 / var
        x0 += k0 * r
        x1 += k1 * r
        x2 += k2 * r
        p00 -= k0 * ph0
        p01 -= k0 * ph1
        p02 -= k0 * ph2
        p11 -= k1 * ph1
        p12 -= k1 * ph2
        p22 -= k2 * ph2
    omega_new = omega + x2 / (_S * _S)
    # A charge flip of a track the seed curved is no fit but a line through outliers.
    if not omega_new * omega > 0.0:
        return d0, phi, omega, chi2, False
    phi_new = phi + x1 / _S
    return d0 + x0, math.atan2(math.sin(phi_new), math.cos(phi_new)), omega_new, chi2, True


@kernel(error_model="numpy", fastmath=NAN_SAFE_FASTMATH, allocates=False)
def _filter_z(hx, hy, hz, s1, endcap, px, py, sel, n_surf, th0, kink_scale, d0, phi, omega, z0, cot):
    """Inward filter of the line z = z0 + s cot(theta); returns (z0, cot, chi2, ok)."""
    x0 = x1 = 0.0
    p00 = p11 = _PRIOR
    p01 = 0.0
    chi2 = 0.0
    xc, yc, radius, h, ux, uy = _frame(d0, phi, omega)
    for m in range(n_surf - 1, -1, -1):
        j = sel[m]
        cos_b, sin_b, _, _, _ = _point(xc, yc, radius, h, ux, uy, hx[j] if j >= 0 else px[m], hy[j] if j >= 0 else py[m])
        s = radius * math.atan2(sin_b, cos_b)
        g0 = -s
        g1 = _S
        p00, p01, p11 = _add_kink(p00, p01, p11, th0[m] * th0[m] * kink_scale, g0, g1)
        if j < 0:
            continue
        h1 = s / _S
        ph0 = p00 + p01 * h1
        ph1 = p01 + p11 * h1
        meas = s1[j] * s1[j] * (cot * cot if endcap[j] else 1.0)
        var = ph0 + h1 * ph1 + meas
        if not var > 0.0:
            return z0, cot, 0.0, False
        r = hz[j] - z0 - s * cot - (x0 + h1 * x1)
        chi2 += r * r / var
        k0 = ph0 / var
        k1 = ph1 / var
        x0 += k0 * r
        x1 += k1 * r
        p00 -= k0 * ph0
        p01 -= k0 * ph1
        p11 -= k1 * ph1
    return z0 + x0, cot + x1 / _S, chi2, True


@kernel(error_model="numpy", fastmath=NAN_SAFE_FASTMATH, allocates=False)
def _fit(hx, hy, hz, s0, s1, endcap, px, py, sel, n_surf, th0, iterations, d0, phi, omega, z0, cot):
    """Both projections, transverse first (the line needs its arc lengths). Returns
    (d0, phi, omega, z0, cot, chi2_t, chi2_z, n_used, ok)."""
    n_used = 0
    for m in range(n_surf):
        if sel[m] >= 0:
            n_used += 1
    if n_used < 4:
        return d0, phi, omega, z0, cot, 0.0, 0.0, n_used, False
    sin2_t = 1.0 / (1.0 + cot * cot)
    chi2_t = 0.0
    for _ in range(iterations):
        d0, phi, omega, chi2_t, ok = _filter_transverse(
            hx, hy, s0, s1, endcap, px, py, sel, n_surf, th0, 1.0 / sin2_t, d0, phi, omega
        )
        if not ok:
            return d0, phi, omega, z0, cot, 0.0, 0.0, n_used, False
    z0, cot, chi2_z, ok = _filter_z(
        hx, hy, hz, s1, endcap, px, py, sel, n_surf, th0, 1.0 / (sin2_t * sin2_t), d0, phi, omega, z0, cot
    )
    return d0, phi, omega, z0, cot, chi2_t, chi2_z, n_used, ok


@kernel(error_model="numpy", fastmath=NAN_SAFE_FASTMATH, allocates=False)
def _qop(omega, cot, bfield):
    h = 1.0 if omega > 0.0 else -1.0
    q = -h if bfield > 0.0 else h
    pt = PT_PER_TESLA_METRE * abs(bfield) * 1e-3 / abs(omega)
    return q / (pt * math.sqrt(1.0 + cot * cot))


@kernel(error_model="numpy", fastmath=NAN_SAFE_FASTMATH, allocates=False)
def fit_road(hx, hy, hz, s0, s1, endcap, ms2, surf, road_chi2, n_hits, px, py, n_surf, th0,
             d0, z0, phi, theta, qop, bfield, sel, hit_chi2):  # fmt: skip
    """Fit a seed and its road.

    Hits j < n_hits: position hx, hy, hz (mm); s0, s1 the resolutions of its two local
    coordinates (mm); endcap; ms2 the road's scattering variance across the track at its
    surface (mm^2); surf its surface; road_chi2 its chi^2 to the seed in road widths. The three
    seed hits come first (surfaces 0-2), then each slot surface's candidates, nearest first.
    Surfaces m < n_surf, in the order the track crosses them: px, py a point on each (the seed
    hit, or the seed helix's crossing). th0 (length >= n_surf): the scattering angle at each
    surface (rad). (d0, z0, phi,
    theta, qop): the seed helix. ``sel`` (length >= n_surf) is scratch; on return the hit the
    second pass chose on each surface (-1 none), which the returned helix used unless the
    second fit failed (the first fit comes back then). ``hit_chi2`` (length >= n_hits): on return, each
    hit's chi^2 to the returned helix, the seed's three too (-1 when the fit failed): a seed hit
    of another particle stands out there.

    Returns (d0, z0, phi, theta, qop, chi2_t, chi2_z, n_used, ok); ok False means the seed
    helix came back unchanged.
    """
    for j in range(n_hits):
        hit_chi2[j] = -1.0
    if qop == 0.0 or bfield == 0.0 or n_surf < 3:
        return d0, z0, phi, theta, qop, 0.0, 0.0, 0, False
    sin_t = math.sin(theta)
    cot = math.cos(theta) / sin_t
    radius = abs(sin_t / qop) / (PT_PER_TESLA_METRE * abs(bfield) * 1e-3)
    q = 1.0 if qop > 0.0 else -1.0
    h = -q if bfield > 0.0 else q
    omega = h / radius
    for m in range(n_surf):
        sel[m] = -1
    for j in range(n_hits):
        # first pass: the seed hits and each surface's nearest candidate inside the road
        m = surf[j]
        if sel[m] < 0 and (m < 3 or road_chi2[j] < _PASS1_CHI2):
            sel[m] = j
    f_d0, f_phi, f_omega, f_z0, f_cot, c_t, c_z, n_used, ok = _fit(
        hx, hy, hz, s0, s1, endcap, px, py, sel, n_surf, th0, _ITERATIONS_FIRST, d0, phi, omega, z0, cot
    )
    if not ok:
        return d0, z0, phi, theta, qop, 0.0, 0.0, n_used, False
    # second pass: on each slot surface the candidate nearest the first fit
    _candidate_chi2(hx, hy, hz, s0, s1, endcap, ms2, n_hits, f_d0, f_phi, f_omega, f_z0, f_cot, hit_chi2)
    best_c = _PASS2_CHI2
    for j in range(3, n_hits):
        m = surf[j]
        if j == 3 or surf[j - 1] != m:
            sel[m] = -1
            best_c = _PASS2_CHI2
        if hit_chi2[j] < best_c:
            best_c = hit_chi2[j]
            sel[m] = j
    g_d0, g_phi, g_omega, g_z0, g_cot, g_t, g_z, g_used, ok = _fit(
        hx, hy, hz, s0, s1, endcap, px, py, sel, n_surf, th0, _ITERATIONS_SECOND, f_d0, f_phi, f_omega, f_z0, f_cot
    )
    if not ok:
        return f_d0, f_z0, f_phi, math.atan2(1.0, f_cot), _qop(f_omega, f_cot, bfield), c_t, c_z, n_used, True
    _candidate_chi2(hx, hy, hz, s0, s1, endcap, ms2, n_hits, g_d0, g_phi, g_omega, g_z0, g_cot, hit_chi2)
    return g_d0, g_z0, g_phi, math.atan2(1.0, g_cot), _qop(g_omega, g_cot, bfield), g_t, g_z, g_used, True


@kernel(error_model="numpy", fastmath=NAN_SAFE_FASTMATH, allocates=False)
def _candidate_chi2(hx, hy, hz, s0, s1, endcap, ms2, n_hits, d0, phi, omega, z0, cot, out):
    """chi^2 (both projections) of each hit to the helix, with its hit error plus the
    scattering variance `ms2` at its surface (for a seed hit, that of the seed surfaces before
    it; for a candidate, the road's)."""
    sin2_t = 1.0 / (1.0 + cot * cot)
    xc, yc, radius, h, ux, uy = _frame(d0, phi, omega)
    for j in range(n_hits):
        cos_b, sin_b, rho, nx, ny = _point(xc, yc, radius, h, ux, uy, hx[j], hy[j])
        dz = hz[j] - z0 - radius * math.atan2(sin_b, cos_b) * cot
        vz = s1[j] * s1[j] * (cot * cot if endcap[j] else 1.0) + ms2[j] / sin2_t
        vt = _var_transverse(hx[j], hy[j], s0[j], s1[j], endcap[j], nx, ny) + ms2[j]
        out[j] = rho * rho / vt + dz * dz / vz
