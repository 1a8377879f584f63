"""hepgan.io.config: TOML (or a mapping) -> frozen dataclass, with one-line errors naming the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hepgan.errors import InputError
from hepgan.io.config import load_config
from hepgan.ml.dataset import DatasetConfig
from hepgan.reco.features import FeatureConfig


@dataclass(frozen=True)
class Inner:
    width: int = 3
    scale: float = 1.0


@dataclass(frozen=True)
class Outer:
    name: str = field(metadata={"expected": "a run name"})
    steps: int = 10
    rate: float = 0.5
    fast: bool = False
    pairs: tuple[tuple[int, float], ...] = ()
    limit: int | None = None
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        if self.steps < 1:
            msg = f"steps must be >= 1, got {self.steps}"
            raise ValueError(msg)


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_values_types_and_tables(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'name = "a"\nsteps = 4\nrate = 2\nfast = true\npairs = [[7, 0.1], [8, 1]]\n[inner]\nwidth = 5\n')
    cfg = load_config(Outer, path)
    assert cfg == Outer("a", 4, 2, True, ((7, 0.1), (8, 1)), None, Inner(5, 1.0))
    assert isinstance(cfg.pairs, tuple) and isinstance(cfg.pairs[0], tuple)  # hashable, as frozen configs must be
    hash(cfg)
    # overrides win; None means "not given"
    assert load_config(Outer, path, overrides={"steps": 9, "rate": None}).steps == 9
    assert load_config(Outer, {"name": "b", "limit": 3}).limit == 3
    with pytest.raises(InputError, match=r"^override: unknown key 'step'; closest: 'steps'"):
        load_config(Outer, path, overrides={"step": 9})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('name = "a"\nstepz = 3', r"run\.toml: unknown key 'stepz'; closest: 'steps'"),
        ('name = "a"\n[inner]\nwidht = 3', r"run\.toml: unknown key 'inner\.widht'; closest: 'width'"),
        ("steps = 3", r"run\.toml: missing key 'name' \(a run name\)"),
        ('name = "a"\nsteps = 2.5', r"run\.toml: steps = 2\.5, expected an integer"),
        ('name = "a"\nrate = "fast"', r"run\.toml: rate = 'fast', expected a number \(float\)"),
        ('name = "a"\nsteps = true', r"run\.toml: steps = True, expected a number \(int\)"),
        ('name = "a"\nfast = 1', r"run\.toml: fast = 1, expected true or false"),
        ("name = 3", r"run\.toml: name = 3, expected a string"),
        ('name = "a"\npairs = [[7, "x"]]', r"run\.toml: pairs\[0\]\[1\] = 'x', expected a number"),
        ('name = "a"\npairs = [[7]]', r"run\.toml: pairs\[0\] = \[7\], expected an array of 2 values"),
        ('name = "a"\ninner = 4', r"run\.toml: inner = 4, expected a table of Inner keys"),
        ('name = "a"\nlimit = "no"', r"run\.toml: limit = 'no', expected a number"),
        ('name = "a"\nsteps = 0', r"run\.toml: not a valid Outer: steps must be >= 1, got 0"),
        ('name = "a"\nname = "b"', r"run\.toml: cannot read run config: .*"),
    ],
)
def test_refusals_name_the_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(InputError, match=match) as err:
        load_config(Outer, _toml(tmp_path, text), what="run config")
    assert err.value.exit_code == 2
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.toml: cannot read run config"):
        load_config(Outer, tmp_path / "nope.toml", what="run config")


def test_dataset_config_from_toml(tmp_path: Path) -> None:
    path = _toml(tmp_path, "max_seeds_per_shard = 500\n[features]\nlayers = 8\ncandidates = 3\n[seeding]\npt_min = 0.7\n")
    cfg = DatasetConfig.from_toml(path)
    assert cfg.features == FeatureConfig(layers=8, candidates=3)
    assert cfg.seeding.pt_min == 0.7 and cfg.max_seeds_per_shard == 500
    # the resolution table comes back as the tuples the frozen FeatureConfig hashes
    again = DatasetConfig.from_toml({"features": cfg.features.to_dict()})
    assert again.features == cfg.features
    with pytest.raises(InputError, match=r"run\.toml: unknown key 'seeding\.pt_mim'; closest: 'pt_min'"):
        DatasetConfig.from_toml(_toml(tmp_path, "[seeding]\npt_mim = 0.7\n"))
    # a value SeedingConfig refuses (ValueError) is an input error naming the file: exit 2
    with pytest.raises(InputError, match=r"run\.toml: not a valid SeedingConfig: .*pt_min"):
        DatasetConfig.from_toml(_toml(tmp_path, "[seeding]\npt_min = -1.0\n"))
    with pytest.raises(InputError, match=r"run\.toml: not a valid DatasetConfig: max_seeds_per_shard"):
        DatasetConfig.from_toml(_toml(tmp_path, "max_seeds_per_shard = 0\n"))
