"""The ACTS simulation + reconstruction chain behind ``hepgan simulate``.

Everything is constructed here from ACTS (pyacts 48.1.0) Config objects with documented
numbers, instead of the ``acts.examples.simulation.addXxx`` / ``reconstruction.addXxx``
helpers, so that every cut is visible in one place and cannot drift with the helpers.
Sources quoted below:

* ``full_chain_test.py``: ``Examples/Scripts/Python/full_chain_test.py`` in acts-project/acts,
  branch for ``--generic-detector`` (the maintained reference full chain).
* ``generic-digi-smearing-config.json`` / ``generic-seeding-config.json``: files in
  ``Examples/Configs``; pyacts does not install them, so their numbers are reproduced here.

Units follow ACTS: mm, GeV, rad, ns; ``acts.UnitConstants`` is used for every literal.

Keep the :class:`ActsChain` object alive until the sequencer has run: the tracking geometry
does not own the detector elements, and dropping the ``GenericDetector`` Python object
destroys them ("pure virtual method called" abort).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import acts
import acts.examples
import acts.examples.hepmc3  # noqa: F401  (registers HepMC3InputConverter)
import acts.examples.json

from hepgan.acts.config import ChainConfig

u = acts.UnitConstants
logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------
# Detector description numbers
# ---------------------------------------------------------------------------------------

#: Pixel, short-strip and long-strip volume ids of the generic detector (endcap-, barrel,
#: endcap+ each).
PIXEL_VOLUMES = (7, 8, 9)
SHORT_STRIP_VOLUMES = (12, 13, 14)
LONG_STRIP_VOLUMES = (16, 17, 18)

#: Gaussian smearing widths (mm) of the two local coordinates per volume, exactly the
#: numbers of ``generic-digi-smearing-config.json``: pitch/sqrt(12) for pixel 50 um x 50 um,
#: short strip 80 um x 1.2 mm and long strip 120 um x 10.8 mm. Both coordinates are smeared
#: in every volume, so every measurement is 2D (loc0, loc1).
DIGI_SMEARING_MM: dict[int, tuple[float, float]] = {
    **{v: (0.05 / math.sqrt(12), 0.05 / math.sqrt(12)) for v in PIXEL_VOLUMES},
    **{v: (0.08 / math.sqrt(12), 1.2 / math.sqrt(12)) for v in SHORT_STRIP_VOLUMES},
    **{v: (0.12 / math.sqrt(12), 10.8 / math.sqrt(12)) for v in LONG_STRIP_VOLUMES},
}

#: (volume, layer) pairs whose measurements become space points for seeding, as in
#: ``generic-seeding-config.json``: the four pixel barrel layers (volume 8) and the four
#: pixel endcap disks next to the barrel on each side (volume 7 layers 8-14, volume 9
#: layers 2-8); the outer disks and the strips give no space points.
SEEDING_LAYERS: tuple[tuple[int, int], ...] = (
    (8, 2), (8, 4), (8, 6), (8, 8),
    (9, 2), (9, 4), (9, 6), (9, 8),
    (7, 14), (7, 12), (7, 10), (7, 8),
)  # fmt: skip


# ---------------------------------------------------------------------------------------
# Per-stage stopwatches
# ---------------------------------------------------------------------------------------


class StageClock:
    """Accumulates wall time (ms) per named stage for the event being processed.

    Only meaningful with ``numThreads=1``: events then run one after another and every
    algorithm of an event runs in sequence order, so start/stop marks bracket exactly the
    ACTS algorithms between them.
    """

    def __init__(self) -> None:
        self._start: dict[str, float] = {}
        self._ms: dict[str, float] = {}

    def start(self, stage: str) -> None:
        """Mark the start of ``stage`` now."""
        self._start[stage] = time.perf_counter()

    def stop(self, stage: str) -> None:
        """Add the time since the matching :meth:`start` to ``stage`` (ms)."""
        t0 = self._start.pop(stage)
        self._ms[stage] = self._ms.get(stage, 0.0) + (time.perf_counter() - t0) * 1e3

    def take(self) -> dict[str, float]:
        """Return this event's ms per stage and reset for the next event."""
        ms, self._ms = self._ms, {}
        if self._start:
            msg = f"stages started but never stopped: {sorted(self._start)}"
            raise RuntimeError(msg)
        return ms


