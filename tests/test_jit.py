"""hepgan.reco.jit: kernels load from numba's cache, and the cache goes stale when any kernel
source changes, a callee in another file included (README, "Known limits", before)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
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


# Twenty helices through every barrel layer of the generic detector, the features of their
# seeds (road and fit), after compiling the track completion first or not at all. The
# completion and the feature kernel call the same helpers of helix.py with different flags.
ORDER_PROBE = """
import sys
import numpy as np
from hepgan.reco.completion import complete_tracks
from hepgan.reco.features import FeatureConfig, build_features, layer_table
from hepgan.reco.geometry import GENERIC_DETECTOR
from hepgan.reco.seeding import find_seeds

barrels = [la for la in GENERIC_DETECTOR.layers if la.is_barrel]
r = np.array([la.position for la in barrels])
rng = np.random.default_rng(5)
x, y, z, vol, lay = [], [], [], [], []
for pt, phi0, cot, sign in zip(rng.uniform(0.6, 5, 20), rng.uniform(-3, 3, 20), rng.uniform(-1, 1, 20),
                               rng.choice([-1, 1], 20)):
    radius = pt / (0.299792458e-3 * 2.0)
    phi = phi0 + sign * np.arcsin(r / (2.0 * radius))
    x += list(r * np.cos(phi)); y += list(r * np.sin(phi)); z += list(10.0 + cot * r)
    vol += [la.volume_id for la in barrels]; lay += [la.layer_id for la in barrels]
x, y, z = np.array(x), np.array(y), np.array(z)
vol, lay = np.array(vol, np.int32), np.array(lay, np.int32)
layer = GENERIC_DETECTOR.layer_index(vol, lay)
config = FeatureConfig()
if sys.argv[1] == "completion-first":
    complete_tracks(x, y, z, layer, np.arange(3), np.array([3]), np.array([[0.0, 10.0, 0.7, 1.0, 0.5]]),
                    np.full((1, 5), np.nan), geometry=GENERIC_DETECTOR, bfield=2.0,
                    resolution=layer_table(GENERIC_DETECTOR, config).sigma0)
seeds = find_seeds(x, y, z, vol, lay, geometry=GENERIC_DETECTOR)
features, _ = build_features(x, y, z, layer, seeds, config=config, geometry=GENERIC_DETECTOR)
assert len(seeds) >= 20, len(seeds)
np.save(sys.argv[2], features)
"""


def test_kernels_compute_the_same_bits_whichever_compiled_first(tmp_path: Path) -> None:
    """numba gives a callee that leaves fastmath or the error model unset those of the kernel
    that compiles it first, and keeps and caches that version for every caller: the features
    of an event differed in their last bits between a fresh process that had run the
    completion first and one that had not (hepgan.reco.jit.kernel pins them now)."""
    out = {}
    for order in ("completion-first", "features-only"):
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / f"cache-{order}")}
        done = subprocess.run(
            [sys.executable, "-c", ORDER_PROBE, order, str(tmp_path / f"{order}.npy")], env=env,
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        out[order] = np.load(tmp_path / f"{order}.npy")
    assert out["completion-first"].shape == out["features-only"].shape
    assert np.array_equal(out["completion-first"], out["features-only"], equal_nan=True)


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (lambda: SeedingConfig(pt_min=0.0), "SeedingConfig.pt_min must be > 0, got 0.0"),
        (lambda: SeedingConfig(max_seeds_per_middle=17), "SeedingConfig.max_seeds_per_middle must be in 1..16, got 17"),
        (lambda: SeedingConfig(confirmed_eta_max=-1.0), "SeedingConfig.confirmed_eta_max must be >= 0, got -1.0"),
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
