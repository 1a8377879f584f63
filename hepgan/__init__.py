"""hepgan: a fast surrogate for charged-particle track reconstruction.

A conditional GAN learns to map detector hits to the tracks that the classic algorithm
(ACTS seeding + combinatorial Kalman filter) reconstructs; the generator runs with onnxruntime.

The subpackages follow the pipeline, data flowing downward (docs/pipeline.md):

- `hepgan.io`: the event file format (schema), chunked validated reading, atomic writing,
  configs, importers (TrackML, ACTS CSV) and inspection;
- `hepgan.acts`: the ACTS chain (pyacts): gun and Pythia 8 collision simulation, the classic
  reconstruction on any file's hits;
- `hepgan.reco`: the surrogate: geometry, helix, seeding, features, road fit, the model file,
  the engine (network, assignment, ambiguity, completion, errors) and the file driver;
- `hepgan.ml`: training set, the conditional GAN, training, ONNX export, calibration (the only
  place TensorFlow is imported);
- `hepgan.perf`: metrics against truth and against the classic tracks, the benchmark, the report;
- `hepgan.cli`, `hepgan.triage`, `hepgan.demo`, `hepgan.distributed`: the user-facing layer.

The names in ``__all__`` are the public API; each is imported from its module on first use, so
that ``import hepgan`` stays light (no TensorFlow, pyacts, uproot or numba) and ``hepgan --help``
answers at once.

>>> import hepgan
>>> hepgan.reconstruct_files  # doctest: +SKIP
<function reconstruct_files at ...>
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_API = {
    "HepganError": "hepgan.errors",
    "InputError": "hepgan.errors",
    "BranchMap": "hepgan.io.events",
    "read_events": "hepgan.io.events",
    "iterate_chunks": "hepgan.io.events",
    "RootEventWriter": "hepgan.io.events",
    "import_events": "hepgan.io.importers",
    "inspect_file": "hepgan.io.inspection",
    "SimulationConfig": "hepgan.acts.simulation",
    "simulate": "hepgan.acts.simulation",
    "Engine": "hepgan.reco.engine",
    "read_model_info": "hepgan.reco.model_file",
    "shipped_model_path": "hepgan.reco.model_file",
    "reconstruct_files": "hepgan.reco.driver",
    "triage_files": "hepgan.triage",
    "run_bench": "hepgan.perf.bench",
    "write_report": "hepgan.perf.report",
    "metrics": "hepgan.perf.metrics",
}

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        msg = f"module 'hepgan' has no attribute {name!r}"
        raise AttributeError(msg)
    if module.endswith("." + name):  # a module itself (hepgan.metrics)
        return importlib.import_module(module)
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
