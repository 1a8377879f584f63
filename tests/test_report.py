"""hepgan.perf.report: a self-contained page from bench JSONs, rendered in headless Chromium."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("onnx")
pytest.importorskip("acts")

from _fake_model import model_for_tests  # noqa: E402

from hepgan.errors import InputError  # noqa: E402
from hepgan.perf.bench import run_bench  # noqa: E402
from hepgan.perf.report import write_report  # noqa: E402

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium_args(exe: str, profile: Path) -> list[str]:
    return [
        exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}",
    ]  # fmt: skip


def _png_chunks(data: bytes) -> dict[bytes, list[bytes]]:
    """Chunks of a PNG by type, each CRC-checked (a PNG decoder's first job, without PIL)."""
    assert data[:8] == _PNG_MAGIC, data[:8]
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r} chunk"
        chunks.setdefault(kind, []).append(body)
        pos += 12 + length
        if kind == b"IEND":
            break
    assert b"IHDR" in chunks and b"IDAT" in chunks and b"IEND" in chunks
    return chunks


def _png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", _png_chunks(data)[b"IHDR"][0][:8])


def _png_not_blank(data: bytes) -> bool:
    """True when the decompressed 8-bit RGB(A) rows hold more than one colour."""
    chunks = _png_chunks(data)
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    raw = zlib.decompress(b"".join(chunks[b"IDAT"]))
    bpp = 3 if colour == 2 else 4
    stride = 1 + width * bpp
    assert len(raw) == stride * height
    # Filter bytes differ by row; compare unfiltered-ish content: a blank page compresses to
    # rows that are all the same after the first, so count distinct rows.
    rows = {raw[i * stride + 1 : (i + 1) * stride] for i in range(0, height, max(1, height // 400))}
    return len(rows) > 5


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    out = tmp / "bench-cpu.json"
    run_bench(out, sizes=("1x20", "2x20"), events=1, repeats=1, acts_repeats=1, model=model_for_tests(tmp),
              progress=False, workdir=tmp / "work")  # fmt: skip
    return out


@pytest.fixture(scope="module")
def report(bench_json: Path) -> tuple[Path, str]:
    # A second file labelled as a GPU run: the page must keep the two apart.
    gpu = copy.deepcopy(json.loads(bench_json.read_text()))
    gpu["device"] = {"kind": "gpu", "name": "Test GPU X1", "providers": ["CUDAExecutionProvider"], "label": "gpu (Test GPU X1)"}
    gpu_path = bench_json.with_name("bench-gpu.json")
    gpu_path.write_text(json.dumps(gpu))
    out = write_report([bench_json, gpu_path], bench_json.with_name("report.html"))
    return out, out.read_text(encoding="utf-8")


def test_page_is_self_contained(report: tuple[Path, str]) -> None:
    path, page = report
    assert path.name == "report.html"
    srcs = re.findall(r'<img src="([^"]+)"', page)
    # time-vs-hits, then per file: stage bars, rates, and 4 plots per size (2 sizes)
    assert len(srcs) == 1 + 2 * (2 + 4 * 2)
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        w, h = _png_size(data)
        assert w >= 400 and h >= 200
    # nothing is fetched from elsewhere
    assert not re.search(r'(src|href)="(https?:|//)', page)
    assert "cpu - bench-cpu.json" in page and "gpu (Test GPU X1) - bench-gpu.json" in page
    assert "Headline figures" in page and "Machine" in page and "k (all sizes)" in page
    # both ACTS configurations, the spread of each speed-up and the intervals are on the page
    for text in ("ACTS-1", "ACTS-5", "× [", "68% CL", "Paired counts", "McNemar", "start-up s"):
        assert text in page, text
    training = json.loads(path.with_name("bench-cpu.json").read_text())["model"]["training"] or {}
    # a page made with the stand-in model says so
    assert ("test-only stand-in" in page) == bool(training.get("fake"))


def test_renders_in_chromium(report: tuple[Path, str], tmp_path: Path) -> None:
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium); the render check needs a browser")
    path, _ = report
    url = path.resolve().as_uri()
    dom = subprocess.run(
        [*_chromium_args(exe, tmp_path / "p1"), "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "<h1>hepgan benchmark: surrogate vs ACTS</h1>" in dom  # the page loaded and was parsed
    srcs = re.findall(r'<img src="(data:image/png;base64,[^"]+)"', dom)
    assert len(srcs) == 21
    for src in srcs:
        try:
            data = base64.b64decode(src.split(",", 1)[1], validate=True)
        except binascii.Error as err:
            pytest.fail(f"image data URI is not base64: {err}")
        _png_chunks(data)
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*_chromium_args(exe, tmp_path / "p2"), f"--screenshot={shot}", "--window-size=1200,3000", url],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    data = shot.read_bytes()
    assert _png_size(data) == (1200, 3000)
    assert _png_not_blank(data)
    # keep one for people to look at
    shutil.copy(shot, path.with_name("report-screenshot.png"))


def test_refuses_what_is_not_bench_json(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not a hepgan bench results file"):
        write_report([bad], tmp_path / "r.html")
    bad.write_text("{")
    with pytest.raises(InputError, match="not JSON"):
        write_report([bad], tmp_path / "r.html")
    bad.write_text('{"schema": "hepgan-bench/1", "sizes": {}}')
    with pytest.raises(InputError, match="rerun 'hepgan bench'"):
        write_report([bad], tmp_path / "r.html")
    with pytest.raises(InputError, match="no bench results"):
        write_report([], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
