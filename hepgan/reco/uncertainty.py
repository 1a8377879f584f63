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

A per-track quality term (optional, ``QualityTerm``; issue 16) multiplies each parameter's
sigma by a scale per quality class of the track:

    sigma_p = s_p(class) * sqrt(a_p^2 + (b_p * |q/p|)^2)

Why: the pulls of the eta x q/p model alone were 0.87 on q/p for sparse pion guns and 0.98 at
ttbar pile-up 200, since a track whose road crosses surfaces with several candidate hits more
often carries a wrong hit, which pulls q/p most; an event-level occupancy term did not help,
the track's own road does. The class is the number of surfaces along the track's road (after
its seed) that held more than one candidate hit (``road_ambiguous_surfaces``, computed by the
engine from the road's candidates, no truth). Tried and measured on tuning events, not kept:
hits on the track, chi^2 / ndf of the assignment, pixel hits, the network's score and spread
(deploy/models/README.md, the error-model section). A model without the term (older files)
is the term with every scale 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hepgan.errors import InputError
from hepgan.io.schema import TRACK_PARAMETERS

__all__ = ["COVARIANCE_PAIRS", "QUALITY_VARIABLES", "ErrorModel", "QualityTerm", "covariance_columns"]

#: The 15 independent entries of the symmetric 5 x 5 covariance, upper triangle row by row, in
#: ACTS's parameter order (d0, z0, phi, theta, q/p): branch ``track_cov_<a>_<b>``.
COVARIANCE_PAIRS: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(5) for j in range(i, 5))

#: The per-track quality variables the engine can give a `QualityTerm` (name -> meaning).
QUALITY_VARIABLES: dict[str, str] = {
    "road_ambiguous_surfaces": "surfaces along the track's road (after its seed) holding more than one candidate hit",
}


@dataclass(frozen=True)
class QualityTerm:
    """Scales of sigma per quality class: class i holds the tracks whose `variable` lies in
    [edges[i], edges[i + 1]) (below edges[0]: class 0; the last class is open above), and
    ``scale`` (n_classes, 5) multiplies sigma of each parameter (d0, z0, phi, theta, q/p)."""

    variable: str
    edges: tuple[float, ...]
    scale: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        edges = np.asarray(self.edges, dtype=np.float64)
        s = np.asarray(self.scale, dtype=np.float64)
        if self.variable not in QUALITY_VARIABLES:
            msg = (f"error model quality term: unknown variable {self.variable!r}; expected one of "
                   f"{sorted(QUALITY_VARIABLES)}")  # fmt: skip
            raise InputError(msg)
        ok = (edges.ndim == 1 and len(edges) >= 1 and np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)
              and s.shape == (len(edges), 5) and np.all(np.isfinite(s)) and np.all(s > 0))  # fmt: skip
        if not ok:
            msg = (f"error model quality term: expected increasing finite edges (one per class) and, per class, 5 "
                   f"positive finite scales; got edges {edges.tolist()}, scale {s.shape}")  # fmt: skip
            raise InputError(msg)

    def classes(self, values) -> np.ndarray:
        """The class index of each track's quality `values`."""
        v = np.asarray(values, dtype=np.float64)
        return np.clip(np.searchsorted(np.asarray(self.edges), v, side="right") - 1, 0, len(self.edges) - 1)

    def scales(self, values) -> np.ndarray:
        """(n, 5) scales of sigma for tracks of quality `values` (NaN values: scale 1)."""
        v = np.asarray(values, dtype=np.float64)
        out = np.asarray(self.scale, dtype=np.float64)[self.classes(np.where(np.isfinite(v), v, 0.0))]
        out[~np.isfinite(v)] = 1.0
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"variable": self.variable, "edges": list(self.edges), "scale": [list(r) for r in self.scale]}

    @classmethod
    def from_dict(cls, doc: Any, *, where: str = "error model") -> QualityTerm:
        if not isinstance(doc, Mapping) or {"variable", "edges", "scale"} - set(doc):
            got = sorted(doc) if isinstance(doc, Mapping) else type(doc).__name__
            msg = f"{where}: 'quality' must hold variable, edges and scale; got {got}"
            raise InputError(msg)
        try:
            edges = tuple(float(x) for x in doc["edges"])
            scale = tuple(tuple(float(x) for x in r) for r in doc["scale"])
        except (TypeError, ValueError) as err:
            msg = f"{where}: 'quality' edges and scale must be numbers ({err})"
            raise InputError(msg) from err
        try:
            return cls(str(doc["variable"]), edges, scale)
        except InputError as err:
            msg = f"{where}: {err}"
            raise InputError(msg) from err


