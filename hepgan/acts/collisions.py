"""Collision events for the ACTS chain: Pythia 8 HepMC3 files read by ACTS's own HepMC3 reader.

Per event, ``acts.examples.hepmc3.HepMC3Reader`` reads one hard-scatter collision and N pile-up
collisions (fixed N, or Poisson with mean N) from two files that :mod:`hepgan.acts.pythia`
writes before the sequencer starts, shifts each collision to its own point drawn from the
beam spot and merges them; ``HepMC3InputConverter`` turns the merged record into ACTS particles,
one primary vertex per collision in reading order, so the hard scatter is primary vertex 1.
A particle selection as ACTS's full-chain ttbar examples then hands the particles to Fatras.

Determinism: the Pythia seeds derive from the master seed (:func:`hepgan.acts.pythia.pythia_seed`),
the reader's vertex and multiplicity draws from ``acts.examples.RandomNumbers`` of the chain.

Starting mid-sequence (a chain that runs events k to n - 1 only, :func:`hepgan.acts.chain.build_chain`'s
``skip``): the collisions of events 0 to n - 1 are generated and the sequencer has the reader skip
the first k events' collisions. ACTS's reader can skip only a fixed number of pile-up collisions
per event: it refuses (``Cannot skip events with non-Fixed multiplicityGenerator``) with
``pileup_poisson``, whose counts are drawn per event, so a Poisson chain always starts at 0.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import acts
import acts.examples
import acts.examples.hepmc3
from tqdm import tqdm

from hepgan.acts.config import ChainConfig
from hepgan.acts.pythia import HARD_PROCESSES, PILEUP_PROCESS, PythiaSource, pythia_seed, write_hepmc

u = acts.UnitConstants
logger = logging.getLogger(__name__)

__all__ = ["FATRAS_P_MIN_GEV", "VERTEX_SIGMA_T_NS", "hepmc3_reader", "pileup_events_needed", "selection"]

#: Time spread of the collision points (ns), as ACTS's ttbar examples.
VERTEX_SIGMA_T_NS = 5.0

#: Fatras's momentum threshold for collisions (GeV). Its 0.5 GeV default would silently drop
#: most pile-up particles; 0.15 GeV equals the generator-level pT cut of the selection.
FATRAS_P_MIN_GEV = 0.15

#: Whiteboard key of the merged HepMC3 event.
KEY_EVENT = "hepmc3_event"


def pileup_events_needed(events: int, pileup: int, poisson: bool) -> int:
    """Pile-up collisions to generate so that the reader never runs out.

    Fixed: events x pileup. Poisson: the sum of the per-event counts is Poisson with mean
    events x pileup, so its mean plus 6 standard deviations plus 10 is exceeded with a
    probability below 1e-9 (a shortfall would stop the run with ACTS's "fewer events" error).
    """
    mean = events * pileup
    if not poisson or mean == 0:
        return mean
    return int(math.ceil(mean + 6.0 * math.sqrt(mean) + 10))


def _generate(cfg: ChainConfig, events: int, workdir: Path, progress: bool) -> tuple[Path, Path | None, float]:
    """Write the hard-scatter and pile-up HepMC3 files; returns their paths and the seconds taken."""
    t0 = time.perf_counter()
    n_pileup = pileup_events_needed(events, cfg.pileup, cfg.pileup_poisson)
    hard = PythiaSource((*HARD_PROCESSES[cfg.process], *cfg.pythia_settings), pythia_seed(cfg.seed, "hard"),
                        f"{cfg.process} hard scatter")
    pileup = None
    if n_pileup and HARD_PROCESSES[cfg.process] == PILEUP_PROCESS:
        pileup = hard  # minbias on minbias: one generator (its initialisation takes seconds)
    elif n_pileup:
        pileup = PythiaSource((*PILEUP_PROCESS, *cfg.pythia_settings), pythia_seed(cfg.seed, "pileup"), "pile-up")
    hard_path = workdir / "hard_scatter.hepmc3.gz"
    pileup_path = workdir / "pileup.hepmc3.gz" if pileup is not None else None
    with tqdm(total=events + n_pileup, unit="collision", desc="Pythia", disable=not progress) as bar:
        write_hepmc(hard_path, hard, events, bar)
        if pileup is not None:
            write_hepmc(pileup_path, pileup, n_pileup, bar)
    seconds = time.perf_counter() - t0
    logger.info("Pythia: %d hard-scatter and %d pile-up collisions in %.1f s", events, n_pileup, seconds)
    return hard_path, pileup_path, seconds


def hepmc3_reader(cfg: ChainConfig, events: int, rnd, workdir: Path, *, progress: bool = False):
    """Generate the collisions with Pythia and return ``(reader, pythia_seconds)``.

    The reader puts the merged event on the whiteboard under :data:`KEY_EVENT`.

    Raises:
        InputError: Pythia rejects a setting (nothing is generated then).
    """
    hard_path, pileup_path, seconds = _generate(cfg, events, workdir, progress)
    Input = acts.examples.hepmc3.HepMC3Reader.Input
    inputs = [Input.Fixed(hard_path, 1)]
    if pileup_path is not None:
        inputs.append(Input.Poisson(pileup_path, float(cfg.pileup)) if cfg.pileup_poisson
                      else Input.Fixed(pileup_path, cfg.pileup))
    reader = acts.examples.hepmc3.HepMC3Reader(
        inputs=inputs,
        outputEvent=KEY_EVENT,
        numEvents=events,  # without it the reader reads the whole file once to count
        checkEventNumber=True,  # the hard-scatter file is numbered 0, 1, ... as the sequencer
        randomNumbers=rnd,
        vertexGenerator=acts.examples.GaussianVertexGenerator(
            mean=acts.Vector4(0, 0, 0, 0),
            stddev=acts.Vector4(
                cfg.vertex_sigma_xy * u.mm, cfg.vertex_sigma_xy * u.mm, cfg.vertex_sigma_z * u.mm,
                VERTEX_SIGMA_T_NS * u.ns,
            ),
        ),
        level=acts.logging.WARNING,
    )
    return reader, seconds


def selection(input_particles: str, output_particles: str):
    """Generator-level particle selection of ACTS's full-chain ttbar examples (full_chain_test.py,
    generic detector): production radius < 24 mm (inside the beam pipe), |z| < 1 m,
    |eta| < 4, pT > 150 MeV. Neutral particles stay: photons convert in the material."""
    return acts.examples.ParticleSelector(
        level=acts.logging.WARNING,
        inputParticles=input_particles,
        outputParticles=output_particles,
        rhoMax=24 * u.mm,
        absZMax=1.0 * u.m,
        absEtaMax=4.0,
        ptMin=150 * u.MeV,
    )
