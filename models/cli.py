"""``georeset model ...``: the embedding contract and evaluation with robustness figures.

A typer app named ``app`` (mounted by the top-level CLI as ``georeset model``); also runnable on its own:
``python -m georeset.models.cli embed --checkpoint RUN/checkpoint.pt --image X.tif --gsd 10 --json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from georeset.cli_support import fail
from georeset.errors import GeoResetError

__all__ = ["app"]

app = typer.Typer(help="Use a trained GEO-ReSeT encoder: embed any GeoTIFF, evaluate a checkpoint.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


@app.command()
def embed(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="checkpoint.pt written by training.")],
    image: Annotated[list[Path], typer.Option(
        "--image", help="GeoTIFF (any number of bands, any size from 1x1); repeat it, or give a folder, for one band "
        "set of several files at their own resolutions (e.g. 12 single-band Sentinel-2 files at 10/20/60 m).")],
    wavelengths: Annotated[str | None, typer.Option(
        "--wavelengths", help="Optical: central wavelength of each band in micrometres, e.g. 0.66,0.56,0.48.")] = None,
    polarizations: Annotated[str | None, typer.Option(
        "--polarizations", help="SAR: polarisation of each band, e.g. VV,VH (values in dB).")] = None,
    gsd: Annotated[float | None, typer.Option(
        "--gsd", help="Ground sampling distance in metres (default: the file's pixel size if projected).")] = None,
    scale: Annotated[float | None, typer.Option(
        "--scale", help="Physical value = DN * scale + offset (default: GDAL scale/offset, then Sentinel-2 "
        "BOA_QUANTIFICATION_VALUE/BOA_ADD_OFFSET tags).")] = None,
    offset: Annotated[float | None, typer.Option("--offset", help="See --scale.")] = None,
    norm: Annotated[str, typer.Option(
        "--norm", help="auto | checkpoint (trained statistics; physical units) | sample (per-band own statistics, "
        "for uncalibrated data such as 8-bit RGB).")] = "auto",
    max_tokens: Annotated[int | None, typer.Option(
        "--max-tokens", help="Token budget (random subset, fixed seed); default: the checkpoint's.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the token subset.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object {mean, variance, ...}.")] = False,
) -> None:
    """Embed a GeoTIFF: prints the mean and per-dimension variance of its embedding."""
    from georeset.models.embed import embed_geotiff, parse_floats, parse_polarizations

    try:
        res = embed_geotiff(
            checkpoint=checkpoint, image=image if len(image) != 1 else image[0],
            wavelengths_um=parse_floats(wavelengths, "--wavelengths") if wavelengths is not None else None,
            polarizations=parse_polarizations(polarizations) if polarizations is not None else None,
            gsd_m=gsd, scale=scale, offset=offset, norm=norm, max_tokens=max_tokens, seed=seed,
        )
    except GeoResetError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(res))
        return
    mean, var = res["mean"], res["variance"]
    bands = ", ".join(f"{b['name']}({b['norm']})" for b in res["bands"])
    for f in res.get("files") or [res]:
        typer.echo(f"{f['image']}: {f['shape'][0]} bands x {f['shape'][1]} x {f['shape'][2]} px at "
                   f"{f['gsd_m']:g} m; scaling {f['scaling']['source']}, normalisation {f['normalisation']}")
    typer.echo(f"{res['tokens']} tokens")
    typer.echo(f"bands: {bands}")
    typer.echo(f"embedding: {res['embed_dim']} dims; |mean| = {sum(x * x for x in mean) ** 0.5:.4f}; "
               f"variance min/mean/max = {min(var):.3g}/{sum(var) / len(var):.3g}/{max(var):.3g}")
    typer.echo("mean[:8] = " + ", ".join(f"{x:+.4f}" for x in mean[:8]))


def _fmt_row(name: str, res: dict[str, Any], ks: list[int]) -> str:
    if "skipped" in res:
        return f"{name:<10} skipped: {res['skipped']}"
    t2i = " ".join(f"{res['text_to_image'][f'recall@{k}']:.3f}" for k in ks)
    i2t = " ".join(f"{res['image_to_text'][f'recall@{k}']:.3f}" for k in ks)
    return f"{name:<10} {res['n_patches']:>5} {res['n_docs']:>5}   {t2i}   {i2t}"


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="checkpoint.pt written by training.")],
    manifest: Annotated[Path, typer.Option("--manifest", help="Shard manifest.json (or its folder).")],
    split: Annotated[str, typer.Option(help="Split to evaluate (geographic hold-out: test).")] = "test",
    ks: Annotated[str, typer.Option(help="Comma-separated k of recall@k.")] = "1,5,10",
    robust: Annotated[bool, typer.Option("--robustness/--no-robustness",
                                         help="Also band subsets, other GSD, S1 only / S2 only.")] = True,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Token budget per image.")] = None,
    world: Annotated[Path | None, typer.Option(
        "--world", help="Sample-world directory (the demo's: <workdir>/world): adds zero-shot land-cover "
        "classification from text prompts, labels from the world's land-cover rasters.")] = None,
) -> None:
    """Retrieval recall@k both ways, robustness drops and (with --world) zero-shot land-cover accuracy; the last
    line printed is one JSON object."""
    from georeset.models.evaluate import evaluate as run_eval
    from georeset.models.evaluate import robustness

    try:
        kl = [int(k) for k in ks.split(",") if k]
    except ValueError:
        fail(GeoResetError(f"--ks {ks!r} is not a list of integers", hint="e.g. --ks 1,5,10"))
        return
    try:
        if robust:
            res = robustness(checkpoint=checkpoint, manifest=manifest, split=split, ks=kl, max_tokens=max_tokens,
                             world=world)
        else:
            res = {"full": run_eval(checkpoint=checkpoint, manifest=manifest, split=split, ks=kl,
                                    max_tokens=max_tokens, world=world), "variants": {}, "drop": {}}
    except GeoResetError as exc:
        fail(exc)
    head = " ".join(f"R@{k:<3}" for k in kl)
    typer.echo(f"{'inputs':<10} {'imgs':>5} {'docs':>5}   text->image {head}   image->text {head}")
    typer.echo(_fmt_row("full", res["full"], kl))
    for name, v in res["variants"].items():
        typer.echo(_fmt_row(name, v, kl))
    zs = res["full"].get("zero_shot")
    if zs is not None:
        if zs.get("accuracy") is None:
            typer.echo(f"zero-shot land cover: skipped ({zs.get('skipped')})")
        else:
            typer.echo(f"zero-shot land cover ({zs['n_labelled']} patches, {len(zs['classes'])} classes, "
                       f"prompt {zs['prompt']!r}): accuracy {zs['accuracy']:.3f}, majority-class baseline "
                       f"{zs['majority_baseline']:.3f} ({zs['majority_class']}), balanced {zs['balanced_accuracy']:.3f}, "
                       f"chance {zs['chance']:.3f}")
    var = res.get("variance")
    if var:
        mv = var["mean_variance"]
        typer.echo("mean variance: in distribution {:.4g}; ".format(mv["in_distribution"]) + ", ".join(
            f"{k} {mv[k]:.4g} (x{var['ratio'][k]:.2f})" for k in var["ratio"])
            + f"; Spearman(variance, image->text rank) {var['spearman_variance_vs_rank']:+.3f}")
        fu = var["fusion"]
        if "skipped" in fu:
            typer.echo(f"S1+S2 fusion: skipped ({fu['skipped']})")
        else:
            k = max(kl)
            typer.echo(f"S1+S2 fusion over {fu['n_locations']} locations: text->location R@{k} S2 "
                       f"{fu['s2'][f'recall@{k}']:.3f}, S1 {fu['s1'][f'recall@{k}']:.3f}, fused "
                       f"{fu['fused'][f'recall@{k}']:.3f} (gain {fu[f'gain@{k}']:+.3f})")
    sys.stdout.flush()
    print(json.dumps(res))


if __name__ == "__main__":
    app()
