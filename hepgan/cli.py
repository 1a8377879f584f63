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

import json
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


@main.command(short_help="Simulate events with ACTS: hits, truth particles, classic tracks.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output ROOT file.")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML file of SimulationConfig keys (any of those below and pt_min, pt_max, eta_max, "
                   "vertex_sigma_xy, vertex_sigma_z, seeds_per_middle_sp, b_field); flags override it.")
@click.option("--events", type=click.IntRange(min=1), help="Number of events.  [default: 10]")
@click.option("--process",
              help="What an event is: gun (pions), ttbar or minbias (Pythia 8, 14 TeV collisions).  [default: gun]")
@click.option("--pileup", type=int,
              help="Minimum-bias pile-up collisions added to each ttbar/minbias event, 0 to 1000.  [default: 0]")
@click.option("--pileup-poisson", is_flag=True, default=None, help="Draw each event's pile-up from a Poisson of mean --pileup.")
@click.option("--pythia-setting", "pythia_settings", multiple=True,
              help="Extra Pythia 8 setting for hard scatter and pile-up, e.g. 'PhaseSpace:pTHatMin = 20.' (repeatable).")
@click.option("--vertices", type=click.IntRange(min=1), help="Gun vertices per event.  [default: 1]")
@click.option("--particles", type=click.IntRange(min=1), help="Pions per gun vertex.  [default: 100]")
@click.option("--seed", type=int, help="Random seed (same seed, same file).  [default: 42]")
@click.option("--progress/--no-progress", default=None, show_default=False, help=_PROGRESS_HELP)
@click.pass_context
@_guarded
def simulate(ctx: click.Context, output: Path, config: Path | None, progress: bool | None, **flags: Any) -> None:
    """Simulate events with ACTS (pyacts): hits, truth particles and the classic tracks.

    Events are a pion gun (pi+ and pi-, pT 0.5-10 GeV log-uniform, |eta| < 2.5, vertices spread
    by 12.5 um in x, y and 50 mm in z) or Pythia 8 collisions at 14 TeV (ttbar or minimum bias,
    plus --pileup minimum-bias collisions, each at its own vertex: sigma_xy 12.5 um, sigma_z
    50 mm, sigma_t 5 ns), through ACTS's generic detector in a 2 T solenoid field (Fatras, EM
    interactions, particles above 150 MeV); ACTS then reconstructs them (seeding, CKF,
    ambiguity resolution, timed). The field and the gun's ranges are set in --config (keys
    b_field, pt_min, pt_max, eta_max).
    """
    from hepgan.acts.simulation import SimulationConfig
    from hepgan.acts.simulation import simulate as run_simulation

    _writable(output)
    overrides = {k: v for k, v in flags.items() if v is not None and v != ()}
    cfg = SimulationConfig.from_toml(config, **overrides) if config else SimulationConfig(**overrides)
    summary = run_simulation(output, cfg, progress=ctx.obj["progress"] if progress is None else progress)
    _print_summary(f"simulated {output}", summary)


@main.command("import", short_help="Convert TrackML or ACTS CSV events to one hepgan ROOT file.")
@click.option("--format", "fmt", type=click.Choice(["trackml", "acts-csv"]), required=True,
              help="trackml: event<N>-hits.csv (+ -truth, -particles when present); acts-csv: ACTS's CSV writers' files.")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output ROOT file.")
@click.option("--detectors", type=click.Path(path_type=Path), help="ACTS detectors.csv (default: SRC/detectors.csv).")
@_guarded
def import_(fmt: str, src: Path, output: Path, detectors: Path | None) -> None:
    """Convert a folder SRC of TrackML or ACTS CSV events (.csv or .csv.gz) to one hepgan ROOT file.

    TrackML events without -truth and -particles files (real data, or hits-only samples) become
    a file of hits without truth: reco and triage read it; efficiencies need the truth.
    """
    from hepgan.io.importers import import_events

    _writable(output)
    n = import_events(fmt, src, output, detectors=detectors)
    click.echo(f"imported {n:,} events -> {output}")


