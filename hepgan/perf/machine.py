"""Where and with what a benchmark ran: machine, model file, device, peak memory.

Recorded in every results JSON so that a number can be traced to the machine (CPU model,
cores, load average), the package versions and the exact model file (sha256) it came from.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

__all__ = ["PeakMemory", "cpu_model", "device_label", "machine_info", "model_info"]

log = logging.getLogger(__name__)


class PeakMemory:
    """Peak resident memory (MiB) of phases of this process.

    Linux lets a process reset its own high-water mark (``echo 5 > /proc/self/clear_refs``),
    which makes ``VmHWM`` the peak of the phase alone. Elsewhere (or where that write is
    refused) the peak of the process so far from getrusage is all there is; ``method`` says
    which one the numbers are.
    """

    def __init__(self) -> None:
        self.method = "VmHWM reset per phase (/proc/self/clear_refs)"
        try:
            self._reset()
            self._hwm()
        except OSError as err:
            log.info("per-phase peak RSS unavailable (%s); using the process peak so far", err)
            self.method = "process peak so far (resource.getrusage ru_maxrss)"

    @staticmethod
    def _reset() -> None:
        with open("/proc/self/clear_refs", "w") as f:  # noqa: PTH123 - procfs, not a path object job
            f.write("5")

    @staticmethod
    def _hwm() -> float:
        with open("/proc/self/status") as f:  # noqa: PTH123
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
        msg = "no VmHWM in /proc/self/status"
        raise OSError(msg)

    def start(self) -> None:
        if self.method.startswith("VmHWM"):
            self._reset()

    def peak_mib(self) -> float:
        if self.method.startswith("VmHWM"):
            return round(self._hwm(), 1)
        # ru_maxrss is KiB on Linux, bytes on macOS.
        scale = 1.0 / 1024.0 if sys.platform != "darwin" else 1.0 / (1024.0 * 1024.0)
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, 1)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:  # noqa: PTH123
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError as err:
        log.info("no /proc/cpuinfo (%s)", err)
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:  # noqa: PTH123
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024.0**2, 2)
    except OSError as err:
        log.info("no /proc/meminfo (%s)", err)
    return None


def _version(module: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return None


def _gpu_name() -> str | None:
    """The first GPU's name from nvidia-smi, or None where there is none."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as err:
        log.info("nvidia-smi: %s", err)
        return None
    names = [s.strip() for s in out.stdout.splitlines() if s.strip()]
    return names[0] if names else None


def machine_info() -> dict:
    """Where the numbers were measured: platform, CPU model, cores, memory (GiB), package
    versions, date (UTC, ISO 8601) and the load average (1, 5, 15 min) at the time of the call."""
    import numba
    import onnxruntime

    return {
        "platform": platform.platform(),
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "pyacts": _version("pyacts"),
        "awkward": ak.__version__,
        "hepgan": _version("hepgan"),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def model_info(path: Path) -> dict:
    """The model file's path, size, sha256, the sha256 of its ``hepgan`` metadata (canonical
    JSON: sorted keys) and the metadata's version and training facts."""
    from hepgan.reco.model_file import read_model_info

    info = read_model_info(path)
    meta = dict(info.metadata)
    canonical = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "metadata_sha256": hashlib.sha256(canonical).hexdigest(),
        "hepgan_version": meta.get("hepgan_version"),
        "training": meta.get("training"),
        "n_samples": info.n_samples,
        "noise_dim": info.noise_dim,
    }


def device_label(providers: Any) -> dict:
    """Label of the device the network ran on: 'cpu', or 'gpu' with the GPU's name."""
    from hepgan.reco.engine import _resolve_providers

    chosen = _resolve_providers(providers)
    if chosen[0] == "CPUExecutionProvider":
        return {"kind": "cpu", "name": cpu_model(), "providers": chosen, "label": "cpu"}
    name = _gpu_name() or chosen[0]
    return {"kind": "gpu", "name": name, "providers": chosen, "label": f"gpu ({name})"}