class _Stopwatch(acts.examples.IAlgorithm):
    """Python algorithm that marks the start or the end of a stage on a :class:`StageClock`."""

    def __init__(self, clock: StageClock, stage: str, starting: bool) -> None:
        name = f"Stopwatch_{stage}_{'start' if starting else 'stop'}"
        acts.examples.IAlgorithm.__init__(self, name, acts.logging.WARNING)
        self._clock = clock
        self._stage = stage
        self._starting = starting

    def execute(self, context: acts.examples.AlgorithmContext) -> acts.examples.ProcessCode:
        if self._starting:
            self._clock.start(self._stage)
        else:
            self._clock.stop(self._stage)
        return acts.examples.ProcessCode.SUCCESS


# ---------------------------------------------------------------------------------------
# Chain
# ---------------------------------------------------------------------------------------

#: Whiteboard keys the converter reads.
KEY_PARTICLES = "particles_simulated"
KEY_SIMHITS = "simhits"
KEY_MEASUREMENTS = "measurements"
KEY_MEAS_SIMHITS = "measurement_simhits_map"
KEY_MEAS_PARTICLES = "measurement_particles_map"
KEY_TRACKS = "ambi_tracks"

#: Stage names recorded by the stopwatches, in chain order.
STAGES = ("simulation", "digitization", "seeding", "ckf", "ambiguity")


@dataclass
class ActsChain:
    """A ready-to-run sequencer plus every object that must outlive ``sequencer.run()``."""

    sequencer: acts.examples.Sequencer
    detector: acts.examples.GenericDetector
    tracking_geometry: acts.TrackingGeometry
    field: acts.MagneticFieldProvider
    clock: StageClock
    keep_alive: list = field(default_factory=list)
    generation_s: float = 0.0  # Pythia's time for the collisions, before the sequencer runs

    def run(self) -> None:
        """Run all events (blocking)."""
        self.sequencer.run()

    def close(self) -> None:
        """Remove the temporary digitisation folder, if the chain made one."""
        for obj in self.keep_alive:
            if isinstance(obj, tempfile.TemporaryDirectory):
                obj.cleanup()


def build_detector() -> tuple[acts.examples.GenericDetector, acts.TrackingGeometry]:
    """Build the ACTS generic detector (= TrackML detector) with its default config."""
    config = acts.examples.GenericDetector.Config()
    # its INFO lines go to stdout; keep the command's output for our own summary
    for attr in ("logLevel", "layerLogLevel", "surfaceLogLevel", "volumeLogLevel"):
        setattr(config, attr, acts.logging.WARNING)
    detector = acts.examples.GenericDetector(config)
    return detector, detector.trackingGeometry()


def _digi_config(workdir: Path, smearer: str = "Gauss") -> acts.examples.DigiConfigContainer:
    """Smearing digitisation config equal to ``generic-digi-smearing-config.json``.

    ``smearer="Exact"`` keeps the local position as it is but gives the measurement the same
    covariance: how hits read from a file become ACTS measurements again (``acts_reco``).

    The smearing config type has no Python binding in pyacts 48.1.0, so the numbers of
    :data:`DIGI_SMEARING_MM` are serialised in that file's JSON schema and parsed by ACTS's
    own reader, which yields the identical C++ object.
    """
    entries = [
        {
            "volume": volume,
            "value": {
                "smearing": [
                    {"index": i, "mean": 0.0, "stddev": sigma, "type": smearer}
                    for i, sigma in enumerate(sigmas)
                ]
            },
        }
        for volume, sigmas in sorted(DIGI_SMEARING_MM.items())
    ]
    doc = {
        "acts-geometry-hierarchy-map": {
            "format-version": 0,
            "value-identifier": "digitization-configuration",
        },
        "entries": entries,
    }
    path = workdir / f"generic-digi-{smearer.lower()}-config.json"
    path.write_text(json.dumps(doc, indent=1))
    return acts.examples.json.readDigiConfigFromJson(str(path))


def add_stage(
    s: acts.examples.Sequencer,
    clock: StageClock,
    stage: str,
    algorithms: Sequence[acts.examples.IAlgorithm],
    keep_alive: list,
) -> None:
    """Add ``algorithms`` bracketed by start/stop stopwatches of ``stage``."""
    start, stop = _Stopwatch(clock, stage, True), _Stopwatch(clock, stage, False)
    keep_alive += [start, stop]
    s.addAlgorithm(start)
    for alg in algorithms:
        s.addAlgorithm(alg)
    s.addAlgorithm(stop)