@main.command(short_help="Trees, branches, events and hits per event of an event file.")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@_guarded
def inspect(file: Path, as_json: bool) -> None:
    """Trees (TTrees or RNTuples), branches, events, hits per event and geometry ids of FILE,
    and what hepgan would need that it lacks."""
    from hepgan.io.inspection import inspect_file

    report = inspect_file(file)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        from hepgan.io.inspection import format_report

        click.echo(format_report(report))


@main.command(short_help="Training shards: seeds, features and ACTS targets from simulated files.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder of shards.")
@click.option("--max-seeds-per-shard", type=click.IntRange(min=1), default=200_000,
              help="Seeds per shard file (bounds the memory of building and of loading one shard).")
@click.option("--progress/--no-progress", default=None, show_default=False, help=_PROGRESS_HELP)
@click.pass_context
@_guarded
def dataset(ctx: click.Context, inputs: tuple[Path, ...], output: Path, max_seeds_per_shard: int, progress: bool | None) -> None:
    """Training shards: our seeds on the hits of INPUTS, their features, matched to the ACTS
    tracks (and labelled real or fake from the hits' particles where the files hold truth)."""
    from hepgan.ml.dataset import DatasetConfig, build_dataset

    _writable(output, folder=True)
    doc = build_dataset(
        list(inputs), output, config=DatasetConfig(max_seeds_per_shard=max_seeds_per_shard),
        progress=ctx.obj["progress"] if progress is None else progress,
    )  # fmt: skip
    _print_summary(f"dataset {output}", doc["counts"])


#: The keys of a training config (hepgan.ml.train.TrainConfig); tests/test_cli_ux.py keeps this
#: list equal to the dataclass's fields.
TRAIN_KEYS = (
    "dataset", "validation", "output", "seed", "epochs", "batch_size", "steps_per_epoch", "learning_rate",
    "disc_learning_rate", "crps_weight", "adversarial_weight", "score_weight", "hit_weight", "residual_clip",
    "noise_dim", "n_samples", "width", "depth", "head_width", "disc_width", "disc_depth", "patience",
    "max_train_seeds", "max_validation_seeds", "score_label",
)  # fmt: skip


@main.command(short_help="Train the conditional GAN from a TOML config.")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in the output folder.")
@click.option("--epochs", type=click.IntRange(min=1), help="Override the config's epochs.")
@click.option("--progress/--no-progress", default=None, show_default=False, help=_PROGRESS_HELP)
@click.pass_context
@_guarded
def train(ctx: click.Context, config: Path, resume: bool, epochs: int | None, progress: bool | None) -> None:
    """Train the conditional GAN (Keras 3; TensorFlow by default, KERAS_BACKEND=jax on a GPU).

    CONFIG is a TOML file of these keys (dataset, validation and output are required folder
    paths, relative to the file): dataset, validation, output, seed, epochs, batch_size,
    steps_per_epoch, learning_rate, disc_learning_rate, crps_weight, adversarial_weight,
    score_weight, hit_weight, residual_clip, noise_dim, n_samples, width, depth, head_width,
    disc_width, disc_depth, patience, max_train_seeds, max_validation_seeds, score_label.
    training/configs/generic.toml is the shipped model's.
    """
    _require("keras", "train")
    from hepgan.io.notice import slow_notice
    from hepgan.ml.train import TrainConfig, check_inputs, import_tensorflow_quietly
    from hepgan.ml.train import train as run_training

    cfg = TrainConfig.from_toml(config, epochs=epochs)
    check_inputs(cfg)
    with slow_notice("importing TensorFlow"):
        import_tensorflow_quietly(debug=_Context.debug)
    card = run_training(cfg, resume=resume, progress=ctx.obj["progress"] if progress is None else progress)
    _print_summary(f"trained -> {cfg.output}", {"epochs": card["epochs_run"], "best_epoch": card["best_epoch"], **{
        k: v for k, v in card["validation"].items() if k.startswith(("resolution", "pull", "score"))}})


