"""Benchmark sizes: the gun (``VxM``: V vertices x M pions per event) and collisions
(``ttbar-puN``: Pythia 8 ttbar with N pile-up collisions), and how each is simulated."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from hepgan.errors import InputError

__all__ = ["DEFAULT_EVENTS", "DEFAULT_SIZES", "FULL_SIZES", "BenchSize", "parse_size"]

#: The sizes `hepgan bench` runs by default: small enough for minutes on 2 cores.
DEFAULT_SIZES = ("1x100", "20x50")
#: The full protocol (docs/benchmark-protocol.md): collisions first, then the gun sizes.
FULL_SIZES = ("ttbar-pu0", "ttbar-pu50", "ttbar-pu200", "1x100", "20x50", "100x50", "200x50")
#: Events per size: enough for stable means, few enough for a 2-core machine. ttbar at pile-up 0
#: has 100: with 20 (about 1000 particles of pT > 1 GeV) the efficiency's 68% interval was
#: +-0.003, as wide as the differences between ACTS and the surrogate it has to tell apart, and an
#: event costs milliseconds. Every count is even: with 2 threads an odd count leaves one thread
#: idle for the last event (3 events: the 2-thread throughput understated by a third).
DEFAULT_EVENTS = {
    "1x100": 20, "20x50": 6, "100x50": 4, "200x50": 2,
    "ttbar-pu0": 100, "ttbar-pu50": 8, "ttbar-pu200": 4,
}  # fmt: skip
_MAX_PILEUP = 1000


@dataclass(frozen=True)
class BenchSize:
    """One benchmark size. `process` 'gun' (`vertices` x `particles` pions) or 'ttbar'
    (`pileup` minimum-bias collisions on top)."""

    name: str
    process: str
    vertices: int = 0
    particles: int = 0
    pileup: int = 0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def simulation_config(self, *, events: int, seed: int):
        """The :class:`hepgan.acts.simulation.SimulationConfig` that makes this size's events."""
        from hepgan.acts.simulation import SimulationConfig

        if self.process == "gun":
            return SimulationConfig(events=events, vertices=self.vertices, particles=self.particles, seed=seed)
        fields = {f.name for f in dataclasses.fields(SimulationConfig)}
        if not {"process", "pileup"} <= fields:
            msg = (
                f"benchmark size {self.name!r}: this installation's simulation has no collisions "
                "(SimulationConfig has no process/pileup); run the gun sizes (VxM)"
            )
            raise InputError(msg)
        return SimulationConfig(events=events, seed=seed, process=self.process, pileup=self.pileup)


def parse_size(size: str) -> BenchSize:
    """``"20x50"`` -> the gun at 20 vertices x 50 pions; ``"ttbar-pu200"`` -> ttbar with 200
    pile-up collisions; InputError on anything else."""
    text = str(size).strip()
    m = re.fullmatch(r"(\d+)\s*[xX]\s*(\d+)", text)
    if m and int(m.group(1)) >= 1 and int(m.group(2)) >= 1:
        v, p = int(m.group(1)), int(m.group(2))
        return BenchSize(f"{v}x{p}", "gun", vertices=v, particles=p)
    m = re.fullmatch(r"ttbar-pu(\d+)", text, flags=re.IGNORECASE)
    if m and int(m.group(1)) <= _MAX_PILEUP:
        n = int(m.group(1))
        return BenchSize(f"ttbar-pu{n}", "ttbar", pileup=n)
    msg = (
        f"benchmark size {size!r}: expected VxM with integers >= 1 (vertices x pions, e.g. 20x50) "
        f"or ttbar-puN with 0 <= N <= {_MAX_PILEUP} (ttbar and N pile-up collisions, e.g. ttbar-pu200)"
    )
    raise InputError(msg)