def _generator(cfg: ChainConfig, rnd: acts.examples.RandomNumbers) -> acts.examples.EventGenerator:
    """Particle gun: V Gaussian vertices x M pions of random charge per event."""
    particles = acts.examples.ParametricParticleGenerator(
        p=(cfg.pt_min * u.GeV, cfg.pt_max * u.GeV),
        pTransverse=True,  # the range is in pT, not |p|
        pLogUniform=True,  # flat in log pT: as many 0.5-1 GeV as 5-10 GeV tracks
        eta=(-cfg.eta_max, cfg.eta_max),
        etaUniform=True,  # flat in eta (not cos theta), as full_chain_test.py generic
        phi=(-math.pi, math.pi),
        numParticles=cfg.particles,
        pdg=acts.PdgParticle.ePionPlus,
        randomizeCharge=True,  # pi+ or pi- with equal probability
    )
    vertex = acts.examples.GaussianVertexGenerator(
        mean=acts.Vector4(0, 0, 0, 0),
        # xy width 0.0125 mm as full_chain_test.py's beam spot; z width 50 mm from the
        # benchmark protocol (docs/benchmark-protocol.md) (ACTS uses 55.5 mm for the ODD). No time spread:
        # nothing in the chain uses time.
        stddev=acts.Vector4(
            cfg.vertex_sigma_xy * u.mm, cfg.vertex_sigma_xy * u.mm, cfg.vertex_sigma_z * u.mm, 0.0
        ),
    )
    return acts.examples.EventGenerator(
        level=acts.logging.WARNING,
        generators=[
            acts.examples.EventGenerator.Generator(
                multiplicity=acts.examples.FixedMultiplicityGenerator(n=cfg.vertices),
                vertex=vertex,
                particles=particles,
            )
        ],
        randomNumbers=rnd,
        outputEvent="particle_gun_event",
    )


def _simulation_algorithms(
    cfg: ChainConfig, geo: acts.TrackingGeometry, bfield, rnd
) -> list:
    """HepMC3 event -> generated particles -> Fatras sim hits (all interactions on).

    Collisions add ACTS's generator-level particle selection before Fatras and lower Fatras's
    momentum threshold (:mod:`hepgan.acts.collisions`); the gun keeps the chain it always had,
    so gun files of a given seed stay the same.
    """
    from hepgan.acts import collisions

    converter = acts.examples.hepmc3.HepMC3InputConverter(
        level=acts.logging.WARNING,
        inputEvent=collisions.KEY_EVENT if cfg.collisions else "particle_gun_event",
        outputParticles="particles_generated",
        outputVertices="vertices_generated",
        # one primary vertex per gun vertex; a pruned Pythia collision has exactly one
        # beam vertex, so each collision is one primary vertex either way
        mergePrimaries=False,
    )
    algorithms = [converter]
    fatras_input = "particles_generated"
    extra = {}
    if cfg.collisions:
        fatras_input = "particles_selected"
        algorithms.append(collisions.selection("particles_generated", fatras_input))
        extra["pMin"] = collisions.FATRAS_P_MIN_GEV * u.GeV
    fatras = acts.examples.FatrasSimulation(
        level=acts.logging.WARNING,
        inputParticles=fatras_input,
        outputParticles=KEY_PARTICLES,
        outputSimHits=KEY_SIMHITS,
        randomNumbers=rnd,
        trackingGeometry=geo,
        magneticField=bfield,
        generateHitsOnSensitive=True,  # hits only where a measurement can exist
        # multiple scattering, ionisation, bremsstrahlung and conversions as addFatras
        emScattering=True,
        emEnergyLossIonisation=True,
        emEnergyLossRadiation=True,
        emPhotonConversion=True,
        # gun: pMin stays the Fatras default 0.5 GeV (softer secondaries are not propagated)
        **extra,
    )
    return [*algorithms, fatras]


def digitization_algorithm(geo: acts.TrackingGeometry, rnd, workdir: Path, smearer: str = "Gauss"):
    """Smearing digitisation: one 2D measurement per sensitive sim hit (see :func:`_digi_config`)."""
    cfg = acts.examples.DigitizationAlgorithm.Config(
        digitizationConfigs=_digi_config(workdir, smearer),
        surfaceByIdentifier=geo.geoIdSurfaceMap(),
        randomNumbers=rnd,
        inputSimHits=KEY_SIMHITS,
        outputMeasurements=KEY_MEASUREMENTS,
        outputMeasurementParticlesMap=KEY_MEAS_PARTICLES,
        outputMeasurementSimHitsMap=KEY_MEAS_SIMHITS,
        outputParticleMeasurementsMap="particle_measurements_map",
        outputSimHitMeasurementsMap="simhit_measurements_map",
    )
    return acts.examples.DigitizationAlgorithm(cfg, acts.logging.WARNING)


