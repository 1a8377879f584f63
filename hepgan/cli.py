"""The `hepgan` command line.

Only this module configures logging and output. Heavy modules (pyacts, uproot, numba) are imported
inside the commands, so that ``hepgan --help`` answers at once. Errors of hepgan's own become one
line on stderr and exit code 2 (bad input or usage) or 1 (anything else); ``--debug`` shows the
traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from hepgan import __version__

log = logging.getLogger("hepgan")


class _Context:
    debug = False


def _fail(message: str, code: int) -> None:
    # One line whatever the message holds (some library errors span several).
    click.echo(f"hepgan: error: {' '.join(message.split())}", err=True)
    sys.exit(code)


def _guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn hepgan's errors into one line and an exit code; the traceback only with --debug."""

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        from hepgan.errors import HepganError

        try:
            return func(*args, **kwargs)
        except HepganError as err:
            if _Context.debug:
                raise
            _fail(str(err), err.exit_code)
        except (KeyboardInterrupt, click.exceptions.Exit, click.ClickException):
            raise
        except Exception as err:
            if _Context.debug:
                raise
            _fail(f"{type(err).__name__}: {err} (run with --debug for the traceback)", 1)
        return None

    return run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hepgan")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bars.")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """hepgan: a fast surrogate for charged-particle track reconstruction.

    Simulate events with ACTS, inspect and import event files, and (as they land) build
    training sets, train the conditional GAN, and reconstruct with the ONNX engine.
    """
    level = logging.WARNING if quiet or verbose == 0 else (logging.INFO if verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    _Context.debug = debug
    ctx.obj = {"progress": not quiet and sys.stderr.isatty(), "quiet": quiet}


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output ROOT file.")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TOML config; flags override it.")
@click.option("--events", type=click.IntRange(min=1), help="Number of events.")
@click.option("--process", help="What an event is: gun (pions; the default), ttbar or minbias (Pythia 8, 14 TeV).")
@click.option("--pileup", type=int, help="Pile-up collisions per ttbar/minbias event (0 to 1000).")
@click.option("--pileup-poisson", is_flag=True, default=None, help="Draw the pile-up per event from a Poisson of mean --pileup.")
@click.option("--pythia-setting", "pythia_settings", multiple=True,
              help="Extra Pythia 8 setting for hard scatter and pile-up, e.g. 'PhaseSpace:pTHatMin = 20.' (repeatable).")
