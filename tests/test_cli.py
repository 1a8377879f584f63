"""The command line: exit codes, one-line errors, no heavy imports for --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def hepgan(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hepgan.cli", *args], capture_output=True, text=True, cwd=cwd, check=False, timeout=600
    )


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys, hepgan.cli\n"
        "heavy = {'uproot', 'awkward', 'numba', 'acts', 'tensorflow', 'keras', 'onnxruntime'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    out = hepgan("--help")
    assert out.returncode == 0
    for command in ("simulate", "import", "inspect", "demo"):
        assert command in out.stdout


def test_bad_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.root"
    bad.write_bytes(b"\x00" * 1000)
    out = hepgan("inspect", str(bad))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert lines[0].startswith("hepgan: error: ") and "bad.root" in lines[0]


def test_debug_shows_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.root"
    bad.write_bytes(b"\x00" * 1000)
    out = hepgan("--debug", "inspect", str(bad))
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_usage_error_exit_2() -> None:
    assert hepgan("simulate").returncode == 2
    assert hepgan("simulate", "-o", "x.root", "--events", "0").returncode == 2
    assert hepgan("no-such-command").returncode == 2


def test_inspect_json(hits_file: Path) -> None:
    out = hepgan("inspect", "--json", str(hits_file))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["trees"]["hits"]["entries"] == 7
    assert report["hits"]["events"] == 7
    assert report["hits"]["hits_per_event"]["min"] >= 5
    assert set(report["hits"]["hits_by_volume_layer"]) <= {"8:2", "8:4", "8:6", "8:8", "13:2", "13:4", "13:6", "13:8", "17:2", "17:4"}


def test_config_with_unknown_key_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "sim.toml"
    cfg.write_text("events = 2\nvertexes = 3\n")
    out = hepgan("simulate", "--config", str(cfg), "-o", str(tmp_path / "o.root"))
    assert out.returncode == 2, out.stderr
    assert "vertexes" in out.stderr and "vertices" in out.stderr
    assert not (tmp_path / "o.root").exists()


def test_import_missing_column_leaves_no_output(tmp_path: Path) -> None:
    src = tmp_path / "csv"
    src.mkdir()
    (src / "event000000001-hits.csv").write_text("hit_id,x,y,z,volume_id,layer_id\n1,1,2,3,8,2\n")
    out = hepgan("import", "--format", "trackml", str(src), "-o", str(tmp_path / "o.root"))
    assert out.returncode == 2
    assert "module_id" in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["csv"]


@pytest.mark.slow
def test_simulate_then_inspect(tmp_path: Path) -> None:
    out = tmp_path / "s.root"
    run = hepgan("simulate", "-o", str(out), "--events", "2", "--vertices", "1", "--particles", "10", "--seed", "3")
    assert run.returncode == 0, run.stderr
    report = json.loads(hepgan("inspect", "--json", str(out)).stdout)
    assert report["trees"]["tracks"]["entries"] == 2
    assert report["tracks"]["tracks_per_event"]["mean"] > 3