def seeding_algorithms(cfg: ChainConfig, geo: acts.TrackingGeometry, bfield) -> list:
    """Pixel space points -> grid triplet seeds -> seed track parameters."""
    space_points = acts.examples.SpacePointMaker(
        level=acts.logging.WARNING,
        inputMeasurements="measurement_subset",
        outputSpacePoints="spacepoints",
        trackingGeometry=geo,
        geometrySelection=[
            acts.GeometryIdentifier(volume=volume, layer=layer) for volume, layer in SEEDING_LAYERS
        ],
    )
    seeding = acts.examples.GridTripletSeedingAlgorithm(
        level=acts.logging.WARNING,
        inputSpacePoints="spacepoints",
        outputSeeds="seeds",
        # full_chain_test.py --generic-detector passes no seed-finder arguments, so the
        # generic examples run the GridTripletSeedingAlgorithm.Config defaults of pyacts
        # 48.1.0. They are spelled out here (same values) so that a change of ACTS defaults
        # cannot silently change our reference. These reproduce the reference 20 x 50
        # figures (efficiency 0.996, seeding ~31-39 ms) with maxSeedsPerSpM = 1.
        bFieldInZ=cfg.b_field * u.T,
        minPt=0.4 * u.GeV,  # below the 0.5 GeV gun minimum: no loss at threshold
        cotThetaMax=10.0178804397583,  # = sinh(3): |eta| < 3
        impactMax=20 * u.mm,  # |d0| of the triplet's helix
        deltaRMin=5 * u.mm,  # space-point radial separation in a doublet
        deltaRMax=270 * u.mm,
        rMin=0 * u.mm,
        rMax=600 * u.mm,
        zMin=-2800 * u.mm,
        zMax=2800 * u.mm,
        rMinMiddle=60 * u.mm,  # middle space point: pixel barrel layers 2-3 / disks
        rMaxMiddle=120 * u.mm,
        collisionRegionMin=-150 * u.mm,  # z0 window: 3 sigma of a 50 mm beam spot
        collisionRegionMax=150 * u.mm,
        sigmaScattering=5.0,
        radLengthPerSeed=0.05,
        # seeds kept per middle space point: 1 in the reference configuration, docs/benchmark-protocol.md (0.935 at
        # 100 x 50); ACTS's default 5 gives 0.980 there and doubles the CKF time.
        maxSeedsPerSpM=cfg.seeds_per_middle_sp,
    )
    params = acts.examples.TrackParamsEstimationAlgorithm(
        level=acts.logging.WARNING,
        inputSeeds="seeds",
        outputTrackParameters="estimatedparameters",
        outputSeeds="estimatedseeds",
        trackingGeometry=geo,
        magneticField=bfield,
        # full_chain_test.py initial covariance: 1 mm, 1 mm, 1 deg, 1 deg, sigma(q/pT) 0.1
        # e/GeV, 10% relative pT, 1 ns
        initialSigmas=[1 * u.mm, 1 * u.mm, 1 * u.degree, 1 * u.degree, 0 * u.e / u.GeV, 1 * u.ns],
        initialSigmaQoverPt=0.1 * u.e / u.GeV,
        initialSigmaPtRel=0.1,
        initialVarInflation=[1.0] * 6,
        particleHypothesis=acts.ParticleHypothesis.pion,
    )
    return [space_points, seeding, params]


def ckf_algorithm(geo: acts.TrackingGeometry, bfield):
    """Combinatorial Kalman filter from the seed parameters (full_chain_test.py generic)."""
    selector = acts.TrackSelector.Config(
        # full_chain_test.py generic: no pT cut, |eta| < 3, |d0| < 4 mm, >= 7 measurements,
        # <= 2 holes, <= 2 outliers. We keep every CKF track these allow.
        ptMin=0.0,
        absEtaMax=3.0,
        loc0Min=-4.0 * u.mm,
        loc0Max=4.0 * u.mm,
        minMeasurements=7,
        maxHoles=2,
        maxOutliers=2,
    )
    measurement_selector = acts.MeasurementSelector.Config(
        # chi2 cut-offs 15 (measurement) / 25 (outlier), at most 2 branches per surface:
        # full_chain_test.py non-ITk values.
        [(acts.GeometryIdentifier(), ([], [15.0], [25.0], [2]))]
    )
    log = acts.logging.WARNING
    return acts.examples.TrackFindingAlgorithm(
        level=log,
        measurementSelectorCfg=measurement_selector,
        inputMeasurements="measurement_subset",
        inputInitialTrackParameters="estimatedparameters",
        inputSeeds="estimatedseeds",  # needed by seedDeduplication / stayOnSeed
        outputTracks="ckf_tracks",
        findTracks=acts.examples.TrackFindingAlgorithm.makeTrackFinderFunction(geo, bfield, log),
        findTracksBrem=acts.examples.TrackFindingAlgorithm.makeBremTrackFinderFunction(
            geo, bfield, log
        ),
        trackingGeometry=geo,
        magneticField=bfield,
        trackSelectorCfg=selector,
        twoWay=True,  # search outwards then inwards from the seed (addCKFTracks default)
        seedDeduplication=True,  # full_chain_test.py with real seeds
        stayOnSeed=True,
    )


