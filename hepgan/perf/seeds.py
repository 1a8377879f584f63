"""The seed registry: which simulation seeds train, which tune and which report.

A figure quoted in the README must come from events that neither training nor any choice of
a cut, threshold or calibration has seen. Every seed used to simulate events for hepgan is
registered here with its purpose and what used it; ``docs/seeds.md`` is the same table for
people. ``hepgan bench`` refuses a seed registered for training or tuning (it can be forced,
and the results then say so), and warns about a seed that is not registered at all.

Purposes: ``train`` (training and validation sets of the shipped model), ``tune`` (ablations,
thresholds, calibration: anything whose numbers chose a setting), ``report`` (the bench's
events, quoted in the README), ``test`` (fixtures of the test suite) and ``demo``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hepgan.errors import InputError

__all__ = ["DEFAULT_REPORT_SEED", "SEEDS", "SeedUse", "check_report_seed", "seed_purpose"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeedUse:
    """One registered seed: its purpose and what used it."""

    seed: int
    purpose: str
    used_by: str


def _uses() -> dict[int, SeedUse]:
    rows = [
        *(SeedUse(s, "train", "training/reproduce_gun.sh: training events (20, 100, 200 x 50); 1001-1003 also "
                  "training/reproduce.sh's gun events")
          for s in (1001, 1002, 1003, 1011, 1012, 1013)),
        *(SeedUse(s, "train", "training/reproduce.sh and reproduce_gun.sh: validation events (early stopping, "
                  "model choice); also hepgan calibrate's spread calibration") for s in (2001, 2002, 2003)),
        *(SeedUse(s, "train", f"training/reproduce.sh and reproduce_wide.sh: ttbar training events at pile-up {pu}")
          for s, pu in ((6001, 0), (6002, 50), (6003, 200), (6004, 200), (6005, 50))),
        *(SeedUse(s, "train", f"training/reproduce.sh: ttbar validation events at pile-up {pu} (early "
                  "stopping, hepgan calibrate's spread, the error model)") for s, pu in ((6101, 0), (6102, 50), (6103, 200))),
        SeedUse(11, "tune", "benchmarks/bench_seeding.py and ablation_seeding.py: chose the seeder's cuts; "
                "the bench's seed until 2026-12 (its events are no longer reported)"),
        *(SeedUse(s, "tune", "benchmarks/bench_reliability_flag.py: chose the triage flag thresholds "
                  "(in-distribution gun 20 x 50 and 100 x 50)") for s in (2020, 2100)),
        *(SeedUse(s, "tune", "benchmarks/bench_reliability_flag.py: out-of-distribution samples (field, "
                  "pile-up) the flag thresholds were set against") for s in (1501, 3001, 501, 30001)),
        *(SeedUse(s, "tune", f"benchmarks/bench_collisions.py (the seeder's d0 window), "
                  f"benchmarks/bench_retrain_collisions.py (new models, also training/reproduce_wide.sh's, against the "
                  f"shipped one), benchmarks/ablation_leftover.py (the engine's leftover pass) and "
                  f"benchmarks/bench_reliability_flag.py (the flag thresholds): ttbar at pile-up {pu}")
          for s, pu in ((5001, 0), (5050, 50), (5200, 200))),
        *(SeedUse(s, "tune", f"hepgan.ml.error_model's tuning samples (gun {size} x 50); 3011 and 3012 also "
                  "benchmarks/bench_retrain_collisions.py's gun samples; 3011 and 3012 checked the error model's quality term "
                  "(issue 16)") for s, size in ((3002, 100), (3011, 20), (3012, 100))),
        SeedUse(3101, "tune", "the error model's quality term (issue 16): pull widths checked on gun 1 x 100 (200 events), "
                "with 3011 / 3012 and 5001 / 5050 / 5200"),
        SeedUse(3100, "tune", "the TrackML score against ACTS-5 at gun 100 x 50 with the leftover pass, and where the "
                "surrogate's tracks take other particles' hits (3 events); 3011 (20 x 50) also chose the leftover pass; "
                "3100, 3011, 5001 and 5200 are benchmarks/ab_revision.py's samples (speed changes against the engine "
                "before them)"),
        SeedUse(5201, "tune", "benchmarks/ablation_leftover.py: the engine's prompt first pass and the leftover pass's "
                "seeds per middle hit, chosen on displaced particles (ttbar pile-up 200, 8 events)"),
        *(SeedUse(s, "report", "hepgan bench: the events of the README's tables") for s in range(31, 40)),
        *(SeedUse(s, "report", f"benchmarks/bench_reliability_flag.py --report: flag rates quoted in the README ({what})")
          for s, what in ((41, "ttbar pile-up 0"), (43, "ttbar pile-up 50"), (44, "ttbar pile-up 200"),
                          (45, "gun 20 x 50"), (46, "gun 100 x 50"), (47, "gun 20 x 50 at 1.5 T"),
                          (48, "gun 20 x 50 at 3 T"), (49, "gun 300 x 50"))),
        *(SeedUse(s, "test", "tests/: fixtures (small ACTS samples)") for s in (7, 42)),
        SeedUse(1, "demo", "hepgan demo's default sample"),
    ]  # fmt: skip
    return {u.seed: u for u in rows}


#: seed -> its registered use.
SEEDS: dict[int, SeedUse] = _uses()

#: The bench's default seed: a report seed no tuning has seen.
DEFAULT_REPORT_SEED = 31


def seed_purpose(seed: int) -> str:
    """The registered purpose of `seed`, or 'unregistered'."""
    use = SEEDS.get(int(seed))
    return use.purpose if use else "unregistered"


def check_report_seed(seed: int, *, allow_tuning_seed: bool = False) -> str:
    """Refuse (InputError) a seed registered for training or tuning unless
    `allow_tuning_seed`, then warn loudly; warn about an unregistered seed. Returns the purpose."""
    purpose = seed_purpose(seed)
    if purpose in ("train", "tune"):
        use = SEEDS[int(seed)]
        text = (
            f"seed {seed} is registered for {purpose} ({use.used_by}); events made with it are not fresh, "
            "so the bench's figures on them would flatter the surrogate (docs/seeds.md)"
        )
        if not allow_tuning_seed:
            msg = f"{text}; choose a report seed (31-39) or pass --allow-tuning-seed"
            raise InputError(msg)
        log.warning("%s: running anyway (--allow-tuning-seed); the results record it", text.upper())
    elif purpose != "report":
        log.warning("seed %d is not a registered report seed (docs/seeds.md lists them: 31-39)", seed)
    return purpose
