"""Confidence intervals on rates and the exact test of paired counts, without scipy.

Every rate the metrics quote (efficiency, fake rate, duplicate rate) is k successes of n
trials. Its interval is the Clopper-Pearson ("exact") central interval at confidence `cl`,
the one ROOT's ``TEfficiency`` draws by default: the bounds are beta quantiles,

    lower = B^-1(alpha / 2; k, n - k + 1),   upper = B^-1(1 - alpha / 2; k + 1, n - k),

with alpha = 1 - cl, lower = 0 at k = 0 and upper = 1 at k = n. Unlike the binomial error
sqrt(e (1 - e) / n) it does not shrink to nothing at an efficiency of 1: 100 of 100 found gives
[0.9818, 1] at 68.27%. The beta quantile is found by bisection on the regularised incomplete
beta function, evaluated by its continued fraction (Lentz's method); scipy is not a core
dependency of hepgan.

The default `cl` is 68.27% (one Gaussian sigma), so that the interval and the binomial error
agree where the latter is valid.
"""

from __future__ import annotations

import math

import numpy as np

from hepgan.errors import InputError

__all__ = ["ONE_SIGMA_CL", "clopper_pearson", "mcnemar_p_value", "rate_with_interval"]

#: The probability inside +-1 sigma of a Gaussian: the default confidence level.
ONE_SIGMA_CL = math.erf(1.0 / math.sqrt(2.0))

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 100_000


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz), converges for
    x < (a + 1) / (a + b + 2); about sqrt(max(a, b)) terms."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    msg = f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})"
    raise RuntimeError(msg)


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b), a, b > 0, 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, 1.0 - x) / b


def _beta_quantile(p: float, a: float, b: float) -> float:
    """x with I_x(a, b) = p, by bisection (I is increasing in x) to 1e-12."""
    lo, hi = 0.0, 1.0
    while hi - lo > 1e-12:
        mid = 0.5 * (lo + hi)
        if _betainc(a, b, mid) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def clopper_pearson(k, n, *, cl: float = ONE_SIGMA_CL) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson central interval of k successes in n trials (module docstring).

    Args:
        k, n: counts (scalars or arrays of one shape), 0 <= k <= n.
        cl: confidence level in (0, 1).
    Returns:
        (lower, upper), float64 arrays of the broadcast shape (0-d for scalars); NaN where n = 0.
    """
    if not 0.0 < cl < 1.0:
        msg = f"cl (confidence level) must be in (0, 1); got {cl!r}"
        raise InputError(msg)
    k_arr, n_arr = np.broadcast_arrays(np.asarray(k, dtype=np.int64), np.asarray(n, dtype=np.int64))
    if np.any((k_arr < 0) | (k_arr > n_arr)):
        msg = f"need 0 <= k <= n for an interval; got k={k!r}, n={n!r}"
        raise InputError(msg)
    alpha = 1.0 - cl
    lower = np.full(k_arr.shape, np.nan)
    upper = np.full(k_arr.shape, np.nan)
    # one quantile per distinct (k, n): binned efficiencies repeat them (empty bins, full bins)
    cache: dict[tuple[int, int], tuple[float, float]] = {}
    for idx in np.ndindex(k_arr.shape):
        kk, nn = int(k_arr[idx]), int(n_arr[idx])
        if nn == 0:
            continue
        if (kk, nn) not in cache:
            lo = 0.0 if kk == 0 else _beta_quantile(alpha / 2.0, kk, nn - kk + 1)
            hi = 1.0 if kk == nn else _beta_quantile(1.0 - alpha / 2.0, kk + 1, nn - kk)
            cache[kk, nn] = (lo, hi)
        lower[idx], upper[idx] = cache[kk, nn]
    return lower, upper


def rate_with_interval(k: int, n: int, *, cl: float = ONE_SIGMA_CL) -> dict:
    """{'value', 'lower', 'upper', 'k', 'n', 'cl'}: k / n with its Clopper-Pearson interval;
    value and bounds None (JSON null) when n = 0."""
    lo, hi = clopper_pearson(k, n, cl=cl)
    ok = n > 0
    return {
        "value": k / n if ok else None,
        "lower": float(lo) if ok else None,
        "upper": float(hi) if ok else None,
        "k": int(k),
        "n": int(n),
        "cl": cl,
    }


def mcnemar_p_value(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar test of paired outcomes: the probability, if both methods found
    each particle equally often, of a split of the discordant particles at least as uneven
    as ``only_a`` vs ``only_b`` (binomial, p = 1/2). 1.0 when there are no discordant pairs."""
    if only_a < 0 or only_b < 0:
        msg = f"paired counts must be >= 0; got {only_a}, {only_b}"
        raise InputError(msg)
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, j) for j in range(min(only_a, only_b) + 1))
    # exact integer arithmetic: the sum and 2**n are Python integers of any size
    return min(1.0, 2 * tail / 2**n)
