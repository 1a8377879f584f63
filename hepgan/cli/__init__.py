"""The `hepgan` command line.

Only this module configures logging and output. Heavy modules (pyacts, uproot, numba) are imported
inside the commands, so that ``hepgan --help`` answers at once. Errors of hepgan's own become one
line on stderr and exit code 2 (bad input or usage) or 1 (anything else); ``--debug`` shows the
traceback. Ctrl-C stops any command with one line and exit code 130, leaving no partial output.

Verbosity: by default hepgan says at INFO what a slow step is doing (loading, compiling,
progress every 10 s when stderr is not a terminal) and other libraries only warn; ``-q`` keeps
warnings and errors; ``-v`` adds hepgan's debug lines and other libraries' INFO; ``-vv`` all.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from hepgan import __version__

log = logging.getLogger("hepgan")

#: Exit code of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130

_CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}


class _Context:
    debug = False
    saved_stderr: int | None = None


def _fail(message: str, code: int) -> None:
    # One line whatever the message holds (some library errors span several).
    click.echo(f"hepgan: error: {' '.join(message.split())}", err=True)
    sys.exit(code)


def _on_interrupt(signum: int, frame: Any) -> None:
    """First Ctrl-C: say so in one line, then silence this process's stdout and stderr while the
    KeyboardInterrupt unwinds, so that what libraries print on the way (ACTS's sequencer logs a
    FATAL line and a stack; Dask its shutdown) does not bury it. Writers remove their temporary
    files on the way out, so nothing partial is left."""
    click.echo("hepgan: interrupted (Ctrl-C); no partial output is left", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    _Context.saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
    raise KeyboardInterrupt


def _interrupted() -> None:
    if _Context.saved_stderr is not None:
        os.dup2(_Context.saved_stderr, 2)
    else:  # interrupted before our handler was installed
        click.echo("hepgan: interrupted (Ctrl-C); no partial output is left", err=True)
    sys.exit(EXIT_INTERRUPTED)


def _guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn hepgan's errors into one line and an exit code; the traceback only with --debug."""

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        from hepgan.errors import HepganError

        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            _interrupted()
        except HepganError as err:
            if _Context.debug:
                raise
            _fail(str(err), err.exit_code)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except OSError as err:
            if _Context.debug:
                raise
            _fail(_os_error_text(err), 1)
        except Exception as err:
            if _Context.debug:
                raise
            _fail(f"{type(err).__name__}: {err} (run with --debug for the traceback)", 1)
        return None

    return run


def _os_error_text(err: OSError) -> str:
    """An operating-system error in words, naming the user's file rather than the hidden
    temporary it was being written under (``.<name>.<pid>.tmp``, hepgan.io.atomic)."""
    import re

    name = str(err.filename) if err.filename is not None else ""
    m = re.fullmatch(r"(?P<dir>.*?)\.(?P<name>[^/]+)\.\d+\.tmp", name)
    if m:
        return f"{m['dir']}{m['name']}: cannot write it ({err.strerror}); nothing was left under this name"
    where = f"{name}: " if name else ""
    return f"{where}{err.strerror or err} (run with --debug for the traceback)"


class _Formatter(logging.Formatter):
    """hepgan's INFO lines read as sentences ('hepgan: loading ...'); warnings and others keep
    their level and logger name."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno == logging.INFO and record.name.startswith("hepgan"):
            return f"hepgan: {record.getMessage()}"
        return f"{record.levelname} {record.name}: {record.getMessage()}"


def _configure_logging(verbose: int, quiet: bool) -> None:
    ours = logging.WARNING if quiet else (logging.INFO if verbose == 0 else logging.DEBUG)
    others = logging.WARNING if verbose < 2 else logging.DEBUG
    if verbose == 1:
        others = logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    logging.basicConfig(level=others, handlers=[handler], force=True)
    logging.getLogger("hepgan").setLevel(ours)
    # Dask's 'distributed' sets its own loggers to INFO when imported (33 lines for a 2-worker
    # run); its config is read from the environment at import, here and in worker processes.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", logging.getLevelName(others).lower())


class _Group(click.Group):
    """Lists every command with its whole one-line summary (wrapped, never cut with '...')."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Group, context_settings=_CONTEXT)
@click.version_option(__version__, prog_name="hepgan")
@click.option("-v", "--verbose", count=True, show_default=False, help="More log output: -v hepgan's debug lines, -vv every library's.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bars or notices.")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """hepgan: a fast surrogate for charged-particle track reconstruction.

    Simulate events with ACTS, inspect and import event files, build training sets, train the
    conditional GAN, export and calibrate it, reconstruct tracks with the ONNX engine (or ACTS),
    triage events, and benchmark both. `hepgan demo` runs all of it on a small sample.
    `hepgan COMMAND --help` describes each command.
    """
    _configure_logging(verbose, quiet)
    _Context.debug = debug
    if ctx.invoked_subcommand is not None:
        signal.signal(signal.SIGINT, _on_interrupt)
    ctx.obj = {"progress": not quiet and sys.stderr.isatty(), "quiet": quiet}


_PROGRESS_HELP = "Progress bar (default: on when stderr is a terminal)."
_RUN_PROGRESS_HELP = "Progress bar (default: on when stderr is a terminal; elsewhere a log line every 10 s)."


TRAIN_KEYS = (
    "dataset", "validation", "output", "seed", "epochs", "batch_size", "steps_per_epoch", "learning_rate",
    "disc_learning_rate", "crps_weight", "adversarial_weight", "score_weight", "hit_weight", "residual_clip",
    "noise_dim", "n_samples", "width", "depth", "head_width", "disc_width", "disc_depth", "patience",
    "max_train_seeds", "max_validation_seeds", "score_label",
)  # fmt: skip


