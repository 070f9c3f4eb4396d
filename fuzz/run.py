"""Run one fuzz target under atheris (libFuzzer): ``python fuzz/run.py TARGET [libFuzzer flags]``.

The seed corpus (see :func:`fuzz.targets.seeds`) is written to a fresh folder, or to
``$TORCHSPEC_FUZZ_CORPUS/TARGET`` when set (to keep what a long run found). torchspec's own
modules are instrumented for coverage feedback (torch is not: far too slow). The invariant: only
``SpecError`` (and argparse's exit 2) may come out; any other exception is a crash, which libFuzzer
reports and saves as ``crash-<sha1>`` (``-artifact_prefix=DIR/`` chooses where).
``TORCHSPEC_FUZZ_SKIP_KNOWN=1`` steps over the crashes already found (``fuzz.targets.KNOWN``) to look
for new ones.

    python fuzz/run.py spec_yaml -max_total_time=60
    python fuzz/run.py checkpoint -runs=2000 -artifact_prefix=/tmp/
"""

from __future__ import annotations

import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import atheris  # noqa: E402

with atheris.instrument_imports(include=["torchspec", "yaml", "fuzz"]):
    import torchspec
    import torchspec.builder
    import torchspec.cli
    import torchspec.training.checkpoint
    import torchspec.training.data
    import torchspec.training.validate  # noqa: F401
    from fuzz.targets import KNOWN, TARGETS, seeds
    from torchspec.errors import SpecError


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python fuzz/run.py {{{','.join(TARGETS)}}} [libFuzzer flags]")
    name = sys.argv.pop(1)
    target = TARGETS[name]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))

    known = [k for k in KNOWN if k[0] == name] if os.environ.get("TORCHSPEC_FUZZ_SKIP_KNOWN") == "1" else []

    def test_one_input(data: bytes) -> None:
        try:
            target(data)
        except SpecError:
            pass  # a clear, located refusal: what hostile input must get
        except Exception as exc:  # a crash, unless it is a known one and we were asked to go on
            if not any(isinstance(exc, kind) for _, kind, _where in known):
                raise

    keep = os.environ.get("TORCHSPEC_FUZZ_CORPUS")
    corpus = os.path.join(keep, name) if keep else tempfile.mkdtemp(prefix=f"fuzz-{name}-")
    os.makedirs(corpus, exist_ok=True)
    for index, seed in enumerate(seeds(name, ROOT)):
        with open(os.path.join(corpus, f"seed-{index}"), "wb") as handle:
            handle.write(seed)
    flags = [a for a in sys.argv[1:] if a.startswith("-")]
    atheris.Setup([sys.argv[0], *flags, corpus], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
