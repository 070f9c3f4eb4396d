"""``torchspec import MODULE_PATH:FACTORY --input 3,224,224 -o spec.yaml``: an existing model as a spec.

Naming the module on the command line is the consent to import it (as ``--allow-code`` is for data
sources): what is imported is said on stderr first. The factory is called with the ``--arg``
values, the model traced with torch.fx, and the spec written only when it reproduces the model's
state_dict keys, shapes and leaf arguments (:mod:`torchspec.importing`).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from torchspec.cli.args import positive_int

__all__ = ["register", "run"]

_ARG_KEY = re.compile(r"^[A-Za-z_]\w*$")


def input_shape(text: str) -> list[int]:
    """argparse type for ``--input``: ``3,224,224`` (one sample, without the batch dimension)."""
    parts = [p.strip() for p in text.strip().strip("[]()").split(",")]
    try:
        shape = [int(p, 10) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes separated by commas, e.g. 3,224,224, found {text!r}"
        ) from None
    if not 1 <= len(shape) <= 8 or any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"expected 1 to 8 positive sizes, found {text!r}")
    return shape


def factory_arg(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not _ARG_KEY.match(key):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, e.g. num_classes=10, found {text!r}")
    return key, value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "import",
        help="write an existing nn.Module (MODULE_PATH:FACTORY) as a spec",
        description="Import MODULE_PATH (naming it here is your consent; it is said on stderr), call "
        "FACTORY(**--arg values), trace the model with torch.fx and write a spec that reproduces "
        "it: the same state_dict keys, each layer's arguments read from the module, the functional "
        "glue (+, torch.cat, flatten, mean, views) as torchspec layers. The spec is checked against "
        "the model before it is written; what a spec cannot express is an error naming the module "
        "and the line.",
    )
    parser.add_argument("target", metavar="MODULE_PATH:FACTORY", help="e.g. torchvision.models:resnet18")
    parser.add_argument(
        "--input",
        type=input_shape,
        default=None,
        metavar="C,H,W",
        help="the shape of one input sample, without the batch dimension (the spec's `input`); "
        "default: read from the first layer with weights: C,224,224 for a Conv2d with C channels "
        "(the model's image_size if it has one), C,16,112,112 for a Conv3d, F for a Linear",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="the spec to write (.yaml, .yml or .json)"
    )
    parser.add_argument(
        "--arg",
        dest="factory_args",
        action="append",
        default=[],
        type=factory_arg,
        metavar="NAME=VALUE",
        help="a keyword argument for FACTORY, read like a spec value (num_classes=10, "
        "aux_logits=false); repeatable",
    )
    parser.add_argument(
        "--ids",
        type=positive_int,
        default=None,
        metavar="HIGH",
        help="the input is int64 token ids 0 .. HIGH - 1 (for a model starting with an Embedding)",
    )
    parser.add_argument("--name", default=None, help="the spec's name (default: FACTORY)")
    parser.set_defaults(func=run, parser=parser)


def _error(message: str) -> int:
    sys.stdout.flush()
    sys.stderr.write(f"torchspec import: error: {message}\n")
    return 1


def run(args: argparse.Namespace) -> int:
    from torchspec.source import parse_value

    if not args.output.lower().endswith((".yaml", ".yml", ".json")):
        args.parser.error(f"-o {args.output}: the spec must be a .yaml, .yml or .json file")
    kwargs = {key: parse_value(text, f"--arg {key}={text}") for key, text in args.factory_args}
    from torchspec.cli.build import check_output

    problem = check_output(args.output)  # before any code is imported or run
    if problem:
        return _error(problem)

    from torchspec.importing import ImportFailure, import_model, load_factory, parse_target, write_spec

    def say(line: str) -> None:
        sys.stderr.write(f"torchspec import: {line}\n")
        sys.stderr.flush()

    guessed = None
    try:
        _, factory_name = parse_target(args.target)
        model = load_factory(args.target, kwargs, say=say)
        if args.input is None:
            from torchspec.importing.guess import guess_input

            args.input, source = guess_input(model)
            guessed = f"no --input was given: {','.join(map(str, args.input))} was assumed from {source}"
            say(f"no --input: assuming {','.join(map(str, args.input))} from {source}")
        shown = ", ".join([args.target, *(f"{k}={v!r}" for k, v in kwargs.items())])
        data = import_model(
            model,
            args.input,
            name=args.name or factory_name.rpartition(".")[2],
            description=f"imported from {shown} by torchspec import",
            ids=args.ids,
        )
    except ImportFailure as exc:
        if guessed:
            exc.hints.append(f"{guessed}; give the shape of one sample with --input")
        return _error(str(exc))
    except Exception as exc:  # a model torchspec import did not foresee: say so, without a traceback
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return _error(f"importing {args.target} failed unexpectedly ({reason}); please report it")
    shape = ",".join(map(str, args.input))
    ids = f" --ids {args.ids}" if args.ids else ""
    write_spec(data, args.output, header=f"torchspec import {args.target} --input {shape}{ids}")
    count = sum(1 for _ in model.state_dict())
    sys.stdout.write(f"wrote {args.output}: {count} state_dict entries, the model's own keys\n")
    return 0