_RECO_HELP = """Reconstruct tracks in INPUTS (event files with a hits tree) with the surrogate or ACTS:
OUTPUT/<input name>.root per input, a tracks tree in ACTS's layout.

Resumable: each output records what made it (engine, model file and its sha256, seed, cuts,
branch map, field, hepgan version). A rerun into the same folder skips an output made the same
way, redoes one made another way (saying what differed), and --force redoes all. An output
appears whole or not at all (written under a temporary name, then renamed).

Files whose trees or branches have other names are read through --branch-map FILE.toml, e.g.

\b
    [hits]
    tree = "Hits"
    hit_x = "x"
    hit_y = "y"
"""


def _writable(path: Path, *, folder: bool = False) -> None:
    """Refuse an output that cannot be written now, not after the work (hepgan.io.writable)."""
    from hepgan.io.writable import check_writable

    check_writable(path, folder=folder)


def _branch_map(path: Path | None) -> Any:
    if path is None:
        return None
    from hepgan.io.events import BranchMap

    return BranchMap.from_toml(path)


_BRANCH_MAP_HELP = "TOML file naming your file's trees and branches (see above); default: hepgan's names."
_B_FIELD_TYPE = click.FloatRange(min=0, min_open=True)


def format_reco_summary(output: Path, summary: dict[str, Any]) -> str:
    """The summary of a reco run for people: files, events, start-up apart from ms/event."""
    lines = [f"reco -> {output}"]
    rows: list[tuple[str, str]] = [("engine", summary["engine"])]
    if summary.get("model"):
        rows.append(("model", str(summary["model"])))
    rows.append(("executor", f"{summary['executor']}, {summary['threads']} thread(s) per process"))
    files = f"{summary['files_done']} written"
    if summary.get("files_redone"):
        files += f" ({summary['files_redone']} replacing outputs made another way: see below)"
    if summary["files_skipped"]:
        files += f", {summary['files_skipped']} skipped (made the same way; --force redoes them)"
    rows.append(("files", files))
    rows.append(("events", f"{summary['events']:,}"))
    rows.append(("tracks", f"{summary['tracks']:,} ({_num(summary['tracks_per_event'])} per event)"))
    startup = summary.get("startup_s", {})
    if startup:
        rows.append(("start-up (once)", ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in startup.items())
                     + "; not in ms/event"))  # fmt: skip
    rows.append(("time", f"{summary['seconds']:.1f} s ({_num(summary['events_per_second'])} events/s)"))
    if summary.get("engine_wall_ms_per_event"):  # the stages below are summed over threads
        rows.append(("engine wall", f"{_num(summary['engine_wall_ms_per_event'])} ms/event"))
    lines += [f"  {k:<18} {v}" for k, v in rows]
    if summary["events"]:
        lines.append("  ms/event by stage")
        lines += [f"    {k:<16} {_num(v):>9}" for k, v in summary["ms_per_event"].items()]
    for f in summary.get("files", []):
        if f.get("redone"):
            lines.append(f"  redone {f['output']}: {f['redone']}")
    return "\n".join(lines)


_SELECT_HELP = (
    "Event rule over: nhits, ntracks, max_pt, sum_pt (GeV), n_high_pt (pT > 5 GeV), n_displaced (|d0| > 1 mm), "
    "max_abs_d0 (mm), mean_score, n_low_score, low_score_fraction, unassigned_fraction, n_unknown_hits, event_id; "
    "with < <= > >= == !=, and, or, not, parentheses. E.g. 'ntracks >= 50 and max_pt > 5'."
)


def _bench_events(values: tuple[str, ...]) -> int | dict[str, int] | None:
    """--events N (all sizes) or --events SIZE=N (repeatable) -> run_bench's `events`."""
    from hepgan.errors import InputError

    if not values:
        return None
    per_size: dict[str, int] = {}
    for v in values:
        size, eq, n = v.partition("=")
        text = n if eq else size
        if not text.strip().isdigit() or int(text) < 1:
            msg = f"--events {v!r}: expected N or SIZE=N with an integer N >= 1 (e.g. --events 20x50=5)"
            raise InputError(msg)
        if not eq:
            if len(values) > 1:
                msg = f"--events {v!r}: a bare N applies to every size; give SIZE=N pairs to set sizes apart"
                raise InputError(msg)
            return int(text)
        per_size[size.strip()] = int(text)
    return per_size


def _require(module: str, extra: str) -> None:
    import importlib.util

    from hepgan.errors import InputError

    if importlib.util.find_spec(module) is None:
        msg = f"this command needs {module!r}: pip install 'hepgan[{extra}]'"
        raise InputError(msg)


def _num(value: float) -> str:
    """A number for people: 3 significant digits, thousands separated, no exponents."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:  # NaN
        return "n/a"
    size = abs(value)
    if size >= 100 or value == int(value) and size < 1e15:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    if size >= 0.001:
        return f"{value:.3f}".rstrip("0").rstrip(".") if value else "0"
    return f"{value:.2g}" if value else "0"


def _print_summary(title: str, summary: dict[str, Any]) -> None:
    click.echo(title)
    width = max((len(str(k)) for k in summary), default=0)
    for key, value in summary.items():
        text = ", ".join(f"{k} {_num(v)}" for k, v in value.items()) if isinstance(value, dict) else _num(value)
        click.echo(f"  {key:<{width}}  {text}")


# The commands register themselves on `main` (imported last: they import it).
from hepgan.cli import event_files, measure, model, reconstruction  # noqa: E402, F401
