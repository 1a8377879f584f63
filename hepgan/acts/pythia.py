"""Pythia 8 collisions (``pythia8mc``) written as HepMC3 files (``pyhepmc``) for ACTS's reader.

`write_hepmc` runs one Pythia instance and writes its events, numbered from 0, to a gzip
HepMC3 file; :mod:`hepgan.acts.collisions` feeds those files to ``acts.examples.hepmc3``.

The HepMC3 record is the part of Pythia's event record that ACTS's ``HepMC3InputConverter``
reads, not the whole record: one vertex per collision at the origin with the two beam protons
(HepMC status 4) in, the final-state particles (status 1) out, and for every particle that
decayed at hadron level (b and c hadrons, taus, K0S, Lambda, pi0, ...; HepMC status 2) an end
vertex at Pythia's decay position with its decay products out. The partonic history (hard
process, showers, strings) is dropped: the converter only follows particles out of the
collision vertex and up to the decayed hadrons (heavy-flavour origin). Why prune: a ttbar event
record has ~2000 entries, mostly partons, and at pile-up 200 the file would be ~8x larger.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from hepgan.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["CMS_ENERGY_GEV", "HARD_PROCESSES", "PILEUP_PROCESS", "PythiaSource", "pythia_seed", "write_hepmc"]

#: Proton-proton centre-of-mass energy (GeV): the LHC design energy, as ACTS's Pythia examples.
CMS_ENERGY_GEV = 14000.0

#: Pythia settings of each hard-scatter process (``--process``).
HARD_PROCESSES: dict[str, tuple[str, ...]] = {
    "ttbar": ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on"),
    "minbias": ("SoftQCD:all = on",),
}

#: Pythia settings of a pile-up collision: all soft QCD (elastic and diffractive included).
PILEUP_PROCESS: tuple[str, ...] = ("SoftQCD:all = on",)

_PYTHIA_SEED_MAX = 900_000_000  # Random:seed accepts 0..900 000 000 (0 = time-based: never used)

# HepMC status codes ACTS's converter relies on.
_BEAM, _FINAL, _DECAYED = 4, 1, 2


def pythia_seed(seed: int, stream: str) -> int:
    """Pythia ``Random:seed`` for one generator stream (``hard``, ``pileup``) of a master seed.

    Different streams of one seed and the same stream of different seeds are independent
    (SeedSequence hashing); never 0, which would make Pythia seed from the clock.
    """
    words = np.random.SeedSequence([seed, *stream.encode()]).generate_state(1, np.uint64)
    return int(words[0] % _PYTHIA_SEED_MAX) + 1


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Discard C++ writes to file descriptor 1 (Pythia's banner, warnings and error lines).

    Why: ``hepgan simulate`` prints its summary on stdout and a rejected setting must give one
    line, ours, which names it; Pythia writes through std::cout, which Python's sys.stdout
    redirection does not reach.
    """
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


class PythiaSource:
    """An initialised Pythia 8 generator of one process.

    Args:
        settings: Pythia setting strings (``"Top:gg2ttbar = on"``), applied in order after
            the beams (pp at :data:`CMS_ENERGY_GEV`) and the seed.
        seed: Pythia ``Random:seed`` (1..900 000 000).
        what: name used in error messages (``hard scatter``, ``pile-up``).

    Raises:
        InputError: a setting Pythia does not know or cannot parse, or an initialisation
            Pythia refuses (the message names the setting).
    """

    def __init__(self, settings: Sequence[str], seed: int, what: str = "generator") -> None:
        import pythia8mc

        self.what = what
        base = (
            "Print:quiet = on",
            "Next:numberCount = 0",
            "Beams:idA = 2212",
            "Beams:idB = 2212",
            f"Beams:eCM = {CMS_ENERGY_GEV}",
            "Random:setSeed = on",
            f"Random:seed = {seed}",
        )
        with _quiet_stdout():
            self._pythia = pythia8mc.Pythia("", False)
            for setting in (*base, *settings):
                if not self._pythia.readString(setting):
                    msg = f"Pythia setting {setting!r} of the {what} was rejected by Pythia 8"
                    raise InputError(msg)
            if not self._pythia.init():
                msg = f"Pythia 8 could not initialise the {what} with settings {list(settings)!r}"
                raise InputError(msg)

    def next_event(self):
        """Generate the next event and return it as a ``pyhepmc.GenEvent`` (see the module doc)."""
        import pyhepmc

        with _quiet_stdout():
            for _ in range(100):
                if self._pythia.next():
                    break
            else:
                msg = f"Pythia 8 failed 100 times in a row to generate a {self.what} event"
                raise RuntimeError(msg)
        return _to_hepmc(self._pythia.event, pyhepmc)


