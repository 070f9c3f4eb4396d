"""Small specs the export tests share: a sequential conv net and a wired graph with a skip."""

CONV = """\
name: conv
input: [3, 12, 12]
layers:
  - {name: conv, type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - {name: bn, type: BatchNorm2d}
  - ReLU
  - {type: MaxPool2d, kernel_size: 2}
  - Flatten
  - {name: head, type: Linear, out_features: 5}
"""

# a wired graph: a residual Add and a Concat with the input
SKIP = """\
name: skip
input: [2, 8, 8]
layers:
  - {name: stem, type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - {name: act, type: ReLU}
  - {name: conv, type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - {name: add, type: Add, from: [conv, stem]}
  - {name: cat, type: Concat, dim: 1, from: [add, input]}
  - {name: pool, type: AdaptiveAvgPool2d, output_size: 1}
  - Flatten
  - {name: head, type: Linear, out_features: 3}
"""
