"""Commands that reconstruct: reco, triage, demo."""

from __future__ import annotations

from pathlib import Path

import click

from hepgan.cli import (
    _B_FIELD_TYPE,
    _BRANCH_MAP_HELP,
    _RECO_HELP,
    _RUN_PROGRESS_HELP,
    _SELECT_HELP,
    _branch_map,
    _guarded,
    _print_summary,
    _writable,
    format_reco_summary,
    main,
)

_THREADS_HELP = "Events reconstructed at once per process, one thread each (e.g. the number of cores; onnx engine)."


@main.command(help=_RECO_HELP, short_help="Reconstruct tracks in event files (surrogate or ACTS); resumable.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--model", type=click.Path(path_type=Path), help="model.onnx (default: the shipped model; onnx engine).")
@click.option("--engine", type=click.Choice(["onnx", "acts"]), default="onnx",
              help="onnx: the surrogate; acts: the classic ACTS chain on the same hits (needs pyacts).")
@click.option("--branch-map", type=click.Path(path_type=Path), help=_BRANCH_MAP_HELP)
@click.option("--b-field", type=_B_FIELD_TYPE, metavar="TESLA",
              help="Field of inputs that do not record one (files from hepgan simulate do).")
@click.option("--threads", type=click.IntRange(min=1), default=1, help=_THREADS_HELP)
@click.option("--workers", type=click.IntRange(min=1), help="Run on a local Dask cluster of N processes.")
@click.option("--scheduler", help="Run on the Dask cluster at this address.")
@click.option("--step-events", type=click.IntRange(min=1), default=100, help="Events per task (read at once).")
@click.option("--gpu", is_flag=True, help="Use onnxruntime's CUDA provider when present.")
@click.option("--seed", type=int, default=0, help="Noise seed (per event: seed, event_id).")
@click.option("--leftover-pt-min", type=click.FloatRange(min=0.0, max=100.0), default=0.3, show_default=True,
              metavar="GEV", help="The onnx engine's leftover pass: the chain once more over the hits no track "
              "took, seeded down to this pT; 0: one pass (faster at pile-up, less complete).")
@click.option("--force", is_flag=True, help="Redo every output, even one made the same way.")
@click.option("--progress/--no-progress", default=None, show_default=False, help=_RUN_PROGRESS_HELP)
@click.pass_context
@_guarded
def reco(ctx: click.Context, inputs: tuple[Path, ...], output: Path, model: Path | None, engine: str,
         branch_map: Path | None, b_field: float | None, threads: int, workers: int | None, scheduler: str | None,
         step_events: int, gpu: bool, seed: int, leftover_pt_min: float, force: bool,
         progress: bool | None) -> None:  # fmt: skip
    from hepgan.reco.assignment import AssignmentConfig
    from hepgan.reco.driver import reconstruct_files

    summary = reconstruct_files(
        list(inputs), output, model=model, engine=engine, threads=threads, workers=workers, scheduler=scheduler,
        step_events=step_events, providers="auto" if gpu else None, seed=seed, b_field=b_field,
        branch_map=_branch_map(branch_map), resume=not force,
        assignment=AssignmentConfig(leftover_pt_min=leftover_pt_min),
        progress=ctx.obj["progress"] if progress is None else progress,
    )  # fmt: skip
    click.echo(format_reco_summary(output, summary))


@main.command(short_help="First-pass tracks, a selection, and the events to send to ACTS.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--select", "rule", required=True, help=_SELECT_HELP)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--model", type=click.Path(path_type=Path), help="model.onnx (default: the shipped model).")
@click.option("--branch-map", type=click.Path(path_type=Path),
              help="TOML file naming your file's trees and branches (as for reco: hepgan reco --help).")
@click.option("--b-field", type=_B_FIELD_TYPE, metavar="TESLA",
              help="Field of inputs that do not record one (files from hepgan simulate do).")
@click.option("--threads", type=click.IntRange(min=1), default=1, help=_THREADS_HELP)
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


@main.command(short_help="End to end on a small sample: simulate, reconstruct, compare with ACTS.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("hepgan-demo"),
              help="Folder for the sample and the tracks.")
@click.option("--events", type=click.IntRange(min=1), default=3, help="Events to simulate.")
@click.option("--process", type=click.Choice(["ttbar", "minbias", "gun"]), default="ttbar",
              help="Pythia 8 collisions (14 TeV) or a pion gun.")
@click.option("--pileup", type=click.IntRange(min=0, max=1000), default=50, help="Pile-up collisions per ttbar/minbias event.")
@click.option("--vertices", type=click.IntRange(min=1), default=20, help="Gun vertices per event (--process gun).")
@click.option("--particles", type=click.IntRange(min=1), default=50, help="Pions per gun vertex (--process gun).")
@click.option("--seed", type=int, default=1, help="Simulation seed.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, help="Timed runs of each side, interleaved.")
@click.option("--model", type=click.Path(path_type=Path), help="model.onnx (default: the shipped model).")
@click.pass_context
@_guarded
def demo(ctx: click.Context, output: Path, events: int, process: str, pileup: int, vertices: int, particles: int,
         seed: int, repeats: int, model: Path | None) -> None:  # fmt: skip
    """Simulate a small sample (default: 3 Pythia 8 ttbar events with 50 pile-up collisions each)
    with ACTS, reconstruct it with the shipped surrogate and with ACTS, and compare their physics performance against truth and their speed, both measured
    now, on 1 thread each (a rerun reuses the simulated sample, not its timings)."""
    from hepgan.demo import format_demo, run_demo

    _writable(output, folder=True)
    summary = run_demo(
        output, events=events, process=process, pileup=pileup, vertices=vertices, particles=particles, seed=seed,
        model=model, repeats=repeats,
        progress=ctx.obj["progress"],
    )  # fmt: skip
    click.echo(format_demo(summary))

