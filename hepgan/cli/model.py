"""Commands that build a model: dataset, train, export, calibrate."""

from __future__ import annotations

from pathlib import Path

import click

from hepgan.cli import (
    _PROGRESS_HELP,
    _Context,
    _guarded,
    _print_summary,
    _require,
    _writable,
    main,
)


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
    training/configs/collisions-wide-d0.toml is the shipped model's (generic.toml's hyper-parameters).
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


@main.command(short_help="Calibrate a model's track errors and sampled spread on held-out events.")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the calibrated model here.")
@click.option("--in-place", is_flag=True, help="Rewrite MODEL itself (instead of -o).")
@click.option("--what", type=click.Choice(["both", "errors", "spread"]), default="both",
              help="errors: track_err_* and the covariance against the truth (needs simulated INPUTS); "
                   "spread: track_spread_* against the classic tracks; both.")
@click.option("--max-events", type=click.IntRange(min=0), default=0, help="Use at most N events (0: all).")
@click.option("--dry-run", is_flag=True, help="Measure and print; write nothing.")
@_guarded
def calibrate(model: Path, inputs: tuple[Path, ...], output: Path | None, in_place: bool, what: str, max_events: int,
              dry_run: bool) -> None:  # fmt: skip
    """Calibrate MODEL on held-out INPUTS (tuning events, never the events you report).

    Two calibrations, stored in the model's metadata: the error model (track_err_* and
    track_cov_*: the tracks' errors against the true particle, fitted on files with truth, as
    sigma^2 = a^2 + (b q/p)^2 per |eta| bin with correlations, times a scale per class of the
    track's road ambiguity) and the spread scale
    (track_spread_*: the sampled spread around the classic answer, whose pulls
    (classic - mean) / spread it makes 1; needs the files' classic tracks).

    The calibrated model is written to -o OUT.onnx; MODEL itself is rewritten only with
    --in-place. A shipped model's export sidecar and card beside the written file
    (<name>.export.json, <name>.card.json) are updated with it. --dry-run measures and writes
    nothing.
    """
    from hepgan.errors import InputError
    from hepgan.ml.calibrate import calibrate_spread
    from hepgan.ml.error_model import calibrate_errors

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
    source = model
    if what in ("both", "spread"):
        result = calibrate_spread(source, inputs, max_events=max_events, dry_run=dry_run, output=target)
        title = f"spread measured on {model}" if dry_run else f"spread calibrated {model} -> {target}"
        _print_summary(f"{title} on {result['events']:,} events, {result['tracks']:,} tracks", {
            **{f"pull_width_{p}": round(v, 4) for p, v in result["pull_width_before"].items()},
            **{f"spread_scale_{p}": round(v, 4) for p, v in result["spread_scale"].items()}})  # fmt: skip
        source = target or model
    if what in ("both", "errors"):
        result = calibrate_errors(source, inputs, max_events=max_events, dry_run=dry_run, output=target)
        title = f"error model measured on {model}" if dry_run else f"error model fitted {model} -> {target}"
        _print_summary(f"{title} on {result['events']:,} events, {result['tracks']:,} tracks", {
            **{f"pull_scale_{p}": round(v, 4) for p, v in result["pull_scale_applied"].items()},
            "tracks_per_eta_bin": result["tracks_per_eta_bin"]})  # fmt: skip
