"""Conversions from ACTS's event data to hepgan's columns: surface frames (local -> global) and
the tracks of a CKF track container (parameters, covariance, hit indices).

Apart from :mod:`hepgan.acts.chain` (which builds and runs the chain) because both the
simulation's converter and the classic reconstruction of a file read ACTS's output with them.
"""

from __future__ import annotations

import acts
import acts.examples
import numpy as np

from hepgan.io.schema import COVARIANCE_BRANCHES

__all__ = ["SurfaceFrames", "convert_tracks"]




class SurfaceFrames:
    """Cached affine local->global frames of planar surfaces (mm).

    ``global = origin + loc0 * e0 + loc1 * e1``; exact for plane surfaces, which are all the
    generic detector's sensitive modules (checked on first use of each surface).
    """

    def __init__(self, tracking_geometry, gctx) -> None:
        self._gctx = gctx
        self._surfaces = {gid.value: s for gid, s in tracking_geometry.geoIdSurfaceMap().items()}
        self._frames: dict[int, np.ndarray] = {}

    def frame(self, gid_value: int) -> np.ndarray:
        """(3, 3) array: rows origin, e0, e1 of the surface with this geometry id value."""
        frame = self._frames.get(gid_value)
        if frame is None:
            surface = self._surfaces[gid_value]
            if surface.type != acts.SurfaceType.Plane:
                msg = f"measurement on non-plane surface {surface.type}"
                raise NotImplementedError(msg)
            direction = acts.Vector3(0, 0, 1)  # ignored by plane surfaces
            points = [
                np.array(surface.localToGlobal(self._gctx, acts.Vector2(a, b), direction), np.float64)
                for a, b in ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0))
            ]
            frame = np.stack([points[0], points[1] - points[0], points[2] - points[0]])
            self._frames[gid_value] = frame
        return frame

    def __contains__(self, gid_value: int) -> bool:
        """Whether a sensitive surface has this geometry id value."""
        return gid_value in self._surfaces


def _track_hit_indices(track) -> list[int]:
    """Measurement indices held by a track, innermost state first (outliers excluded)."""
    hits = []
    # ``trackStatesReversed`` walks tip -> stem, i.e. outermost state first; ``trackStates``
    # (stem -> tip) raises "Track has no stem index" on the ambiguity resolver's tracks.
    for state in track.trackStatesReversed:
        if state.typeFlags.isMeasurement and state.hasUncalibratedSourceLink:
            hits.append(acts.examples.IndexSourceLink.fromSourceLink(state.uncalibratedSourceLink).index())
    hits.reverse()
    return hits


_PERIGEE = ("d0", "z0", "phi", "theta", "qop")  # ACTS's bound parameters loc0, loc1, phi, theta, q/p


def convert_tracks(tracks, hit_of_measurement: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """ACTS tracks after ambiguity resolution as TRACKS columns (``hepgan.io.schema``).

    Args:
        tracks: the event's ``ConstTrackContainer``.
        hit_of_measurement: hit index of each measurement index; None when they are equal
            (``hepgan simulate`` writes one hit per measurement, in measurement order).
    """
    n = len(tracks)
    # The container's column properties are numpy views on memory ACTS frees when the event
    # ends (no owner is kept): copy every one of them before buffering.
    # an event without tracks (a ttbar pile-up 0 event can have none) has an empty parameters
    # column that reshape(0, -1) refuses
    params = np.array(tracks.parameters, np.float64, copy=True).reshape(n, -1) if n else np.zeros((0, 6))
    cov = np.array(tracks.covariance, np.float64, copy=True).reshape(n, 6, 6) if n else np.zeros((0, 6, 6))
    errors = np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 0.0, None))
    hit_lists = [_track_hit_indices(t) for t in tracks]
    nhits = np.array([len(h) for h in hit_lists], np.int32)
    n_meas = np.array(tracks.nMeasurements, np.int64, copy=True)
    if not np.array_equal(nhits, n_meas):
        msg = f"track measurement states {nhits} disagree with nMeasurements {n_meas}"
        raise RuntimeError(msg)
    out = {}
    for col, name in enumerate(_PERIGEE):
        out[f"track_{name}"] = params[:, col].astype(np.float32) if n else np.zeros(0, np.float32)
        out[f"track_err_{name}"] = errors[:, col].astype(np.float32)
    # the perigee block of ACTS's bound covariance (its sixth parameter, time, is not ours)
    for name in COVARIANCE_BRANCHES:
        a, b = (_PERIGEE.index(x) for x in name.removeprefix("track_cov_").split("_"))
        out[name] = cov[:, a, b].astype(np.float32)
    out["track_chi2"] = np.array(tracks.chi2, np.float32, copy=True).reshape(n)
    out["track_ndf"] = np.array(tracks.ndf, np.int32, copy=True).reshape(n)
    out["track_nhits"] = nhits
    out["track_score"] = np.ones(n, np.float32)  # ACTS tracks are certain by convention
    flat = np.asarray([i for h in hit_lists for i in h], np.int64)
    if hit_of_measurement is not None:
        flat = hit_of_measurement[flat]
    out["track_hit_index"] = flat.astype(np.int32)
    return out
