"""hepgan.reco.jit: kernels load from numba's cache, and the cache goes stale when any kernel
source changes, a callee in another file included (README, "Known limits", before)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hepgan
from hepgan.errors import InputError
from hepgan.reco.ambiguity import AmbiguityConfig
from hepgan.reco.features import FeatureConfig
from hepgan.reco.seeding import SeedingConfig

# One 2 GeV track through the 4 pixel barrel layers (as in test_seeding): the seeder's kernel
# (seeding_kernel.py) calls the circle fit of helix.py, inlined into its machine code.
PROBE = """
import numpy as np
from hepgan.reco import seeding_kernel
from hepgan.reco.geometry import GENERIC_DETECTOR
from hepgan.reco.seeding import find_seeds

barrels = [la for la in GENERIC_DETECTOR.layers if la.volume_id == 8]
radius = 2.0 / (0.299792458e-3 * 2.0)
r = np.array([la.position for la in barrels])
phi = 0.7 - np.arcsin(r / (2.0 * radius))
lay = np.array([la.layer_id for la in barrels], np.int32)
seeds = find_seeds(r * np.cos(phi), r * np.sin(phi), 30.0 + 0.8 * r, np.full(4, 8, np.int32), lay,
                   geometry=GENERIC_DETECTOR)
print(len(seeds), sum(seeding_kernel.seed_kernel.stats.cache_hits.values()))
"""


def _probe(root: Path) -> tuple[int, int]:
    """(number of seeds, kernel loads from the cache) of PROBE run on the package copy at root."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(root)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    n_seeds, hits = done.stdout.split()
    return int(n_seeds), int(hits)


def test_editing_a_callee_recompiles_its_callers(tmp_path: Path) -> None:
    package = Path(hepgan.__file__).parent
    shutil.copytree(package, tmp_path / "hepgan", ignore=shutil.ignore_patterns("__pycache__"))
    n_seeds, hits = _probe(tmp_path)
    assert n_seeds >= 2 and hits == 0  # compiled
    assert list((tmp_path / "hepgan" / "reco" / "__pycache__").glob("hepgan-*/seeding_kernel.seed_kernel-*.nbi"))
    assert _probe(tmp_path) == (n_seeds, 1)  # loaded from the cache
    # the callee only: a circle 1000 times tighter has pT below pt_min, so no seed survives
    helix = tmp_path / "hepgan" / "reco" / "helix.py"
    text = helix.read_text()
    old = "    radius = math.sqrt(cx * cx + cy * cy)\n    # Turning direction"
    assert text.count(old) == 1
    helix.write_text(text.replace(old, "    radius = 1e-3 * math.sqrt(cx * cx + cy * cy)\n    # Turning direction"))
    assert _probe(tmp_path) == (0, 0)  # recompiled with the edited callee


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (lambda: SeedingConfig(pt_min=0.0), "SeedingConfig.pt_min must be > 0, got 0.0"),
        (lambda: SeedingConfig(max_seeds_per_middle=17), "SeedingConfig.max_seeds_per_middle must be in 1..16, got 17"),
        (lambda: FeatureConfig(layers=0), "FeatureConfig.layers must be >= 1, got 0"),
        (lambda: FeatureConfig(window=-1.0), "FeatureConfig.window must be > 0, got -1.0"),
        (lambda: AmbiguityConfig(max_shared_fraction=1.5), "AmbiguityConfig.max_shared_fraction must be in [0, 1], got 1.5"),
    ],
)
def test_config_errors_are_input_errors(make, text: str) -> None:
    """A user's bad value exits 2 on the command line (InputError, still a ValueError) and the
    message names the key and the value."""
    with pytest.raises(InputError) as err:
        make()
    assert str(err.value) == text
    assert isinstance(err.value, ValueError) and err.value.exit_code == 2
