"""Commands that make and read event files: simulate, import, inspect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from hepgan.cli import (
    _PROGRESS_HELP,
    _guarded,
    _print_summary,
    _writable,
    main,
)


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
@click.option("--workers", type=int, metavar="N",
              help="Simulate on a local Dask cluster of N processes (same events as without; needs hepgan[dask]).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Simulate on the running Dask cluster at this address (same events as without).")
@click.option("--progress/--no-progress", default=None, show_default=False, help=_PROGRESS_HELP)
@click.pass_context
@_guarded
def simulate(ctx: click.Context, output: Path, config: Path | None, progress: bool | None, workers: int | None,
             scheduler: str | None, **flags: Any) -> None:
    """Simulate events with ACTS (pyacts): hits, truth particles and the classic tracks.

    Events are a pion gun (pi+ and pi-, pT 0.5-10 GeV log-uniform, |eta| < 2.5, vertices spread
    by 12.5 um in x, y and 50 mm in z) or Pythia 8 collisions at 14 TeV (ttbar or minimum bias,
    plus --pileup minimum-bias collisions, each at its own vertex: sigma_xy 12.5 um, sigma_z
    50 mm, sigma_t 5 ns), through ACTS's generic detector in a 2 T solenoid field (Fatras, EM
    interactions; collisions keep particles above 150 MeV); ACTS then reconstructs them (seeding, CKF,
    ambiguity resolution, timed). The field and the gun's ranges are set in --config (keys
    b_field, pt_min, pt_max, eta_max).

    --workers N / --scheduler ADDRESS share the events out over Dask worker processes, in ranges
    of at most chunk_events events, and write them here in order. The file is the same as a
    run in this process (acts_timing apart): each event's random numbers derive from the seed
    and its number, and Pythia's collisions come in blocks of 100 events seeded from (seed,
    block), the first block being what a run has always made. A range that starts inside a
    block regenerates the block's collisions before it (extra Pythia time, no extra ACTS time);
    with --pileup-poisson a range is a whole block (ACTS cannot skip a Poisson pile-up), so
    fewer than 100 such events run on one worker.
    """
    from hepgan.acts.simulation import SimulationConfig
    from hepgan.acts.simulation import simulate as run_simulation
    from hepgan.distributed import make_executor

    make_executor(workers=workers, scheduler=scheduler)  # refuse bad values before any work
    _writable(output)
    overrides = {k: v for k, v in flags.items() if v is not None and v != ()}
    cfg = SimulationConfig.from_toml(config, **overrides) if config else SimulationConfig(**overrides)
    summary = run_simulation(output, cfg, progress=ctx.obj["progress"] if progress is None else progress,
                             workers=workers, scheduler=scheduler)
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