def ambiguity_algorithm():
    """Greedy ambiguity resolution (full_chain_test.py ``--ambi-solver greedy`` generic)."""
    return acts.examples.GreedyAmbiguityResolutionAlgorithm(
        level=acts.logging.WARNING,
        inputTracks="ckf_tracks",
        outputTracks=KEY_TRACKS,
        maximumSharedHits=3,
        maximumIterations=1000000,
        nMeasurementsMin=7,
    )


def build_chain(
    cfg: ChainConfig,
    events: int,
    sink_factory: Callable[[ActsChain], acts.examples.IAlgorithm] | None = None,
    workdir: Path | None = None,
    *,
    progress: bool = False,
    skip: int = 0,
) -> ActsChain:
    """Build the full chain: gun or Pythia collisions, Fatras, digitisation, seeding, CKF, ambiguity resolution.

    Args:
        cfg: physics configuration.
        events: number of events the sequencer will run.
        skip: run events ``skip`` to ``skip + events - 1`` of the seed's event sequence: the
            sequencer numbers them so, and ACTS's random numbers derive from (seed, event
            number), so they equal those events of a run from 0. Collisions are generated from
            event 0 on and the reader skips the first ``skip`` (not with Poisson pile-up:
            :mod:`hepgan.acts.collisions`).
        sink_factory: called with the (incomplete) chain; the algorithm it returns is added
            last and sees every whiteboard object of the event (e.g. a converter).
        workdir: where the generated digitisation JSON and the Pythia HepMC3 files are
            written (a temp dir if None).
        progress: show a progress bar while Pythia generates collisions.

    Returns:
        The chain; call ``.run()``. Keep it referenced until run() has returned.
    """
    detector, geo = build_detector()
    bfield = acts.ConstantBField(acts.Vector3(0.0, 0.0, cfg.b_field * u.T))
    rnd = acts.examples.RandomNumbers(seed=cfg.seed)
    s = acts.examples.Sequencer(
        events=events,
        skip=skip,
        numThreads=1,  # per-algorithm stopwatches need sequential, in-order events
        logLevel=acts.logging.WARNING,
        outputDir="",
        trackFpes=False,  # FPE monitoring costs time and Fatras raises masked FPEs
    )
    for decorator in detector.contextDecorators():
        s.addContextDecorator(decorator)

    clock = StageClock()
    chain = ActsChain(s, detector, geo, bfield, clock, keep_alive=[rnd])
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="hepgan-acts-")
        chain.keep_alive.append(tmp)
        workdir = Path(tmp.name)

    try:
        if cfg.collisions:
            from hepgan.acts.collisions import hepmc3_reader

            if skip and cfg.pileup_poisson and cfg.pileup:
                msg = "ACTS's HepMC3 reader cannot skip events with a Poisson pile-up count"
                raise ValueError(msg)
            reader, chain.generation_s = hepmc3_reader(cfg, skip + events, rnd, workdir, progress=progress)
            chain.keep_alive.append(reader)
            s.addReader(reader)
        else:
            s.addReader(_generator(cfg, rnd))
    except BaseException:
        chain.close()  # no Pythia files left behind in the temporary folder
        raise
    stages = {
        "simulation": _simulation_algorithms(cfg, geo, bfield, rnd),
        "digitization": [digitization_algorithm(geo, rnd, workdir)],
        "seeding": seeding_algorithms(cfg, geo, bfield),
        "ckf": [ckf_algorithm(geo, bfield)],
        "ambiguity": [ambiguity_algorithm()],
    }
    for stage in STAGES:
        add_stage(s, clock, stage, stages[stage], chain.keep_alive)
        chain.keep_alive += stages[stage]
    if sink_factory is not None:
        sink = sink_factory(chain)
        chain.keep_alive.append(sink)
        s.addAlgorithm(sink)
    logger.debug("ACTS chain built: events %d to %d, %s", skip, skip + events - 1, cfg)
    return chain
