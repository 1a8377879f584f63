"""The training config: `TrainConfig`, loaded from TOML by :func:`hepgan.io.config.load_config`.

Paths in the file are relative to the file. The output folder may be anywhere but never an
existing file, nor the same as, inside, or a parent of an input folder: training writes only
under `output`, by fixed names, never over its inputs.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hepgan.errors import InputError
from hepgan.io.config import load_config

__all__ = ["SCORE_LABELS", "TrainConfig"]

SCORE_LABELS = ("auto", "truth", "acts")

_FOLDER = {"expected": "a folder path"}
_PATH_KEYS = ("dataset", "validation", "output")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (loaded from TOML; paths relative to the TOML).

    dataset / validation: folders written by `hepgan dataset`. output: where the model,
    checkpoints, history and card go.
    """

    dataset: str = field(metadata=_FOLDER)
    validation: str = field(metadata=_FOLDER)
    output: str = field(metadata=_FOLDER)
    seed: int = 1
    epochs: int = 30
    batch_size: int = 1024
    steps_per_epoch: int = 0  # 0: one pass over the training set
    learning_rate: float = 1e-3
    disc_learning_rate: float = 5e-4
    crps_weight: float = 1.0
    adversarial_weight: float = 0.05
    score_weight: float = 1.0
    hit_weight: float = 1.0
    residual_clip: float = 30.0
    noise_dim: int = 8
    n_samples: int = 16
    width: int = 128
    depth: int = 3
    head_width: int = 64
    disc_width: int = 128
    disc_depth: int = 3
    patience: int = 5
    max_train_seeds: int = 0  # 0: all
    max_validation_seeds: int = 100_000
    score_label: str = "auto"  # "truth", "acts", or "auto": truth where every seed has it

    @classmethod
    def from_toml(cls, path: str | os.PathLike, **overrides: Any) -> TrainConfig:
        """Read `path`; `overrides` (not None) win over the file. Raises ``InputError``
        naming the file and the key (see :mod:`hepgan.io.config`)."""
        path = Path(path)

        def resolve_paths(doc: dict[str, Any]) -> dict[str, Any]:
            for key in _PATH_KEYS:
                if not isinstance(doc[key], str) or not doc[key].strip():
                    msg = f"{path}: {key} = {doc[key]!r}, expected a folder path (relative to the config, or absolute); empty is not one"
                    raise InputError(msg)
                doc[key] = str((path.parent / doc[key]).resolve()) if not Path(doc[key]).is_absolute() else doc[key]
            _check_output_folder(path, Path(doc["output"]), {k: Path(doc[k]) for k in ("dataset", "validation")})
            return doc

        cfg = load_config(cls, path, what="training config", overrides=overrides, prepare=resolve_paths)
        cfg.validate(str(path))
        return cfg

    def validate(self, source: str = "config") -> None:
        positive = ("epochs", "batch_size", "learning_rate", "disc_learning_rate", "noise_dim", "n_samples", "width", "depth")
        for name in positive:
            if not getattr(self, name) > 0:
                msg = f"{source}: {name} must be > 0, got {getattr(self, name)}"
                raise InputError(msg)
        for name in ("crps_weight", "adversarial_weight", "score_weight", "hit_weight"):
            if getattr(self, name) < 0:
                msg = f"{source}: {name} must be >= 0, got {getattr(self, name)}"
                raise InputError(msg)
        if self.score_label not in SCORE_LABELS:
            msg = f"{source}: score_label = {self.score_label!r}, expected one of {', '.join(SCORE_LABELS)}"
            raise InputError(msg)

    def to_dict(self) -> dict:
        return asdict(self)


def _check_output_folder(config: Path, output: Path, inputs: dict[str, Path]) -> None:
    """The rule for a config's output folder: anywhere (relative to the config or absolute),
    but not an existing file, and neither the same as, inside, nor a parent of an input
    folder: training writes only under `output`, by fixed names, never over its inputs."""
    out = output.resolve()
    if out.exists() and not out.is_dir():
        msg = f"{config}: output = {str(output)!r} is an existing file, not a folder; expected the folder to write the model into"
        raise InputError(msg)
    for key, folder in inputs.items():
        src = folder.resolve()
        if out == src or out.is_relative_to(src):
            msg = f"{config}: output {str(out)!r} is inside the {key} folder {str(src)!r}; expected a folder apart from the inputs"
            raise InputError(msg)
        if src.is_relative_to(out):
            msg = f"{config}: output {str(out)!r} contains the {key} folder {str(src)!r}; expected a folder apart from the inputs"
            raise InputError(msg)
