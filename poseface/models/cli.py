"""`poseface info` and `poseface convert-gpen`."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from poseface.config import from_dict, load_yaml
from poseface.errors import PoseFaceError
from poseface.imageio import check_output_file, refuse_existing
from poseface.models.checkpoint import load_model, save_model
from poseface.models.config import ModelConfig
from poseface.models.discriminator import build_discriminators
from poseface.models.gpen import convert_gpen
from poseface.models.info import count_parameters, mmrb_gflops, model_gflops
from poseface.models.network import PoseFaceNet


def register(subparsers: argparse._SubParsersAction) -> None:
    info = subparsers.add_parser("info", help="parameters per part and GFLOPs of a config or weights file")
    info.add_argument("source", help="a YAML config (its `model:` section) or a weights file (.safetensors, GPEN .pth)")
    info.add_argument("--batch", type=int, default=1, help="batch size for the GFLOP count (default 1)")
    info.set_defaults(func=run_info)

    convert = subparsers.add_parser("convert-gpen", help="convert GPEN's released checkpoints to PoseFace safetensors")
    convert.add_argument("generator", help="GPEN generator file, e.g. GPEN-BFR-512.pth")
    convert.add_argument("--discriminator", "-d", help="GPEN discriminator file, e.g. GPEN-BFR-512-D.pth")
    convert.add_argument(
        "-o", "--output", required=True, help="output .safetensors (a .json config is written beside it)"
    )
    add_overwrite_argument(convert)
    convert.set_defaults(func=run_convert)

    export = subparsers.add_parser(
        "export", help="copy a trained model for release (optionally fp16), or write it as ONNX (--onnx)"
    )
    export.add_argument(
        "source",
        nargs="?",
        help="a `poseface train` run folder (its model.safetensors: the EMA weights) or a weights file",
    )
    export.add_argument("-o", "--output", help="output .safetensors (a .json config is written beside it)")
    export.add_argument(
        "--half", action="store_true", help="store the weights as float16 (half the size; loaded back as float32)"
    )
    export.add_argument(
        "--onnx",
        metavar="OUT.onnx",
        help="write the network as ONNX (dynamic batch, opset 18), checked with onnxruntime",
    )
    export.add_argument(
        "--weights", help="with --onnx: the model to export, a weights file or zoo name (default: the bundled model)"
    )
    add_overwrite_argument(export)
    export.set_defaults(func=run_export)


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """--overwrite (also spelt --force, its old name): replace existing output files."""
    parser.add_argument(
        "--overwrite",
        "--force",
        dest="overwrite",
        action="store_true",
        help="replace existing output files (default: refuse)",
    )


def check_weights_output(output: Path, overwrite: bool, *others: Path) -> None:
    """Before any work: OUTPUT ends in .safetensors, can be written, and it and its companions do not
    exist (unless --overwrite)."""
    if output.suffix != ".safetensors":
        raise PoseFaceError(f"{output}: output must end in .safetensors; choose another -o")
    check_output_file(output, overwrite)
    refuse_existing([output.with_suffix(".json"), *others], overwrite)


def model_config_from_yaml(path: str | Path) -> ModelConfig:
    data = load_yaml(path)
    section = data.get("model", data)
    if not isinstance(section, dict):
        raise PoseFaceError(f"{path}: the `model:` section must be a mapping")
    return from_dict(ModelConfig, section, where=f"{path} model")


def run_info(args: argparse.Namespace) -> int:
    source = Path(args.source)
    if source.suffix in (".yaml", ".yml"):
        model = PoseFaceNet(model_config_from_yaml(source)).eval()
        label = f"{source} (fresh weights)"
    else:
        model = load_model(source)
        label = str(source)
    global_d, local_ds = build_discriminators(model.config)
    counts = count_parameters(model, {"global discriminator": global_d, "local discriminators (3)": local_ds})
    c = model.config
    print(
        f"{label}: {c.size} px, style dim {c.style_dim}, {c.n_mlp}-layer mapping, channel multiplier {c.channel_multiplier:g}, "
        f"narrow {c.narrow:g}, MMRBs {len(model.encoder.mmrbs)}"
    )
    width = max(len(k) for k in counts)
    for name, count in counts.items():
        print(f"  {name:<{width}}  {count:>13,}  ({count / 1e6:.2f} M)")
    total = model_gflops(model, args.batch)
    mmrb = mmrb_gflops(model, args.batch)
    print(f"  GFLOPs per forward (batch {args.batch}): {total:.1f} (MMRBs {mmrb:.1f}, {100 * mmrb / total:.0f}%)")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    output = Path(args.output)
    d_path = output.with_name(output.stem + "-D.safetensors")
    check_weights_output(output, args.overwrite, *([d_path] if args.discriminator else []))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = convert_gpen(args.generator, args.discriminator)
    for warning in caught:
        print(f"warning: {warning.message}")
    model, discriminator = result if isinstance(result, tuple) else (result, None)
    provenance = {"converted_from": str(Path(args.generator).name), "source": "GPEN (yangxy/GPEN)"}
    save_model(model, output, provenance)
    print(
        f"wrote {output} and {output.with_suffix('.json')} ({model.config.size} px, style dim {model.config.style_dim})"
    )
    if discriminator is not None:
        from safetensors.torch import save_file

        save_file(
            {k: v.contiguous() for k, v in discriminator.state_dict().items()},
            str(d_path),
            metadata={"poseface": "global-discriminator", "size": str(discriminator.size)},
        )
        print(f"wrote {d_path}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    import torch

    from poseface.weights import sha256_of

    if args.onnx:
        return run_export_onnx(args)
    if args.source is None or args.output is None or args.weights:
        raise PoseFaceError("export: give SOURCE and -o OUTPUT.safetensors, or --onnx OUT.onnx [--weights W]")
    source = Path(args.source)
    weights = source / "model.safetensors" if source.is_dir() else source
    output = Path(args.output)
    if output.resolve() == weights.resolve():
        raise PoseFaceError(f"{output}: is the source file itself; choose another -o")
    check_weights_output(output, args.overwrite)
    model = load_model(weights)
    provenance = dict(getattr(model, "provenance", {}))
    provenance |= {"exported_from": str(weights), "dtype": "float16" if args.half else "float32"}
    save_model(model, output, provenance, dtype=torch.float16 if args.half else None)
    size_mb = output.stat().st_size / 2**20
    print(f"wrote {output} ({size_mb:.1f} MB, {provenance['dtype']}) and {output.with_suffix('.json')}")
    print(f"sha256 {sha256_of(output)}")
    return 0


def run_export_onnx(args: argparse.Namespace) -> int:
    """`poseface export --onnx OUT.onnx [--weights W]`: see poseface.models.onnx_export."""
    from poseface import models
    from poseface.zoo import weights_file

    output = Path(args.onnx)
    if args.output or args.half or (args.source and args.weights):
        raise PoseFaceError("export --onnx: give the model once (--weights W or SOURCE), without -o or --half")
    if output.suffix.lower() != ".onnx":
        raise PoseFaceError(f"{output}: an ONNX export must end in .onnx; choose another --onnx")
    check_output_file(output, args.overwrite, option="--onnx")
    require_onnx_export(output)  # before the slow part
    source = args.weights or args.source
    weights = models.bundled_weights() if source is None else weights_file(source)
    model = load_model(weights / "model.safetensors" if weights.is_dir() else weights)
    provenance = dict(getattr(model, "provenance", {})) | {"exported_from": str(weights), "format": "onnx"}
    from poseface.models.onnx_export import OPSET, export_onnx

    differences = export_onnx(model, output, provenance, overwrite=args.overwrite)
    print(
        f"wrote {output} ({output.stat().st_size / 2**20:.1f} MB, opset {OPSET}, dynamic batch, {model.config.size} px)"
    )
    for name, difference in differences.items():
        print(f"  max |onnxruntime - torch| on {name}: {difference:.2e}")
    return 0


def require_onnx_export(output: Path) -> None:
    """One-line error unless the exporter (onnxscript) and the checker (onnxruntime) are installed."""
    import importlib.util

    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise PoseFaceError(
            f"{output}: ONNX export needs {', '.join(missing)}; pip install {' '.join(missing)} "
            "(or pip install 'poseface[onnx]')"
        )
