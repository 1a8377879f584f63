"""Track parameter errors against the true particle: the error model a model file carries.

Why a model and not the network's spread: the generator's sampled spread measures how unsure it
is of the *classic* answer (the tracks it learned from), which is 4-7x narrower than the error
against the truth (measurement and multiple scattering, which the classic answer shares). A
vertex fit or b-tagger weights tracks by their covariance, so ``track_err_*`` must describe the
error against the particle; the spread stays available as ``track_spread_*``.

The model is the textbook resolution parametrisation, per |eta| bin and per perigee parameter:

    sigma_p^2 = a_p^2 + (b_p * |q/p|)^2

(a: the detector's intrinsic term, b: multiple scattering, which grows as 1/p; the eta bin takes
the path length through the material and the lever arm), with a correlation matrix per |eta|
bin so that the full 5 x 5 covariance is ``sigma_i sigma_j rho_ij``. It is fitted against truth
on tuning events by `hepgan.ml.error_model` and stored in the ONNX metadata ("error_model").
Only the track's own theta and q/p enter, so it runs on data without truth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hepgan.errors import InputError
from hepgan.io.schema import TRACK_PARAMETERS

__all__ = ["COVARIANCE_PAIRS", "ErrorModel", "covariance_columns"]

#: The 15 independent entries of the symmetric 5 x 5 covariance, upper triangle row by row, in
#: ACTS's parameter order (d0, z0, phi, theta, q/p): branch ``track_cov_<a>_<b>``.
COVARIANCE_PAIRS: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(5) for j in range(i, 5))


@dataclass(frozen=True)
class ErrorModel:
    """Per |eta| bin (edges ``eta_edges``, n_bins = len - 1): ``a`` and ``b`` (n_bins, 5) in the
    parameter's unit (b: unit x GeV), ``corr`` (n_bins, 5, 5) correlation matrices."""

    eta_edges: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[tuple[float, ...], ...]
    corr: tuple[tuple[tuple[float, ...], ...], ...]

    def __post_init__(self) -> None:
        edges = np.asarray(self.eta_edges, dtype=np.float64)
        n = len(edges) - 1
        a, b, c = (np.asarray(x, dtype=np.float64) for x in (self.a, self.b, self.corr))
        ok = (
            n >= 1
            and np.all(np.diff(edges) > 0)
            and a.shape == (n, 5)
            and b.shape == (n, 5)
            and c.shape == (n, 5, 5)
            and np.all(np.isfinite(a))
            and np.all(np.isfinite(b))
            and np.all(np.isfinite(c))
            and np.all(a >= 0)
            and np.all(b >= 0)
            and np.any(a + b > 0, axis=0).all()
        )
        if not ok:
            msg = (f"error model: expected increasing eta_edges and, per bin, 5 non-negative finite a and b and a 5 x 5 "
                   f"correlation matrix; got edges {list(edges)}, a {a.shape}, b {b.shape}, corr {c.shape}")  # fmt: skip
            raise InputError(msg)

    # ------------------------------------------------------------------ evaluation
    def _bins(self, theta: np.ndarray) -> np.ndarray:
        eta = np.abs(-np.log(np.tan(np.clip(np.asarray(theta, np.float64), 1e-6, math.pi - 1e-6) / 2)))
        return np.clip(np.searchsorted(np.asarray(self.eta_edges), eta, side="right") - 1, 0, len(self.a) - 1)

    def errors(self, theta, qop) -> np.ndarray:
        """sigma (n, 5) float64 for tracks of polar angle `theta` (rad) and `qop` (e/GeV)."""
        k = self._bins(theta)
        a, b = np.asarray(self.a)[k], np.asarray(self.b)[k]
        x = np.abs(np.asarray(qop, np.float64))[:, None]
        return np.sqrt(a * a + (b * x) ** 2)

    def covariance(self, theta, qop) -> np.ndarray:
        """The 5 x 5 covariance per track, (n, 5, 5) float64."""
        s = self.errors(theta, qop)
        return s[:, :, None] * s[:, None, :] * np.asarray(self.corr)[self._bins(theta)]

    # ------------------------------------------------------------------ storage
    def to_dict(self) -> dict[str, Any]:
        return {"eta_edges": list(self.eta_edges), "a": [list(r) for r in self.a], "b": [list(r) for r in self.b],
                "corr": [[list(r) for r in m] for m in self.corr]}  # fmt: skip

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, where: str = "error model") -> ErrorModel:
        missing = {"eta_edges", "a", "b", "corr"} - set(doc)
        if missing:
            msg = f"{where}: missing {sorted(missing)}; expected eta_edges, a, b, corr"
            raise InputError(msg)
        try:
            return cls(
                tuple(float(x) for x in doc["eta_edges"]),
                tuple(tuple(float(x) for x in r) for r in doc["a"]),
                tuple(tuple(float(x) for x in r) for r in doc["b"]),
                tuple(tuple(tuple(float(x) for x in r) for r in m) for m in doc["corr"]),
            )
        except (TypeError, ValueError) as err:
            msg = f"{where}: not numbers ({err})"
            raise InputError(msg) from err


def covariance_columns(cov: np.ndarray, names: Sequence[str] = TRACK_PARAMETERS) -> dict[str, np.ndarray]:
    """The 15 ``track_cov_<a>_<b>`` columns (float32) of covariances (n, 5, 5)."""
    return {f"track_cov_{names[i]}_{names[j]}": np.asarray(cov[:, i, j], np.float32) for i, j in COVARIANCE_PAIRS}
