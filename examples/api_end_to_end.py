"""The Python API end to end: load a spec, check its shapes, build it, run a forward pass.

python examples/api_end_to_end.py [SPEC]   # default: specs/c3d.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

import torchspec

spec_path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / "specs" / "c3d.yaml"

# 1. Load and validate: a bad spec raises torchspec.SpecError with FILE:LINE:COL problems.
try:
    spec = torchspec.load_spec(spec_path)
except torchspec.SpecError as err:
    print(err, file=sys.stderr)
    raise SystemExit(1) from None

# 2. Shapes by arithmetic: no torch imported yet, no memory spent on the model.
report = torchspec.infer_shapes(spec, batch=1)
for row in report.rows:
    print(f"{row.path:<10} {row.summary:<45} {list(row.output)}")
print(f"{report.params:,} parameters, {report.macs / 1e9:.2f} GMACs per clip")

# 3. Build the real module and check torch agrees with the table.
import torch  # noqa: E402  (imported only now, on purpose: steps 1-2 never need it)

model = torchspec.build(spec, seed=0).eval()
clip = torch.rand(1, 3, 16, 112, 112) if spec.input == [3, 16, 112, 112] else torch.rand(report.input)
with torch.no_grad():
    out = model(clip)
assert tuple(out.shape) == report.output, (tuple(out.shape), report.output)
assert sum(p.numel() for p in model.parameters()) == report.params
print(f"forward pass on {list(clip.shape)} -> {list(out.shape)}: matches the inferred shapes")