@main.command(short_help="Export a generator checkpoint (.keras) to ONNX, parity-checked.")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output .onnx file.")
@_guarded
def export(model: Path, output: Path) -> None:
    """Export a generator checkpoint MODEL (.keras) to ONNX (opset 17), refused unless it matches
    Keras to 1e-5.

    Beside MODEL, export needs the resolved training config (config.json, from hepgan train) or,
    for a shipped model, <name>.export.json and <name>.parity.npz (deploy/models/ has them).
    """
    _require("tf2onnx", "train")
    from hepgan.io.notice import slow_notice
    from hepgan.ml.export import check_model_file, export_onnx
    from hepgan.ml.train import import_tensorflow_quietly

    check_model_file(model)
    _writable(output)
    with slow_notice("importing TensorFlow"):
        import_tensorflow_quietly(debug=_Context.debug)
    with slow_notice("converting and checking parity"):
        diffs = export_onnx(model, output)
    _print_summary(f"exported {output}", {"max_abs_diff": max(diffs.values())})


@main.command(short_help="Calibrate a model's track errors on held-out events.")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the calibrated model here.")
@click.option("--in-place", is_flag=True, help="Rewrite MODEL itself (instead of -o).")
@click.option("--max-events", type=click.IntRange(min=0), default=0, help="Use at most N events (0: all).")
@click.option("--dry-run", is_flag=True, help="Measure and print; write nothing.")
@_guarded
def calibrate(model: Path, inputs: tuple[Path, ...], output: Path | None, in_place: bool, max_events: int, dry_run: bool) -> None:
    """Calibrate MODEL's track errors on held-out INPUTS (hits + classic tracks): the pull
    widths (classic - mean) / spread become 1; stored in the model's metadata.

    The calibrated model is written to -o OUT.onnx; MODEL itself is rewritten only with
    --in-place. --dry-run measures and writes nothing.
    """
    from hepgan.errors import InputError
    from hepgan.ml.calibrate import calibrate_spread

    if not dry_run:
        if output is None and not in_place:
            msg = f"{model}: give -o OUT.onnx for the calibrated model, or --in-place to rewrite {model.name} itself"
            raise InputError(msg)
        if output is not None and in_place:
            msg = "give either -o OUT.onnx or --in-place, not both"
            raise InputError(msg)
    target = None if dry_run else (model if in_place else output)
    if target is not None:
        _writable(target)
    result = calibrate_spread(model, inputs, max_events=max_events, dry_run=dry_run, output=target)
    title = f"measured {model}" if dry_run else f"calibrated {model} -> {target}"
    _print_summary(f"{title} on {result['events']:,} events, {result['tracks']:,} tracks", {
        **{f"pull_width_{p}": round(v, 4) for p, v in result["pull_width_before"].items()},
        **{f"spread_scale_{p}": round(v, 4) for p, v in result["spread_scale"].items()}})  # fmt: skip


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


@main.command(help=_RECO_HELP, short_help="Reconstruct tracks in event files (surrogate or ACTS); resumable.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--model", type=click.Path(path_type=Path), help="model.onnx (default: the shipped model; onnx engine).")
@click.option("--engine", type=click.Choice(["onnx", "acts"]), default="onnx",
              help="onnx: the surrogate; acts: the classic ACTS chain on the same hits (needs pyacts).")
@click.option("--branch-map", type=click.Path(path_type=Path), help=_BRANCH_MAP_HELP)
@click.option("--b-field", type=_B_FIELD_TYPE, metavar="TESLA",
              help="Field of inputs that do not record one (files from hepgan simulate do).")
@click.option("--threads", type=click.IntRange(min=1), default=1, help="onnxruntime threads per process.")
@click.option("--workers", type=click.IntRange(min=1), help="Run on a local Dask cluster of N processes.")
@click.option("--scheduler", help="Run on the Dask cluster at this address.")
@click.option("--step-events", type=click.IntRange(min=1), default=100, help="Events per task (read at once).")
@click.option("--gpu", is_flag=True, help="Use onnxruntime's CUDA provider when present.")
@click.option("--seed", type=int, default=0, help="Noise seed (per event: seed, event_id).")
@click.option("--force", is_flag=True, help="Redo every output, even one made the same way.")
@click.option("--progress/--no-progress", default=None, show_default=False, help=_RUN_PROGRESS_HELP)
@click.pass_context
@_guarded
def reco(ctx: click.Context, inputs: tuple[Path, ...], output: Path, model: Path | None, engine: str,
         branch_map: Path | None, b_field: float | None, threads: int, workers: int | None, scheduler: str | None,
         step_events: int, gpu: bool, seed: int, force: bool, progress: bool | None) -> None:  # fmt: skip
    from hepgan.reco.driver import reconstruct_files

    summary = reconstruct_files(
        list(inputs), output, model=model, engine=engine, threads=threads, workers=workers, scheduler=scheduler,
        step_events=step_events, providers="auto" if gpu else None, seed=seed, b_field=b_field,
        branch_map=_branch_map(branch_map), resume=not force,
        progress=ctx.obj["progress"] if progress is None else progress,
    )  # fmt: skip
    click.echo(format_reco_summary(output, summary))


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