def _to_hepmc(event, pyhepmc):
    """The pruned HepMC3 record of a Pythia event (module doc): beams, decays, final state."""
    n = event.size()
    status = [0] * n
    mother1 = [0] * n
    final = [False] * n
    for i in range(1, n):
        p = event[i]
        status[i] = p.statusAbs()
        mother1[i] = p.mother1()
        final[i] = p.isFinal()
    # Hadron-level decays give their products status 91-99; their mother1 is the decayed particle.
    decayed = {mother1[i] for i in range(1, n) if 91 <= status[i] <= 99 and mother1[i] > 0}
    parent_cache: dict[int, int] = {}

    def kept_parent(i: int) -> int:
        """Nearest decayed-hadron ancestor along mother1 (0 = the collision vertex)."""
        chain = []
        j = mother1[i]
        while j > 0 and j not in decayed and j not in parent_cache:
            chain.append(j)
            j = mother1[j]
        result = j if j in decayed else parent_cache.get(j, 0)
        for k in chain:
            parent_cache[k] = result
        return result

    children: dict[int, list[int]] = {}
    for i in range(1, n):
        if final[i] or i in decayed:
            children.setdefault(kept_parent(i), []).append(i)
    needed = _with_final_descendants(children, final)

    gen = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
    beams = [pyhepmc.GenParticle(_momentum(event[k], pyhepmc), event[k].id(), _BEAM) for k in (1, 2)]
    root = pyhepmc.GenVertex(pyhepmc.FourVector(0.0, 0.0, 0.0, 0.0))
    for beam in beams:
        root.add_particle_in(beam)
    gen.add_vertex(root)
    # breadth-first from the collision: every vertex exists before its outgoing decays
    queue = [(0, root)]
    while queue:
        mother, vertex = queue.pop(0)
        for i in children.get(mother, ()):
            if i not in needed:
                continue
            p = event[i]
            particle = pyhepmc.GenParticle(_momentum(p, pyhepmc), p.id(), _FINAL if final[i] else _DECAYED)
            particle.generated_mass = p.m()
            vertex.add_particle_out(particle)
            if not final[i]:
                end = pyhepmc.GenVertex(pyhepmc.FourVector(p.xDec(), p.yDec(), p.zDec(), p.tDec()))
                end.add_particle_in(particle)
                gen.add_vertex(end)
                queue.append((i, end))
    return gen


def _with_final_descendants(children: dict[int, list[int]], final: list[bool]) -> set[int]:
    """Kept entries that are final or have a final descendant (a decay whose products were all
    dropped would give ACTS a status-2 particle without an end vertex)."""
    needed: set[int] = set()

    def visit(i: int) -> bool:
        has = final[i] if i > 0 else False
        for c in children.get(i, ()):
            if visit(c):
                has = True
        if has:
            needed.add(i)
        return has

    visit(0)
    return needed


def _momentum(p, pyhepmc):
    return pyhepmc.FourVector(p.px(), p.py(), p.pz(), p.e())


def write_hepmc(path: Path, source: PythiaSource, n_events: int, progress=None) -> None:
    """Write ``n_events`` events of ``source`` to ``path`` (gzip HepMC3 ASCII), numbered 0, 1, ...

    ``progress`` (a tqdm bar or None) is advanced by one per event.
    """
    import pyhepmc

    # gzip level 1: the file lives minutes in a temporary folder; level 9 costs 5x the time
    with gzip.open(path, "wb", compresslevel=1) as raw, pyhepmc.open(raw, "w", format="hepmc3") as out:
        for number in range(n_events):
            event = source.next_event()
            event.event_number = number
            out.write(event)
            if progress is not None:
                progress.update(1)
    logger.debug("wrote %d %s events to %s", n_events, source.what, path)
