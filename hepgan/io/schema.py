"""The event file format: trees, branches, dtypes and units (docs/file-format.md).

One entry per event in every tree. Jagged branches hold one list per event; branches that share
a collection (``hit_x``, ``hit_y``, ... in collection ``hit``) share one counter branch
(``nhit``), which is how uproot writes a record of lists. Truth branches are marked so that the
reconstruction can prove it never reads them.

Units: mm, GeV, rad, tesla, ns. Perigee parameters follow ACTS: d0, z0, phi, theta, qop (= q/p).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ACTS_TIMING",
    "CLASSIC_TRACKS",
    "COVARIANCE_BRANCHES",
    "HITS",
    "PARTICLES",
    "SCHEMAS",
    "SPREAD_BRANCHES",
    "TRACKS",
    "TRACK_PARAMETERS",
    "Branch",
    "TreeSchema",
]

TRACK_PARAMETERS = ("d0", "z0", "phi", "theta", "qop")


@dataclass(frozen=True)
class Branch:
    """One branch: its name, numpy dtype, and whether it is jagged (one list per event).

    `collection` groups jagged branches that share a counter: ``hit`` for ``hit_x``.
    `optional` branches may be absent from a file (older files, imports): readers skip them
    there, and a writer given `TreeSchema.required` does not write them.
    """

    name: str
    dtype: np.dtype
    jagged: bool = False
    truth: bool = False
    unit: str = ""
    collection: str | None = None
    optional: bool = False

    @property
    def kind(self) -> str:
        """'f' for floating point, 'i' for integer, 'b' for boolean."""
        return np.dtype(self.dtype).kind


@dataclass(frozen=True)
class TreeSchema:
    """A tree of the event format; `branches` in writing order, `event_id` first."""

    name: str
    branches: tuple[Branch, ...]
    truth: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.branches)

    def branch(self, name: str) -> Branch:
        for b in self.branches:
            if b.name == name:
                return b
        raise KeyError(name)

    def reco_names(self) -> tuple[str, ...]:
        """Branches the reconstruction may read (no truth)."""
        return tuple(b.name for b in self.branches if not b.truth)

    def without(self, *names: str) -> TreeSchema:
        """This tree without the named branches (a writer that has no values for them)."""
        return TreeSchema(self.name, tuple(b for b in self.branches if b.name not in names), self.truth)

    def required(self) -> TreeSchema:
        """This tree without its optional branches (what a writer without them writes)."""
        return TreeSchema(self.name, tuple(b for b in self.branches if not b.optional), self.truth)


def _jagged(collection: str, field: str, dtype, *, truth: bool = False, unit: str = "", optional: bool = False) -> Branch:
    name = f"{collection}_{field}"
    return Branch(name, np.dtype(dtype), jagged=True, truth=truth, unit=unit, collection=collection, optional=optional)


_EVENT_ID = Branch("event_id", np.dtype(np.int64))

HITS = TreeSchema(
    "hits",
    (
        _EVENT_ID,
        _jagged("hit", "x", np.float32, unit="mm"),
        _jagged("hit", "y", np.float32, unit="mm"),
        _jagged("hit", "z", np.float32, unit="mm"),
        _jagged("hit", "volume_id", np.int32),
        _jagged("hit", "layer_id", np.int32),
        _jagged("hit", "module_id", np.int32),
        _jagged("hit", "particle_id", np.int64, truth=True),
        _jagged("hit", "tx", np.float32, truth=True, unit="mm"),
        _jagged("hit", "ty", np.float32, truth=True, unit="mm"),
        _jagged("hit", "tz", np.float32, truth=True, unit="mm"),
    ),
)

PARTICLES = TreeSchema(
    "particles",
    (
        _EVENT_ID,
        _jagged("particle", "id", np.int64, truth=True),
        _jagged("particle", "q", np.int32, truth=True, unit="e"),
        _jagged("particle", "px", np.float32, truth=True, unit="GeV"),
        _jagged("particle", "py", np.float32, truth=True, unit="GeV"),
        _jagged("particle", "pz", np.float32, truth=True, unit="GeV"),
        _jagged("particle", "vx", np.float32, truth=True, unit="mm"),
        _jagged("particle", "vy", np.float32, truth=True, unit="mm"),
        _jagged("particle", "vz", np.float32, truth=True, unit="mm"),
        _jagged("particle", "pdg", np.int32, truth=True),
        _jagged("particle", "nhits", np.int32, truth=True),
        # generator-level particle (True) or a Fatras interaction product (False)
        _jagged("particle", "primary", np.bool_, truth=True),
        # Optional (hepgan simulate writes them; older files and imports lack them). The
        # collision a particle comes from: ACTS barcode's primary-vertex id, 1 = the hard
        # scatter, read first (the gun: 1 = its first vertex); hard_scatter = (that id == 1).
        # vertex_secondary: id of the displaced decay vertex (b/c hadrons, taus, V0s) the
        # particle comes from inside its collision, 0 = prompt (from the collision point).
        _jagged("particle", "hard_scatter", np.bool_, truth=True, optional=True),
        _jagged("particle", "vertex_primary", np.int32, truth=True, optional=True),
        _jagged("particle", "vertex_secondary", np.int32, truth=True, optional=True),
    ),
    truth=True,
)

_TRACK_UNITS = {"d0": "mm", "z0": "mm", "phi": "rad", "theta": "rad", "qop": "e/GeV"}

#: The 15 independent entries of each track's 5 x 5 perigee covariance, upper triangle row by
#: row in ACTS's order: ``track_cov_d0_d0, track_cov_d0_z0, ..., track_cov_qop_qop``.
COVARIANCE_BRANCHES = tuple(
    f"track_cov_{a}_{b}" for i, a in enumerate(TRACK_PARAMETERS) for b in TRACK_PARAMETERS[i:]
)
#: The surrogate's sampled spread around the classic answer (not an error against the truth).
SPREAD_BRANCHES = tuple(f"track_spread_{p}" for p in TRACK_PARAMETERS)


def _unit_of_pair(name: str) -> str:
    a, b = name.removeprefix("track_cov_").split("_")  # parameter names hold no underscore
    ua, ub = _TRACK_UNITS[a], _TRACK_UNITS[b]
    if ua == ub:
        return f"({ua})^2" if "/" in ua else f"{ua}^2"
    return f"{ua}*{ub}"

TRACKS = TreeSchema(
    "tracks",
    (
        _EVENT_ID,
        *(_jagged("track", p, np.float32, unit=_TRACK_UNITS[p]) for p in TRACK_PARAMETERS),
        # the error against the true particle: sqrt of the covariance's diagonal (ACTS: the
        # Kalman fit's; the surrogate: its error model, hepgan.reco.uncertainty)
        *(_jagged("track", f"err_{p}", np.float32, unit=_TRACK_UNITS[p]) for p in TRACK_PARAMETERS),
        # optional: files written before the covariance was recorded lack it
        *(Branch(n, np.dtype(np.float32), jagged=True, unit=_unit_of_pair(n), collection="track", optional=True)
          for n in COVARIANCE_BRANCHES),
        # surrogate only: the sampled spread around the classic answer (hepgan calibrate)
        *(_jagged("track", f"spread_{p}", np.float32, unit=_TRACK_UNITS[p], optional=True) for p in TRACK_PARAMETERS),
        _jagged("track", "chi2", np.float32),
        _jagged("track", "ndf", np.int32),
        _jagged("track", "nhits", np.int32),
        _jagged("track", "score", np.float32),
        # Its own collection: one level of jaggedness only, so the hits of all tracks of an
        # event are concatenated and `track_nhits` gives the counts.
        Branch("track_hit_index", np.dtype(np.int32), jagged=True, collection="track_hit_index"),
    ),
)

#: The tracks tree as the classic algorithm writes it (it has no sampled spread).
CLASSIC_TRACKS = TRACKS.without(*SPREAD_BRANCHES)

ACTS_TIMING = TreeSchema(
    "acts_timing",
    (
        _EVENT_ID,
        *(
            Branch(f"acts_{stage}_ms", np.dtype(np.float64), unit="ms")
            for stage in ("simulation", "digitization", "seeding", "ckf", "ambiguity", "total_reco")
        ),
    ),
)

SCHEMAS = {s.name: s for s in (HITS, PARTICLES, TRACKS, ACTS_TIMING)}


# Particle ids pack ACTS's barcode into one non-negative int64, most significant first:
# vertexPrimary 11 | vertexSecondary 12 | particle 16 | generation 8 | subParticle 16 bits.
# 0 stays free for noise hits because vertexPrimary starts at 1 (and particle at 1).
PARTICLE_ID_FIELDS = (("vertex_primary", 11), ("vertex_secondary", 12), ("particle", 16), ("generation", 8), ("sub_particle", 16))


def pack_particle_id(vertex_primary, vertex_secondary, particle, generation, sub_particle) -> np.ndarray:
    """Vectorised ACTS barcode -> int64 particle id (see PARTICLE_ID_FIELDS); arrays of equal shape."""
    out = np.zeros(np.shape(vertex_primary), dtype=np.int64)
    for (name, bits), value in zip(
        PARTICLE_ID_FIELDS, (vertex_primary, vertex_secondary, particle, generation, sub_particle), strict=True
    ):
        value = np.asarray(value, dtype=np.int64)
        if np.any((value < 0) | (value >= (1 << bits))):
            msg = f"barcode field {name} outside [0, {1 << bits}): {value[(value < 0) | (value >= (1 << bits))][:3]}"
            raise ValueError(msg)
        out = (out << bits) | value
    return out
