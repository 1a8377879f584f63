"""The package's shape: small modules, imports that flow downward, no path tricks, a light top level."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hepgan"

#: What each layer may import from hepgan (besides itself). Lower layers never import higher ones:
#: io <- acts <- reco <- perf.metrics <- ml <- perf (bench, report) <- the command line and its
#: helpers. (reco's file driver runs either engine; it imports the classic one, lazily, only for
#: ``--engine acts``.)
_LEAVES = {"hepgan", "hepgan.errors", "hepgan.distributed"}
ALLOWED = {
    "hepgan.io": _LEAVES | {"hepgan.io"},
    "hepgan.acts": _LEAVES | {"hepgan.io", "hepgan.acts"},
    "hepgan.reco": _LEAVES | {"hepgan.io", "hepgan.acts", "hepgan.reco"},
    "hepgan.perf.metrics": _LEAVES | {"hepgan.io", "hepgan.perf.metrics"},
    "hepgan.ml": _LEAVES | {"hepgan.io", "hepgan.reco", "hepgan.acts", "hepgan.perf.metrics", "hepgan.ml"},
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def _hepgan_imports(path: Path) -> set[str]:
    """The hepgan modules `path` imports (``from hepgan.perf import metrics`` -> ``hepgan.perf.metrics``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "hepgan"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hepgan":
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if _is_module(sub) else node.module)
    return found


def _layer(module: str) -> str | None:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def _within(module: str, allowed: set[str]) -> bool:
    return any(module == a or module.startswith(a + ".") for a in allowed)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_small(path):
    n = len(path.read_text().splitlines())
    assert n <= 600, f"{path.relative_to(ROOT)} has {n} lines; split it by concern"


def test_imports_flow_downward():
    wrong = []
    for path in _modules():
        layer = _layer(_name(path))
        if layer is None:
            continue
        for imp in _hepgan_imports(path):
            if imp != "hepgan" and not _within(imp, ALLOWED[layer] - {"hepgan"}):
                wrong.append(f"{path.relative_to(ROOT)} imports {imp}")
    assert not wrong, "\n".join(wrong)


def test_no_sys_path_edits():
    offenders = [
        str(p.relative_to(ROOT))
        for folder in ("tests", "benchmarks", "hepgan", "training")
        for p in (ROOT / folder).rglob("*.py")
        if "sys.path" in p.read_text() and p.name != "test_architecture.py"
    ]
    assert not offenders, offenders


def test_top_level_is_light_and_lists_its_api():
    code = "import sys, hepgan; print(sorted(m for m in ('tensorflow','keras','uproot','acts','numba','onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", out
    import hepgan

    assert "__version__" in hepgan.__all__
    for sub in ("io", "reco", "acts", "ml", "perf"):
        assert (PACKAGE / sub / "__init__.py").read_text().startswith('"""'), sub


def test_public_api_resolves():
    import hepgan

    for name in hepgan.__all__:
        assert getattr(hepgan, name) is not None, name