@main.command(short_help="First-pass tracks, a selection, and the events to send to ACTS.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--select", "rule", required=True, help=_SELECT_HELP)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--model", type=click.Path(path_type=Path), help="model.onnx (default: the shipped model).")
@click.option("--branch-map", type=click.Path(path_type=Path),
              help="TOML file naming your file's trees and branches (as for reco: hepgan reco --help).")
@click.option("--b-field", type=_B_FIELD_TYPE, metavar="TESLA",
              help="Field of inputs that do not record one (files from hepgan simulate do).")
@click.option("--threads", type=click.IntRange(min=1), default=1, help="onnxruntime threads per process.")
@click.option("--workers", type=click.IntRange(min=1), help="Run on a local Dask cluster of N processes.")
@click.option("--scheduler", help="Run on the Dask cluster at this address.")
@click.option("--plots/--no-plots", default=True, help="Write PNG plots (needs matplotlib).")
@click.option("--progress/--no-progress", default=None, show_default=False, help=_RUN_PROGRESS_HELP)
@click.pass_context
@_guarded
def triage(ctx: click.Context, inputs: tuple[Path, ...], rule: str, output: Path, model: Path | None,
           branch_map: Path | None, b_field: float | None, threads: int, workers: int | None, scheduler: str | None,
           plots: bool, progress: bool | None) -> None:  # fmt: skip
    """Fast first-pass tracks of INPUTS, a summary, the events passing the --select rule, and
    the events to send to the classic reconstruction (the surrogate is unsure of them)."""
    from hepgan.triage import triage_files

    _writable(output, folder=True)
    summary = triage_files(
        list(inputs), output, select=rule, model=model, threads=threads, workers=workers, scheduler=scheduler,
        plots=plots, progress=ctx.obj["progress"] if progress is None else progress, b_field=b_field,
        branch_map=_branch_map(branch_map),
    )  # fmt: skip
    shown = {k: v for k, v in summary.items() if isinstance(v, int | float | str)}
    _print_summary(f"triage -> {output}", shown)


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


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Results JSON.")
@click.option("--sizes", default="1x100,20x50", show_default=True,
              help="Comma-separated sizes: VxM (gun: V vertices x M pions) or ttbar-puN (ttbar + N pile-up). "
                   "Full protocol: ttbar-pu0,ttbar-pu50,ttbar-pu200,1x100,20x50,100x50,200x50.")  # fmt: skip
