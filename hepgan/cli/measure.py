"""Commands that measure: bench, report."""

from __future__ import annotations

from pathlib import Path

import click

from hepgan.cli import (
    _bench_events,
    _guarded,
    _require,
    main,
)


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
@click.option("--threads-all", type=click.IntRange(min=1), help="Threads (events at once) of the surrogate's all-cores run (default: all cores).")
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