@click.option("--vertices", type=click.IntRange(min=1), help="Gun vertices per event.")
@click.option("--particles", type=click.IntRange(min=1), help="Pions per gun vertex.")
@click.option("--seed", type=int, help="Random seed (same seed, same file).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.pass_context
@_guarded
def simulate(ctx: click.Context, output: Path, config: Path | None, progress: bool | None, **flags: Any) -> None:
    """Simulate events with ACTS (pyacts): a pion gun, or Pythia 8 ttbar / minbias collisions
    with pile-up; hits, truth particles and the classic tracks."""
    from hepgan.acts.simulation import SimulationConfig
    from hepgan.acts.simulation import simulate as run_simulation

    overrides = {k: v for k, v in flags.items() if v is not None and v != ()}
    cfg = SimulationConfig.from_toml(config, **overrides) if config else SimulationConfig(**overrides)
    summary = run_simulation(output, cfg, progress=ctx.obj["progress"] if progress is None else progress)
    _print_summary(f"simulated {output}", summary)


@main.command("import")
@click.option("--format", "fmt", type=click.Choice(["trackml", "acts-csv"]), required=True, help="Source format.")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output ROOT file.")
@click.option("--detectors", type=click.Path(path_type=Path), help="ACTS detectors.csv (default: SRC/detectors.csv).")
@_guarded
def import_(fmt: str, src: Path, output: Path, detectors: Path | None) -> None:
    """Convert a folder of TrackML or ACTS CSV events to one hepgan ROOT file."""
    from hepgan.io.importers import import_events

    n = import_events(fmt, src, output, detectors=detectors)
    click.echo(f"imported {n} events -> {output}")


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@_guarded
def inspect(file: Path, as_json: bool) -> None:
    """Trees, branches, events, hits per event and geometry ids of an event file."""
    from hepgan.io.inspection import inspect_file

    report = inspect_file(file)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        from hepgan.io.inspection import format_report

        click.echo(format_report(report))


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder of shards.")
@click.option("--max-seeds-per-shard", type=click.IntRange(min=1), default=200_000, show_default=True)
@click.pass_context
@_guarded
def dataset(ctx: click.Context, inputs: tuple[Path, ...], output: Path, max_seeds_per_shard: int) -> None:
    """Training shards: our seeds on the hits, their features, matched to the ACTS tracks
    (and labelled real or fake from the hits' particles where the files hold truth)."""
    from hepgan.ml.dataset import DatasetConfig, build_dataset

    doc = build_dataset(
        list(inputs), output, config=DatasetConfig(max_seeds_per_shard=max_seeds_per_shard), progress=ctx.obj["progress"]
    )
    _print_summary(f"dataset {output}", doc["counts"])


@main.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in the output folder.")
@click.option("--epochs", type=click.IntRange(min=1), help="Override the config's epochs.")
@click.pass_context
@_guarded
def train(ctx: click.Context, config: Path, resume: bool, epochs: int | None) -> None:
    """Train the conditional GAN (Keras 3; TensorFlow by default, KERAS_BACKEND=jax on a GPU)."""
    _require("keras", "train")
    from hepgan.ml.train import TrainConfig, check_inputs, import_tensorflow_quietly
    from hepgan.ml.train import train as run_training

    cfg = TrainConfig.from_toml(config, epochs=epochs)
    check_inputs(cfg)
    import_tensorflow_quietly(debug=_Context.debug)
    card = run_training(cfg, resume=resume, progress=ctx.obj["progress"])
    _print_summary(f"trained -> {cfg.output}", {"epochs": card["epochs_run"], "best_epoch": card["best_epoch"], **{
        k: v for k, v in card["validation"].items() if k.startswith(("resolution", "pull", "score"))}})


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output .onnx file.")
@_guarded
def export(model: Path, output: Path) -> None:
    """Export a generator checkpoint to ONNX (opset 17), refused unless it matches Keras to 1e-5."""
    _require("tf2onnx", "train")
    from hepgan.ml.export import check_model_file, export_onnx
    from hepgan.ml.train import import_tensorflow_quietly

    check_model_file(model)
    import_tensorflow_quietly(debug=_Context.debug)

    diffs = export_onnx(model, output)
    _print_summary(f"exported {output}", {"max_abs_diff": max(diffs.values())})


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--max-events", type=click.IntRange(min=0), default=0, help="Use at most N events (0: all).")
@click.option("--dry-run", is_flag=True, help="Measure and print; leave the model file as it is.")
@_guarded
def calibrate(model: Path, inputs: tuple[Path, ...], max_events: int, dry_run: bool) -> None:
    """Calibrate MODEL's track errors on held-out INPUTS (hits + classic tracks): the pull
    widths (classic - mean) / spread become 1; stored in the model's metadata."""
    from hepgan.ml.calibrate import calibrate_spread

    result = calibrate_spread(model, inputs, max_events=max_events, dry_run=dry_run)
    _print_summary(f"{'measured' if dry_run else 'calibrated'} {model} on {result['events']} events, {result['tracks']} tracks", {
        **{f"pull_width_{p}": round(v, 4) for p, v in result["pull_width_before"].items()},
        **{f"spread_scale_{p}": round(v, 4) for p, v in result["spread_scale"].items()}})  # fmt: skip


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--model", type=click.Path(path_type=Path), help="model.onnx (default: the shipped model; onnx engine).")
@click.option("--engine", type=click.Choice(["onnx", "acts"]), default="onnx", show_default=True,
              help="onnx: the surrogate; acts: the classic ACTS chain on the same hits (needs pyacts).")
@click.option("--b-field", type=float, metavar="TESLA",
              help="Field of inputs that do not record one (files from hepgan simulate do).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="onnxruntime threads per process.")
@click.option("--workers", type=click.IntRange(min=1), help="Run on a local Dask cluster of N processes.")
@click.option("--scheduler", help="Run on the Dask cluster at this address.")
@click.option("--step-events", type=click.IntRange(min=1), default=100, show_default=True, help="Events per task.")
@click.option("--gpu", is_flag=True, help="Use onnxruntime's CUDA provider when present.")
@click.option("--seed", type=int, default=0, show_default=True, help="Noise seed (per event: seed, event_id).")
@click.option("--progress/--no-progress", default=None)
@click.pass_context
@_guarded
def reco(ctx: click.Context, inputs: tuple[Path, ...], output: Path, model: Path | None, engine: str,
         b_field: float | None, threads: int, workers: int | None, scheduler: str | None, step_events: int, gpu: bool,
         seed: int, progress: bool | None) -> None:
    """Reconstruct tracks with the surrogate (or ACTS): OUTPUT/<input name>.root per input (resumable)."""
    from hepgan.reco.driver import reconstruct_files

    summary = reconstruct_files(
        list(inputs), output, model=model, engine=engine, threads=threads, workers=workers, scheduler=scheduler,
        step_events=step_events, providers="auto" if gpu else None, seed=seed, b_field=b_field,
        progress=ctx.obj["progress"] if progress is None else progress,
    )  # fmt: skip
    _print_summary(f"reco -> {output}", {k: v for k, v in summary.items() if k != "files"})


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--select", "rule", required=True, help="Event rule, e.g. 'ntracks >= 50 and max_pt > 5'.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--model", type=click.Path(path_type=Path), help="model.onnx (default: the shipped model).")
@click.option("--b-field", type=float, metavar="TESLA",
              help="Field of inputs that do not record one (files from hepgan simulate do).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), help="Run on a local Dask cluster of N processes.")
@click.option("--scheduler", help="Run on the Dask cluster at this address.")
@click.option("--plots/--no-plots", default=True, show_default=True)
@click.pass_context
@_guarded
def triage(ctx: click.Context, inputs: tuple[Path, ...], rule: str, output: Path, model: Path | None,
           b_field: float | None, threads: int, workers: int | None, scheduler: str | None, plots: bool) -> None:
    """Fast first-pass tracks, a summary, the events passing RULE, and the events to send to
    the classic reconstruction (the surrogate is unsure of them)."""
    from hepgan.triage import triage_files

    summary = triage_files(
        list(inputs), output, select=rule, model=model, threads=threads, workers=workers, scheduler=scheduler,
        plots=plots, progress=ctx.obj["progress"], b_field=b_field,
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


@main.command()
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("hepgan-demo"), show_default=True)
@click.option("--events", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--vertices", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--particles", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--model", type=click.Path(path_type=Path), help="model.onnx (default: the shipped model).")
@click.pass_context
@_guarded
def demo(ctx: click.Context, output: Path, events: int, vertices: int, particles: int, seed: int, model: Path | None) -> None:
    """The embedded default: simulate a small sample with ACTS, reconstruct it with the shipped
    surrogate, and compare physics performance and speed (1 thread each)."""
    from hepgan.demo import run_demo

    summary = run_demo(
        output, events=events, vertices=vertices, particles=particles, seed=seed, model=model, progress=ctx.obj["progress"]
    )
    _print_summary("demo", summary)


def _print_summary(title: str, summary: dict[str, Any]) -> None:
    click.echo(title)
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items())
        click.echo(f"  {key:<28} {value}")


if __name__ == "__main__":
    main()
