"""The ONNX engine: hits of one event -> surrogate tracks, with onnxruntime and numba only.

Chain per event (each stage timed, ms)::

    seeding     hepgan.reco.seeding.find_seeds                 (n_seeds, 3) hit indices
    features    hepgan.reco.features.build_features            (n_seeds, F) float32, candidates (n_seeds, L, K)
                (in two passes with the preselection, hepgan.reco.ambiguity.preselect_seeds,
                between them: the road of every seed, the fit of the seeds kept)
    network     model.onnx (condition, noise) -> params, params_std, score, hit_prob
    assignment  seed hits + up to two candidates per surface with hit_prob >= hit_threshold;
                after ambiguity resolution, the chosen tracks' completion (hepgan.reco.completion:
                inner and skipped pixel layers, overlapping modules), timed here too
    ambiguity   hepgan.reco.ambiguity.resolve (greedy by score, then hit count)

Then the leftover pass, as iterative tracking (CMS's iterations, ACTS's seeding from the hits
left over) does it: the same chain once more over the hits no track of the first pass took,
seeded down to ``AssignmentConfig.leftover_pt_min`` (0.3 GeV against the first pass's 0.4),
its tracks appended. Why: at pile-up the first pass's seeds of a particle are crowded out
(two kept per middle hit) or lose the ambiguity resolution to other tracks' hits; on the
leftover hits they are found, and so are particles below the first pass's seeding pT, which
carry a third of the TrackML score's weight at pile-up 200. Measured on tuning events (ttbar
seed 5200, pile-up 200, 4 events): efficiency pT > 0.5 GeV 8732 -> 8820 of 8930, pT > 1
3077 -> 3087 of 3095, TrackML score 0.481 -> 0.547 (ACTS-5 0.500), fakes 0.52% -> 0.67%;
pile-up 50 (5050): pT > 0.5 3956 -> 3976 of 3992, TrackML 0.520 -> 0.587; pile-up 0 (5001):
0.688 -> 0.723; guns 20 x 50 (3011): 9991 -> 9999 of 10000, no fake. Seeding the leftover
pass from 0.4 GeV gains the efficiency but not the score (0.489); from 0.25 the score (0.572)
at 0.88% fakes; keeping only its tracks below 0.4 GeV the score (0.539) but not the efficiency.
The seeds that repeat an earlier seed's segment are dropped before the features in both
passes (:func:`hepgan.reco.seeding.drop_duplicate_seeds`; ``AssignmentConfig.drop_duplicate_seeds``,
on by default): a third to two thirds of the seeds, for the same efficiency. And the first
pass seeds only |d0| < ``AssignmentConfig.prompt_d0_max`` (1 mm, against the model's 5 mm and
2.5 mm from the first layer), leaving the displaced particles to the leftover pass, which seeds
with the model's cuts (:meth:`Engine.pass_seeding`): prompt and displaced iterations, as
iterative tracking has them. The d0 allowance was the larger part of the doublets' phi window
(at 0.4 GeV and 1 mm from the first layer, 0.04 rad of d0 against 0.03 of curvature); on
tuning events (``benchmarks/ablation_leftover.py``) the seeding took 20% less time at pile-up
200 and 34% less on guns 100 x 50. The leftover pass keeps three seeds per middle hit
(``AssignmentConfig.leftover_seeds_per_middle``; the first pass the model's two): seeded down to
0.3 GeV with the wide |d0| window, its seeds compete with the low-pT combinatorics, and with two
the displaced particles of pT 0.5-1 GeV the prompt pass left to it lost their places (tuning
seed 5201, pile-up 200: 738 of 856 found, 752 before the prompt pass, 748 with three). With
both, against the engine before them (leftover pass, no duplicate drop): efficiency pT > 1 /
> 0.5 GeV at pile-up 200 0.9974 / 0.9885 against 0.9974 / 0.9877 (seed 5200) and 0.9982 /
0.9891 against 0.9974 / 0.9886 (5201), fakes 0.70% / 0.80% against 0.67% / 0.81%, for 0.81x /
0.87x the time, 0.77x at 100 x 50 (one interleaved run).

Errors: ``track_err_*`` and ``track_cov_*`` from the model's error model
(:mod:`hepgan.reco.uncertainty`, against the truth), ``track_spread_*`` the sampled spread.

The model file and its interface are :mod:`hepgan.reco.model_file`'s: it is read and checked
(``onnx.checker``, the ``hepgan`` metadata, the graph's inputs and outputs) before any
onnxruntime session exists, so a wrong file fails with one line naming it and what was
expected. Hit assignment is :mod:`hepgan.reco.assignment`'s.

Noise is drawn per event from ``numpy.random.default_rng([seed, event_id])`` (the leftover
pass: ``[seed, event_id, 1]``): the tracks of an event depend on the event and the seed only,
not on batching, chunking or which worker processed it.

Nothing here imports TensorFlow or keras (``tests/test_engine.py`` checks it in a clean
interpreter): inference needs numpy, numba, awkward, uproot and onnxruntime only.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hepgan.errors import InputError
from hepgan.io.schema import TRACK_PARAMETERS, TRACKS
from hepgan.reco.ambiguity import AmbiguityConfig, preselect_seeds, resolve
from hepgan.reco.assignment import AssignmentConfig, assign_hits
from hepgan.reco.completion import complete_tracks
from hepgan.reco.features import fit_features, hit_polar, layer_table, road_features
from hepgan.reco.model_file import OUTPUTS, is_dynamic, read_model_info, shipped_model_path
from hepgan.reco.seeding import SeedingConfig, drop_duplicate_seeds, find_seeds
from hepgan.reco.uncertainty import covariance_columns

__all__ = ["ENGINE_STAGES", "NETWORK_BATCH", "Engine", "antithetic_normal", "cached_engine", "empty_tracks"]

log = logging.getLogger(__name__)

#: Seeds per network call. Why not more: the sampled head's intermediate tensors (seeds x M
#: samples x width floats) then stay in the core's cache; on ttbar pile-up 200 (tuning seed
#: 5200) the network took 0.82x the time of 8192 per call in isolation, 0.88x in the engine.
NETWORK_BATCH = 512

#: Stages timed by :meth:`Engine.reconstruct_event`, in chain order (ms per event each).
ENGINE_STAGES = ("seeding", "features", "network", "assignment", "ambiguity")

# Defaults of Engine's cuts (frozen dataclasses: one shared instance is safe).
_ASSIGNMENT = AssignmentConfig()
_AMBIGUITY = AmbiguityConfig()


def antithetic_normal(rng: np.random.Generator, n: int, m: int, z: int) -> np.ndarray:
    """(n, m, z) float32 standard normal noise whose samples come in pairs (e, -e) (the last
    one alone when m is odd).

    Why: the track parameters are the mean over the m samples, and that mean carries
    Monte-Carlo noise of spread / sqrt(m); with antithetic pairs the noise of a head that is
    nearly linear in e cancels. Measured on the validation seeds (shipped model, 16 samples):
    z0 and theta of the mean 6% closer to ACTS's than with independent samples, the spread
    unchanged.
    """
    half = rng.standard_normal((n, m // 2, z), dtype=np.float32)
    parts = [half, -half]
    if m % 2:
        parts.append(rng.standard_normal((n, 1, z), dtype=np.float32))
    return np.concatenate(parts, axis=1)


def empty_tracks() -> dict[str, np.ndarray]:
    """A tracks dict (TRACKS branches but event_id) of an event without tracks."""
    return {b.name: np.zeros(0, dtype=b.dtype) for b in TRACKS.branches[1:]}


def _wrap_phi(phi: np.ndarray) -> np.ndarray:
    return (phi + np.pi) % (2 * np.pi) - np.pi


# --------------------------------------------------------------------------- engine
def _resolve_providers(providers: str | Sequence[str] | None) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    short = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
    if providers is None:
        return ["CPUExecutionProvider"]
    if isinstance(providers, str):
        if providers == "auto":  # CUDA first when this onnxruntime has it
            return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        providers = [providers]
    chosen = []
    for p in providers:
        name = short.get(p.lower(), p)
        if name not in available:
            msg = f"onnxruntime provider {p!r} is not available here; available: {available} (or 'auto')"
            raise InputError(msg)
        chosen.append(name)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")  # fallback for operators the accelerator lacks
    return chosen


class Engine:
    """One onnxruntime session and the chain around it (module docstring).

    Args:
        model_path: the model file (``None``: :func:`shipped_model_path`).
        threads: events reconstructed at once, one thread each, by
            :func:`hepgan.reco.parallel.reconstruct_events` (the file driver and the bench);
            :meth:`reconstruct_event` itself runs on the calling thread. The onnxruntime
            session has one intra-op thread whatever this is (see ``_make_session``).
        providers: ``None`` (CPU), ``'auto'`` (CUDA first when available), or a list of
            onnxruntime provider names or the short names ``'cpu'``, ``'cuda'``.
        batch_size: seeds per network call (bounds memory: batch_size x M x Z noise floats).
        seed: base of the per-event noise seeds.
        assignment: hit assignment and track selection cuts.
        ambiguity: the resolver's sharing cuts.

    Create one per process (see :func:`cached_engine`): building the session costs
    milliseconds to seconds. :meth:`reconstruct_event` may be called from several threads at
    once (it changes nothing of the engine's).
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        *,
        threads: int = 1,
        providers: str | Sequence[str] | None = None,
        batch_size: int = NETWORK_BATCH,
        seed: int = 0,
        assignment: AssignmentConfig = _ASSIGNMENT,
        ambiguity: AmbiguityConfig = _AMBIGUITY,
    ) -> None:
        if threads < 1 or batch_size < 1:
            msg = f"threads and batch_size must be >= 1, got {threads}, {batch_size}"
            raise InputError(msg)
        path = Path(model_path) if model_path is not None else shipped_model_path()
        # Checked before the session: onnxruntime's own errors on a wrong file are long and
        # do not say what hepgan expected.
        self.info = read_model_info(path)
        self.path = path
        self._warned_no_errors = False
        self.threads = int(threads)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.assignment = assignment
        self.ambiguity = ambiguity
        self.geometry = self.info.geometry
        self.feature_config = self.info.feature_config
        self.seeding_config = self.info.seeding_config
        self._table = layer_table(self.geometry, self.feature_config)
        self.providers = _resolve_providers(providers)
        self._session = self._make_session()
        noise_dims = next(i.shape for i in self._session.get_inputs() if i.name == "noise")
        self._dynamic_samples = len(noise_dims) == 3 and is_dynamic(noise_dims[1])

    def _make_session(self) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # One thread per run: the cores go to events in parallel (hepgan.reco.parallel), each
        # running its own network calls; intra-op threads gained 2% at ttbar pile-up 200 (the
        # network is a tenth of an event) and would contend with the other events' kernels.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads would burn the cores other workers of a Dask cluster need.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        try:
            return ort.InferenceSession(str(self.path), sess_options=opts, providers=self.providers)
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph classes
            msg = f"{self.path}: onnxruntime cannot load the model: {str(err).strip().splitlines()[0]}"
            raise InputError(msg) from err

    def __repr__(self) -> str:
        return f"Engine({str(self.path)!r}, threads={self.threads}, providers={self.providers})"

    # ------------------------------------------------------------------ checks
    def check_geometry(self, volume_id: np.ndarray, layer_id: np.ndarray, source: str = "hits") -> None:
        """Raise ``InputError`` naming `source` when hits lie on layers the model's geometry
        lacks (the model has never seen them; its answer there would be a guess)."""
        self.geometry.check_hits(np.asarray(volume_id), np.asarray(layer_id), source=f"{source} (model {self.path.name})")

    # ------------------------------------------------------------------ network
    def noise(self, event_id: int, n_seeds: int, stream: int = 0) -> np.ndarray:
        """(n_seeds, M, Z) float32 standard normal noise of one event, from (seed, event_id) for
        the first pass, (seed, event_id, stream) for the leftover pass (stream 1), antithetic
        (see ``antithetic_normal``)."""
        key = [self.seed % (1 << 63), int(event_id) % (1 << 63)] + ([int(stream)] if stream else [])
        rng = np.random.default_rng(key)
        return antithetic_normal(rng, n_seeds, self.info.n_samples, self.info.noise_dim)

    def run_network(self, features: np.ndarray, noise: np.ndarray) -> dict[str, np.ndarray]:
        """Network outputs for (n, F) features and (n, M, Z) noise, in batches of batch_size."""
        n = len(features)
        outs: dict[str, list[np.ndarray]] = {k: [] for k in OUTPUTS}
        for lo in range(0, n, self.batch_size):
            hi = min(lo + self.batch_size, n)
            res = self._session.run(list(OUTPUTS), {"condition": features[lo:hi], "noise": noise[lo:hi]})
            for k, v in zip(OUTPUTS, res, strict=True):
                outs[k].append(v)
        if n == 0:
            m = self.info
            shapes = {"params": (0, 5), "params_std": (0, 5), "score": (0,), "hit_prob": (0, m.n_slots, m.n_candidates)}
            return {k: np.zeros(s, np.float32) for k, s in shapes.items()}
        return {k: np.concatenate(v) for k, v in outs.items()}

    def warn_if_no_error_model(self) -> None:
        """Say once (per engine) that this model's tracks will carry NaN errors; the file driver
        calls it when it starts on an input it accepted, so a refused input stays one line."""
        if self.info.error_model is None and not self._warned_no_errors:
            log.warning("%s has no error model: its tracks' track_err_* and track_cov_* are NaN "
                        "(fit one against truth with 'hepgan calibrate')", self.path)
            self._warned_no_errors = True

    def _errors(self, theta: np.ndarray, qop: np.ndarray, quality: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """``track_err_*`` and ``track_cov_*`` from the model's error model (against the truth;
        NaN when the model has none: the spread is no substitute, it is 4-7x narrower), with its
        per-track quality term applied to `quality` (`road_ambiguous_surfaces`)."""
        model = self.info.error_model
        if model is None:
            cov = np.full((len(theta), 5, 5), np.nan)
        else:
            cov = model.covariance(theta.astype(np.float64), qop.astype(np.float64), quality)
        out = {f"track_err_{p}": np.sqrt(cov[:, j, j]).astype(np.float32) for j, p in enumerate(TRACK_PARAMETERS)}
        out.update(covariance_columns(cov))
        return out

    # ------------------------------------------------------------------ the chain
    def reconstruct_event(
        self,
        x: np.ndarray,
        y: np.ndarray,
        z: np.ndarray,
        volume_id: np.ndarray,
        layer_id: np.ndarray,
        *,
        event_id: int = 0,
        quality: bool = False,
    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """Tracks of one event.

        Args:
            x, y, z: (n_hits,) hit positions (mm).
            volume_id, layer_id: (n_hits,) geometry ids; hits on layers the model's geometry
                lacks are ignored (call :meth:`check_geometry` first to refuse them).
            event_id: the event's id, which seeds its noise.
            quality: also return ``road_ambiguous_surfaces`` (n_tracks,) int32, the error
                model's per-track quality variable (not a branch; `hepgan.ml.error_model` fits on it).

        Returns:
            ``(tracks, ms)``: ``tracks`` maps every TRACKS branch but ``event_id`` to a numpy
            array: one value per track (``track_d0`` ... float32, ``track_ndf`` /
            ``track_nhits`` int32) and ``track_hit_index`` (sum(track_nhits),) int32 indices
            into this event's hits, tracks concatenated in order, each track's seed hits
            (inner -> outer, after the hits on pixel layers inside them and each followed by its
            overlapping module's hit where there is one, `hepgan.reco.completion`) first and
            then its hits on the surfaces crossed after them.
            The first pass's tracks come best first (score, then hits), then the leftover
            pass's (``AssignmentConfig.leftover_pt_min``), best first. ``ms`` holds the
            milliseconds of each of :data:`ENGINE_STAGES`, both passes together.
        """
        ms = dict.fromkeys(ENGINE_STAGES, 0.0)
        t0 = time.perf_counter()
        layer = self.geometry.layer_index(volume_id, layer_id)
        ms["seeding"] += (time.perf_counter() - t0) * 1e3
        first, leftover = self.pass_seeding()
        # the hits' r and phi, once for the features and the completion of both passes
        t0 = time.perf_counter()
        polar = hit_polar(x, y)
        ms["features"] += (time.perf_counter() - t0) * 1e3
        tracks = self._pass(x, y, z, volume_id, layer_id, layer, polar, first, event_id, 0, quality, ms)
        if leftover is not None:
            # the leftover pass: the hits no track took
            left = layer.copy()
            left[tracks["track_hit_index"]] = -1
            more = self._pass(x, y, z, volume_id, layer_id, left, polar, leftover, event_id, 1, quality, ms)
            tracks = {k: np.concatenate([v, more[k]]) for k, v in tracks.items()}
        return tracks, ms

    def pass_seeding(self) -> tuple[SeedingConfig, SeedingConfig | None]:
        """The seeder's cuts of the first pass and of the leftover pass (None without one):
        the first pass the model's, its |d0| cuts narrowed to ``AssignmentConfig.prompt_d0_max``
        and confirmed triplets only up to ``prompt_confirmed_eta_max`` when there is a
        leftover pass; the leftover pass the model's, pT down to ``leftover_pt_min``,
        ``leftover_seeds_per_middle`` seeds kept per middle hit."""
        model = self.seeding_config
        pt_min, d0 = self.assignment.leftover_pt_min, self.assignment.prompt_d0_max
        if pt_min <= 0.0:
            return model, None
        first = model
        if d0 > 0.0:
            first = dataclasses.replace(model, d0_max=min(model.d0_max, d0),
                                        d0_max_first_layer=min(model.d0_max_first_layer, d0))  # fmt: skip
        if self.assignment.prompt_confirmed_eta_max > 0.0:
            first = dataclasses.replace(first, confirmed_eta_max=self.assignment.prompt_confirmed_eta_max)
        return first, dataclasses.replace(model, pt_min=pt_min, max_seeds_per_middle=self.assignment.leftover_seeds_per_middle)

    def _pass(self, x, y, z, volume_id, layer_id, layer, polar, seeding_config, event_id: int, stream: int,
              quality: bool, ms: dict[str, float]) -> dict[str, np.ndarray]:  # fmt: skip
        """One pass of the chain over the hits with ``layer >= 0``: its tracks, as
        :meth:`reconstruct_event` returns them; its stage times are added to `ms`; `stream`
        picks the pass's noise (:meth:`noise`)."""
        n_hits = len(x)
        t0 = time.perf_counter()
        seeds = find_seeds(x, y, z, volume_id, layer_id, geometry=self.geometry, config=seeding_config, layer=layer)
        if self.assignment.drop_duplicate_seeds:
            seeds = drop_duplicate_seeds(x, y, seeds)
        t1 = time.perf_counter()
        ms["seeding"] += (t1 - t0) * 1e3
        road = road_features(x, y, z, layer, seeds, config=self.feature_config, table=self._table,
                             geometry=self.geometry, polar=polar)  # fmt: skip
        if self.assignment.preselect:
            # reads no fit column: the fit (half the features' cost) runs on the kept seeds only
            chosen_seeds = np.flatnonzero(preselect_seeds(
                seeds, road.candidates, road.features, n_hits=n_hits, n_candidates=self.feature_config.candidates,
                chi2_cut=self.assignment.preselect_chi2,
            ))  # fmt: skip
            seeds, feats, cand = seeds[chosen_seeds], fit_features(road, chosen_seeds), road.candidates[chosen_seeds]
        else:
            feats, cand = fit_features(road), road.candidates
        t2 = time.perf_counter()
        ms["features"] += (t2 - t1) * 1e3
        # Two passes when the model's samples axis is dynamic: score and hit probabilities of
        # every seed need one noise sample (the encoder runs once per seed either way), and the
        # M samples of the parameters are drawn only for the tracks that survive ambiguity
        # resolution, about one seed in five: the sampled head is most of the network's cost.
        # After the preselection nearly every seed becomes a track, so one pass with all samples
        # is cheaper than a scoring pass plus a sampling pass over the same seeds.
        two_pass = self._dynamic_samples and not self.assignment.preselect
        first_noise = (
            np.zeros((len(seeds), 1, self.info.noise_dim), np.float32) if two_pass
            else self.noise(event_id, len(seeds), stream)
        )  # fmt: skip
        net = self.run_network(feats, first_noise)
        t3 = time.perf_counter()
        ms["network"] += (t3 - t2) * 1e3
        keep, hits, nhits, chi2, ndf = assign_hits(
            seeds, cand, net["hit_prob"], feats, net["score"], config=self.assignment,
            n_candidates=self.feature_config.candidates,
        )  # fmt: skip
        t4 = time.perf_counter()
        ms["assignment"] += (t4 - t3) * 1e3
        score = net["score"][keep]
        chosen = resolve(hits, nhits, score, n_hits=max(n_hits, 1), config=self.ambiguity)
        start = np.zeros(len(nhits) + 1, dtype=np.int64)
        np.cumsum(nhits, out=start[1:])
        # Gather the chosen candidates' hit ranges in one vectorised step.
        lengths = nhits[chosen]
        out_start = np.cumsum(lengths) - lengths
        flat = hits[np.repeat(start[chosen] - out_start, lengths) + np.arange(lengths.sum())]
        sel = keep[chosen]
        if two_pass:
            t_net = time.perf_counter()
            sampled = self.run_network(feats[sel], self.noise(event_id, len(sel), stream))
            net_ms = (time.perf_counter() - t_net) * 1e3
            ms["network"] += net_ms
            params, errs = sampled["params"], sampled["params_std"]
        else:
            net_ms = 0.0
            params = net["params"][sel]
            errs = net["params_std"][sel]
        tracks: dict[str, np.ndarray] = {}
        for j, p in enumerate(TRACK_PARAMETERS):
            values = params[:, j]
            if p == "phi":  # the network may leave (-pi, pi]; downstream compares angles
                values = _wrap_phi(values)
            tracks[f"track_{p}"] = np.asarray(values, dtype=np.float32)
        # the error model's per-track quality (hepgan.reco.uncertainty): the surfaces along the
        # road where more than one candidate hit was on offer, known before the completion, so
        # the completion's windows and track_err_* are the same errors
        ambiguous = road_ambiguous_surfaces(cand[sel])
        errors = self._errors(tracks["track_theta"], tracks["track_qop"], ambiguous)
        t_overlap = time.perf_counter()
        flat, counts = complete_tracks(
            x, y, z, layer, flat, nhits[chosen], params,
            np.stack([errors[f"track_err_{p}"] for p in TRACK_PARAMETERS], axis=1),
            geometry=self.geometry, bfield=self.feature_config.bfield,
            resolution=self._table.sigma0, polar=polar,
        )  # fmt: skip
        overlap_ms = (time.perf_counter() - t_overlap) * 1e3
        tracks.update(errors)
        for j, p in enumerate(TRACK_PARAMETERS):
            tracks[f"track_spread_{p}"] = np.asarray(errs[:, j] * self.info.spread_scale[j], dtype=np.float32)
        tracks["track_chi2"] = chi2[chosen].astype(np.float32)
        tracks["track_ndf"] = ndf[chosen].astype(np.int32)
        tracks["track_nhits"] = counts.astype(np.int32)
        tracks["track_score"] = np.asarray(net["score"][sel], dtype=np.float32)
        tracks["track_hit_index"] = flat.astype(np.int32)
        if quality:
            tracks["road_ambiguous_surfaces"] = ambiguous
        ms["ambiguity"] += (time.perf_counter() - t4) * 1e3 - net_ms - overlap_ms
        ms["assignment"] += overlap_ms
        return tracks


def road_ambiguous_surfaces(candidates: np.ndarray) -> np.ndarray:
    """Per track, the surfaces of its road (candidates (n, L, K) hit indices, -1: none) that
    held more than one candidate hit: the error model's quality variable (int32)."""
    return ((candidates >= 0).sum(axis=2) > 1).sum(axis=1).astype(np.int32)


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int, size: int, options: tuple) -> Engine:
    return Engine(path, **dict(options))


def cached_engine(model_path: str | os.PathLike | None = None, **options: Any) -> Engine:
    """The process's Engine for this model file and these options (created on first use).

    Keyed by the file's path, modification time and size, so a replaced model is reloaded.
    Dask workers call this once per task and build one session per process.
    """
    path = Path(model_path) if model_path is not None else shipped_model_path()
    try:
        st = path.stat()
    except OSError as err:
        msg = f"{path}: no such model file"
        raise InputError(msg) from err
    return _cached(str(path.resolve()), st.st_mtime_ns, st.st_size, tuple(sorted(options.items())))
