"""hepgan: a fast surrogate for charged-particle track reconstruction.

A conditional GAN learns to map detector hits to the tracks that the classic algorithm
(ACTS seeding + combinatorial Kalman filter) reconstructs; the generator runs with onnxruntime.

This module stays light: it imports nothing heavy (no TensorFlow, no pyacts, no uproot), so that
``hepgan --help`` answers at once. Import the submodules you need:

- `hepgan.io.schema`: the event file format;
- `hepgan.io.events`: chunked, validated reading and atomic writing of event files;
- `hepgan.reco.geometry`: the detector as barrel cylinders and endcap disks;
- `hepgan.perf.metrics`: matching, efficiency, fake and duplicate rates, TrackML score, resolutions;
- `hepgan.acts.simulation`: events from ACTS (pyacts) with truth and the classic tracks;
- `hepgan.io.importers`: TrackML and ACTS CSV events to the hepgan format.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