@dataclass(frozen=True)
class ErrorModel:
    """Per |eta| bin (edges ``eta_edges``, n_bins = len - 1): ``a`` and ``b`` (n_bins, 5) in the
    parameter's unit (b: unit x GeV), ``corr`` (n_bins, 5, 5) correlation matrices; ``quality``
    the optional per-track scales (None: every scale 1, as in files written before it)."""

    eta_edges: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[tuple[float, ...], ...]
    corr: tuple[tuple[tuple[float, ...], ...], ...]
    quality: QualityTerm | None = None

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

    def errors(self, theta, qop, quality=None) -> np.ndarray:
        """sigma (n, 5) float64 for tracks of polar angle `theta` (rad) and `qop` (e/GeV), times
        the quality term's scales for the tracks' `quality` values (the term's variable) when
        the model has the term and `quality` is given; without them, the eta x q/p part alone."""
        k = self._bins(theta)
        a, b = np.asarray(self.a)[k], np.asarray(self.b)[k]
        x = np.abs(np.asarray(qop, np.float64))[:, None]
        sigma = np.sqrt(a * a + (b * x) ** 2)
        if self.quality is not None and quality is not None:
            q = np.asarray(quality, dtype=np.float64)
            if q.shape != (len(sigma),):
                msg = f"error model: {len(sigma)} tracks but quality values of shape {q.shape}"
                raise InputError(msg)
            sigma = sigma * self.quality.scales(q)
        return sigma

    def covariance(self, theta, qop, quality=None) -> np.ndarray:
        """The 5 x 5 covariance per track, (n, 5, 5) float64 (`quality` as in `errors`)."""
        s = self.errors(theta, qop, quality)
        return s[:, :, None] * s[:, None, :] * np.asarray(self.corr)[self._bins(theta)]

    # ------------------------------------------------------------------ storage
    def to_dict(self) -> dict[str, Any]:
        doc = {"eta_edges": list(self.eta_edges), "a": [list(r) for r in self.a], "b": [list(r) for r in self.b],
               "corr": [[list(r) for r in m] for m in self.corr]}  # fmt: skip
        if self.quality is not None:
            doc["quality"] = self.quality.to_dict()
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, where: str = "error model") -> ErrorModel:
        missing = {"eta_edges", "a", "b", "corr"} - set(doc)
        if missing:
            msg = f"{where}: missing {sorted(missing)}; expected eta_edges, a, b, corr"
            raise InputError(msg)
        # optional: models calibrated before the quality term (issue 16) lack it (every scale 1)
        quality = None if doc.get("quality") is None else QualityTerm.from_dict(doc["quality"], where=where)
        try:
            return cls(
                tuple(float(x) for x in doc["eta_edges"]),
                tuple(tuple(float(x) for x in r) for r in doc["a"]),
                tuple(tuple(float(x) for x in r) for r in doc["b"]),
                tuple(tuple(tuple(float(x) for x in r) for r in m) for m in doc["corr"]),
                quality,
            )
        except (TypeError, ValueError) as err:
            msg = f"{where}: not numbers ({err})"
            raise InputError(msg) from err


def covariance_columns(cov: np.ndarray, names: Sequence[str] = TRACK_PARAMETERS) -> dict[str, np.ndarray]:
    """The 15 ``track_cov_<a>_<b>`` columns (float32) of covariances (n, 5, 5)."""
    return {f"track_cov_{names[i]}_{names[j]}": np.asarray(cov[:, i, j], np.float32) for i, j in COVARIANCE_PAIRS}
