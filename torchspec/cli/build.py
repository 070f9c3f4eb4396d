"""``torchspec build SPEC``: infer, print the table, build the module, check it on the meta device.

With ``-o model.safetensors`` the weights are saved with the spec in the file's metadata, so
``torchspec.load_model(path)`` rebuilds the same module. torch is imported only when this runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from torchspec.cli.args import add_device_argument, add_set_argument, add_variant_argument, positive_int

__all__ = ["register", "run"]

SEED_MAX = 2**64 - 1  # torch.manual_seed accepts [-2**63, 2**64 - 1]; we keep seeds non-negative


def safetensors_path(text: str) -> str:
    """argparse type for ``-o``: weights are only written as .safetensors (no pickle)."""
    if not text.lower().endswith(".safetensors") or text.lower() == ".safetensors":
        raise argparse.ArgumentTypeError(
            f"{text!r}: the output must be a .safetensors file (e.g. model.safetensors); "
            "torchspec does not write pickles"
        )
    return text


def seed_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, found {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"the seed must be in [0, 2**64 - 1], found {value}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "build",
        help="build the torch module, verify its output shape, optionally save it",
        description="Infer the shapes, print the table, build the torch.nn.Sequential, print its "
        "module tree and verify on the meta device that torch computes the inferred output shape. "
        "With -o, save the weights with the spec embedded (load with torchspec.load_model).",
    )
    parser.add_argument("spec", metavar="SPEC", help="a .yaml, .yml or .json spec file")
    parser.add_argument(
        "-o",
        "--output",
        type=safetensors_path,
        metavar="FILE",
        help="write the initialised weights and the spec to FILE (.safetensors)",
    )
    add_device_argument(parser, default="cpu", what="device to build on: ")
    parser.add_argument(
        "--seed", type=seed_int, default=None, metavar="S", help="seed the initialisation (reproducible)"
    )
    parser.add_argument(
        "--batch", type=positive_int, default=1, metavar="N", help="batch size for the table (default: 1)"
    )
    add_variant_argument(parser)
    add_set_argument(parser, example="vars.width=32")
    parser.set_defaults(func=run)


def _error(message: str) -> int:
    sys.stdout.flush()
    sys.stderr.write(f"torchspec build: error: {message}\n")
    return 1


def check_output(path: str) -> str | None:
    """None if ``path`` can be written (checked before the build), else why not."""
    import os

    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return f"cannot write {path}: it is a directory"
    if not os.path.isdir(parent):
        return f"cannot write {path}: the directory {parent} does not exist"
    if not os.access(parent, os.W_OK):
        return f"cannot write {path}: the directory {parent} is not writable"
    return None


def check_device(name: str) -> str | None:
    """None if tensors can be created on ``name``, else why not (the check train and predict use)."""
    from torchspec.training.parts import check_device as check

    return check(name)


def run(args: argparse.Namespace) -> int:
    from torchspec.infer import infer_shapes
    from torchspec.report import make_console, render_table, render_tree
    from torchspec.spec import load_spec

    spec = load_spec(args.spec, variant=args.variant, overrides=args.overrides)
    report = infer_shapes(spec, batch=args.batch)  # SpecError: printed by the CLI, exit 1
    problem = check_output(args.output) if args.output else None
    device = args.device
    if device == "auto":
        from torchspec.training.parts import pick_device

        device = str(pick_device(device))
    problem = problem or check_device(device)
    if problem:
        return _error(problem)
    from torchspec.memory import check_fits, estimate

    hints = (
        "`torchspec check SPEC` prints the table and sizes without allocating anything",
        "make the model smaller, or build on a device with more memory (--device)",
    )
    check_fits(estimate(report, "build"), device, what="building the model", where=args.spec, hints=hints)

    from torchspec.builder import build_from_report, save_model, verify_on_meta

    console = make_console()
    render_table(report, console)
    console.print()
    model = build_from_report(report, seed=args.seed, device=device)
    render_tree(model, console, label=f"{report.name}: {type(model).__name__}")
    console.print()
    for path, module in model.named_modules():  # graph containers: their generated forward
        code = getattr(module, "code", None)
        if isinstance(code, str) and type(module).__name__ == "GraphModule":
            console.print(
                f"{path or report.name}.forward (generated by torch.fx):", highlight=False, markup=False
            )
            console.file.write("\n".join(line.rstrip() for line in code.strip().splitlines()) + "\n\n")
    try:
        got = verify_on_meta(report)
    except (AssertionError, RuntimeError) as exc:
        return _error(f"meta verification failed: {exc}")
    console.print(
        f"verified: a forward pass on the meta device gives {list(got)}, the inferred output shape",
        highlight=False,
        markup=False,
    )
    if args.output:
        from safetensors import SafetensorError

        try:
            save_model(model, report.spec, args.output)
        except (OSError, SafetensorError) as exc:
            return _error(f"cannot write {args.output}: {getattr(exc, 'strerror', None) or exc}")
        console.print(
            f"saved {report.params:,} parameters and the spec to {args.output}",
            highlight=False,
            markup=False,
            soft_wrap=True,  # a long path stays one line (copyable), whatever the console width
        )
    return 0