@click.option("--events", multiple=True, metavar="N|SIZE=N",
              help="Events per size: N for all, or SIZE=N (repeatable). Default: 20 for 1x100 and ttbar-pu0, 5 for 20x50 "
                   "and ttbar-pu50, 3 for 100x50 and ttbar-pu200, 2 for 200x50.")  # fmt: skip
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Timed surrogate passes per thread setting.")
@click.option("--acts-repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Timed ACTS passes per configuration (max seeds per middle space point 1 and 5), interleaved.")  # fmt: skip
@click.option("--model", type=click.Path(path_type=Path), help="model.onnx (default: the shipped model).")
@click.option("--providers", help="onnxruntime providers for the network: cpu (default), cuda or auto (labelled GPU results).")
@click.option("--gpu", is_flag=True, help="Same as --providers cuda.")
@click.option("--threads-all", type=click.IntRange(min=1), help="Threads of the surrogate's all-cores run (default: all cores).")
@click.option("--seed", type=int, default=None, help="Simulation seed: a registered report seed (docs/seeds.md; default 31).")
@click.option("--allow-tuning-seed", is_flag=True, help="Run with a seed registered for training or tuning (the results say so).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), help="Keep the simulated and reconstructed files here.")
@click.option("--report", "report_html", type=click.Path(dir_okay=False, path_type=Path), help="Also write the HTML report here.")
@click.pass_context
@_guarded
def bench(ctx: click.Context, output: Path, sizes: str, events: tuple[str, ...], repeats: int, acts_repeats: int,
          model: Path | None, providers: str | None, gpu: bool, threads_all: int | None, seed: int | None,
          allow_tuning_seed: bool, workdir: Path | None, report_html: Path | None) -> None:  # fmt: skip
    """The benchmark protocol: ACTS (1 and 5 seeds per middle space point) and the surrogate on
    the same events in this process, warmed up, interleaved, repeated; prints the headline table."""
    from hepgan.errors import InputError
    from hepgan.perf.bench import format_headline, run_bench
    from hepgan.perf.seeds import DEFAULT_REPORT_SEED

    if gpu and providers not in (None, "cuda"):
        msg = f"--gpu and --providers {providers!r} disagree; give one of them"
        raise InputError(msg)
    if report_html is not None:
        _require("matplotlib", "report")
    results = run_bench(
        output, sizes=tuple(s.strip() for s in sizes.split(",") if s.strip()), events=_bench_events(events),
        repeats=repeats, acts_repeats=acts_repeats, model=model, threads_all=threads_all,
        providers="cuda" if gpu else (None if providers in (None, "cpu") else providers),
        seed=DEFAULT_REPORT_SEED if seed is None else seed, allow_tuning_seed=allow_tuning_seed,
        progress=ctx.obj["progress"], workdir=workdir,
    )  # fmt: skip
    click.echo(format_headline(results))
    click.echo(f"bench -> {output} ({len(results.get('sizes', {}))} sizes)")
    if report_html is not None:
        from hepgan.perf.report import write_report

        click.echo(f"report -> {write_report([output], report_html)}")


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output HTML page.")
@_guarded
def report(results: tuple[Path, ...], output: Path) -> None:
    """One self-contained HTML page (plots inside) from bench results JSON files."""
    _require("matplotlib", "report")
    from hepgan.perf.report import write_report

    click.echo(f"report -> {write_report(list(results), output)}")


def _require(module: str, extra: str) -> None:
    import importlib.util

    from hepgan.errors import InputError

    if importlib.util.find_spec(module) is None:
        msg = f"this command needs {module!r}: pip install 'hepgan[{extra}]'"
        raise InputError(msg)


@main.command(short_help="End to end on a small sample: simulate, reconstruct, compare with ACTS.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("hepgan-demo"),
              help="Folder for the sample and the tracks.")
@click.option("--events", type=click.IntRange(min=1), default=3, help="Events to simulate.")
@click.option("--vertices", type=click.IntRange(min=1), default=20, help="Vertices (pile-up) per event.")
@click.option("--particles", type=click.IntRange(min=1), default=50, help="Pions per vertex.")
@click.option("--seed", type=int, default=1, help="Simulation seed.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, help="Timed runs of each side, interleaved.")
@click.option("--model", type=click.Path(path_type=Path), help="model.onnx (default: the shipped model).")
@click.pass_context
@_guarded
def demo(ctx: click.Context, output: Path, events: int, vertices: int, particles: int, seed: int, repeats: int,
         model: Path | None) -> None:  # fmt: skip
    """Simulate a small sample with ACTS, reconstruct it with the shipped surrogate and with
    ACTS, and compare their physics performance against truth and their speed, both measured
    now, on 1 thread each (a rerun reuses the simulated sample, not its timings)."""
    from hepgan.demo import format_demo, run_demo

    _writable(output, folder=True)
    summary = run_demo(
        output, events=events, vertices=vertices, particles=particles, seed=seed, model=model, repeats=repeats,
        progress=ctx.obj["progress"],
    )  # fmt: skip
    click.echo(format_demo(summary))


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


if __name__ == "__main__":
    main()
