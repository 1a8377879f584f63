"""`ChainConfig`: the one definition of the ACTS chain's physics options.

No ACTS import here: ``hepgan simulate --help`` and config validation stay fast, and
`hepgan.acts.simulation.SimulationConfig` extends this class (run options on top) instead of
repeating its fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hepgan.errors import InputError, closest

__all__ = ["B_FIELD_T", "MAX_PILEUP", "PROCESSES", "ChainConfig"]

#: Solenoid field along z (tesla); full_chain_test.py ``--bf-constant`` value for generic.
B_FIELD_T = 2.0

#: What an event is made of: the pion gun, or a Pythia 8 hard scatter (plus pile-up).
PROCESSES = ("gun", "ttbar", "minbias")

#: Largest pile-up accepted: 5x the HL-LHC's 200; more is a typo (and hours per event).
MAX_PILEUP = 1000


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ChainConfig:
    """Physics knobs of the chain (units: GeV, mm, rad).

    Attributes:
        seed: master seed of ``acts.examples.RandomNumbers`` (generation, Fatras, digi) and of
            the Pythia generators.
        process: ``gun`` (V vertices x M pions), ``ttbar`` or ``minbias`` (a Pythia 8 hard
            scatter at 14 TeV, plus ``pileup`` soft-QCD collisions).
        pileup: pile-up collisions per event (``ttbar`` / ``minbias``; 0 to 1000); the mean
            of a Poisson draw per event when ``pileup_poisson``.
        pileup_poisson: draw the pile-up count per event from a Poisson distribution.
        pythia_settings: extra Pythia setting strings, applied to the hard scatter and the
            pile-up after hepgan's own (``"PhaseSpace:pTHatMin = 20."``).
        vertices: gun vertices per event (``gun`` only).
        particles: pions per gun vertex (``gun`` only).
        pt_min, pt_max: particle-gun transverse momentum range (GeV), log-uniform.
        eta_max: particle-gun |eta| range, uniform in eta.
        vertex_sigma_xy, vertex_sigma_z: Gaussian beam-spot widths (mm); collisions also
            spread in time by 5 ns as ACTS's ttbar examples.
        seeds_per_middle_sp: ``maxSeedsPerSpM`` of the seed finder (1: the reference, docs/benchmark-protocol.md;
            the ACTS default 5 raises efficiency at 100 x 50 from 0.935 to 0.980).
        b_field: solenoid field along z (tesla) of Fatras, the seeding and the CKF
            (default :data:`B_FIELD_T`, the field the shipped model was trained on).
    """

    seed: int = 42
    process: str = "gun"
    pileup: int = 0
    pileup_poisson: bool = False
    pythia_settings: tuple[str, ...] = ()
    vertices: int = 1
    particles: int = 100
    pt_min: float = 0.5
    pt_max: float = 10.0
    eta_max: float = 2.5
    vertex_sigma_xy: float = 0.0125
    vertex_sigma_z: float = 50.0
    seeds_per_middle_sp: int = 1
    b_field: float = B_FIELD_T

    def __post_init__(self) -> None:
        for name in ("vertices", "particles", "seeds_per_middle_sp"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                msg = f"simulation config: {name} must be an integer >= 1, got {value!r}"
                raise InputError(msg)
        if not _is_int(self.seed) or self.seed < 0:
            msg = f"simulation config: seed must be an integer >= 0, got {self.seed!r}"
            raise InputError(msg)
        if self.process not in PROCESSES:
            msg = f"simulation config: unknown process {self.process!r}; {closest(str(self.process), PROCESSES)}"
            raise InputError(msg)
        if not _is_int(self.pileup) or not 0 <= self.pileup <= MAX_PILEUP:
            msg = f"simulation config: pileup must be an integer from 0 to {MAX_PILEUP}, got {self.pileup!r}"
            raise InputError(msg)
        if self.process == "gun" and (self.pileup or self.pileup_poisson):
            msg = (
                "simulation config: pileup applies to the Pythia processes (ttbar, minbias); "
                "the gun's extra vertices are `vertices`"
            )
            raise InputError(msg)
        if not isinstance(self.pileup_poisson, bool):
            msg = f"simulation config: pileup_poisson must be true or false, got {self.pileup_poisson!r}"
            raise InputError(msg)
        settings = self.pythia_settings
        if isinstance(settings, str) or not all(isinstance(s, str) for s in settings):
            msg = f"simulation config: pythia_settings must be a list of strings, got {settings!r}"
            raise InputError(msg)
        object.__setattr__(self, "pythia_settings", tuple(settings))  # a TOML list arrives as a list
        if not 0 < self.pt_min < self.pt_max:
            msg = f"simulation config: need 0 < pt_min < pt_max (GeV), got {self.pt_min}, {self.pt_max}"
            raise InputError(msg)
        if not self.eta_max > 0:
            msg = f"simulation config: eta_max must be > 0, got {self.eta_max}"
            raise InputError(msg)
        if self.vertex_sigma_xy < 0 or self.vertex_sigma_z < 0:
            msg = "simulation config: vertex widths must be >= 0 mm"
            raise InputError(msg)
        b = self.b_field
        if isinstance(b, bool) or not isinstance(b, int | float) or not (b > 0 and math.isfinite(b)):
            msg = f"simulation config: b_field must be a number > 0 (tesla), got {b!r}"
            raise InputError(msg)
        object.__setattr__(self, "b_field", float(b))

    @property
    def collisions(self) -> bool:
        """Whether events are Pythia collisions (not the gun)."""
        return self.process != "gun"
