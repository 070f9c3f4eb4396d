"""``causal: true``: torch's attention with the causal mask, built from a spec.

The oracle is torch's own call with ``generate_square_subsequent_mask`` on a plain torch module
holding the same weights; causality itself is checked by perturbing the tokens after t and
comparing the outputs up to t. Everything runs in eval() (dropout off) on tiny sizes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import torchspec
from torchspec.draw.diagram import key_args
from torchspec.errors import SpecError
from torchspec.layers import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
E, L, N = 8, 6, 2


def _model(layer: dict[str, Any], input_: list[int], extra: tuple[dict[str, Any], ...] = ()) -> nn.Module:
    spec = {"name": "t", "input": input_, "layers": [*extra, {"name": "x", **layer}]}
    return torchspec.build(torchspec.load_spec(spec), seed=0).eval()


def _mask(length: int) -> torch.Tensor:
    return nn.Transformer.generate_square_subsequent_mask(length)


def _future_free(run: Any, x: torch.Tensor, time_dim: int) -> None:
    """run(x)'s positions 0 .. t stay put when x's positions after t change, for every t."""
    base = run(x)
    for t in range(x.shape[time_dim] - 1):
        changed = x.clone()
        changed.narrow(time_dim, t + 1, x.shape[time_dim] - t - 1).normal_()
        out = run(changed)
        torch.testing.assert_close(out.narrow(time_dim, 0, t + 1), base.narrow(time_dim, 0, t + 1))
        assert not torch.allclose(out, base), "the perturbation changes nothing: the test is vacuous"


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_is_torch_with_the_mask(batch_first: bool) -> None:
    model = _model(
        {"type": "MultiheadAttention", "num_heads": 2, "batch_first": batch_first, "causal": True}, [L, E]
    )
    module = model.get_submodule("x")
    torch_mha = nn.MultiheadAttention(E, 2, batch_first=batch_first).eval()
    torch_mha.load_state_dict(module.state_dict(), strict=True)
    x = torch.randn(N, L, E) if batch_first else torch.randn(L, N, E)
    with torch.no_grad():
        out, weights = module(x, x, x)
        want, want_weights = torch_mha(x, x, x, attn_mask=_mask(L))
        torch.testing.assert_close(out, want)
        torch.testing.assert_close(weights, want_weights)
        assert torch.all(weights.triu(1) == 0), "attention to a later position"
        _future_free(lambda y: module(y, y, y)[0], x, 1 if batch_first else 0)


def test_encoder_layer_is_torch_with_the_mask_and_is_causal() -> None:
    layer = {
        "type": "TransformerEncoderLayer",
        "nhead": 2,
        "dim_feedforward": 16,
        "batch_first": True,
        "causal": True,
    }
    module = _model(layer, [L, E]).get_submodule("x")
    plain = nn.TransformerEncoderLayer(E, 2, 16, batch_first=True).eval()
    plain.load_state_dict(module.state_dict(), strict=True)
    x = torch.randn(N, L, E)
    with torch.no_grad():
        torch.testing.assert_close(module(x), plain(x, src_mask=_mask(L), is_causal=True))
        _future_free(module, x, 1)


def test_a_gpt_spec_predicts_each_token_from_the_tokens_before_it() -> None:
    spec = torchspec.load_spec(ROOT / "specs" / "gpt_tiny.yaml")
    model = torchspec.build(spec, seed=0).eval()
    stack = model.get_submodule("blocks")
    assert type(stack).__name__ == "CausalTransformerEncoder" and isinstance(stack, nn.TransformerEncoder)
    ids = torch.randint(0, 64, (N, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = model(ids)
        for t in (0, 10, 30):
            changed = ids.clone()
            changed[:, t + 1 :] = (changed[:, t + 1 :] + 1) % 64  # every later token replaced
            out = model(changed)
            torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1])
            assert not torch.allclose(out[:, t + 1 :], base[:, t + 1 :])
    # the same weights in torch's own stack, given the mask, compute the same logits
    plain = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(64, 4, 256, activation="gelu", batch_first=True, norm_first=True),
        2,
        norm=nn.LayerNorm(64),
        enable_nested_tensor=False,
    ).eval()
    plain.load_state_dict(stack.state_dict(), strict=True)
    with torch.no_grad():
        h = model.get_submodule("pos")(model.get_submodule("embed")(ids))
        torch.testing.assert_close(stack(h), plain(h, mask=_mask(32), is_causal=True))


def test_decoders_and_transformer_mask_the_target_only() -> None:
    inner = {"type": "TransformerDecoderLayer", "nhead": 2, "dim_feedforward": 16, "batch_first": True}
    tgt, memory = torch.randn(N, L, E), torch.randn(N, L + 2, E)
    cases = [
        ({**inner, "causal": True}, nn.TransformerDecoderLayer(E, 2, 16, batch_first=True)),
        (
            {"type": "TransformerDecoder", "num_layers": 2, "decoder_layer": inner, "causal": True},
            nn.TransformerDecoder(nn.TransformerDecoderLayer(E, 2, 16, batch_first=True), 2),
        ),
    ]
    for layer, plain in cases:
        extra = ({"name": "mem", "type": "Linear", "out_features": E, "from": "input"},)
        spec = {
            "name": "d",
            "input": [L, E],
            "layers": [*extra, {"name": "x", **layer, "from": ["input", "mem"]}],
        }
        module = torchspec.build(torchspec.load_spec(spec), seed=0).eval().get_submodule("x")
        plain.eval().load_state_dict(module.state_dict(), strict=True)
        with torch.no_grad():
            torch.testing.assert_close(
                module(tgt, memory), plain(tgt, memory, tgt_mask=_mask(L), tgt_is_causal=True)
            )
            _future_free(lambda y, m=module: m(y, memory), tgt, 1)
    args = {"d_model": E, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1, "dim_feedforward": 16}
    layer = {"type": "Transformer", **args, "batch_first": True, "causal": True}
    spec = {"name": "tr", "input": [L, E], "layers": [{"name": "x", **layer, "from": ["input", "input"]}]}
    module = torchspec.build(torchspec.load_spec(spec), seed=0).eval().get_submodule("x")
    plain = nn.Transformer(**args, batch_first=True).eval()
    plain.load_state_dict(module.state_dict(), strict=True)
    src = torch.randn(N, L + 1, E)
    with torch.no_grad():
        torch.testing.assert_close(module(src, tgt), plain(src, tgt, tgt_mask=_mask(L), tgt_is_causal=True))
        _future_free(lambda y: module(src, y), tgt, 1)


def test_counts_and_keys_are_the_plain_layers() -> None:
    plain = {
        "type": "TransformerEncoder",
        "num_layers": 2,
        "encoder_layer": {"type": "TransformerEncoderLayer", "nhead": 2},
    }
    reports = [
        torchspec.infer_shapes(torchspec.load_spec({"name": "c", "input": [L, E], "layers": [layer]}))
        for layer in (plain, {**plain, "causal": True})
    ]
    assert [(r.params, r.macs, r.output) for r in reports[:1]] == [
        (r.params, r.macs, r.output) for r in reports[1:]
    ]
    assert reports[0].rows[0].state == reports[1].rows[0].state
    assert "causal=True" in reports[1].rows[0].summary and "causal" not in reports[0].rows[0].summary
    # draw's box: the flag before the type, never cut with the arguments
    assert key_args(reports[1].rows[0]).startswith("causal TransformerEncoder ")
    assert key_args(reports[0].rows[0]).startswith("TransformerEncoder ")


def _error(spec: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        torchspec.infer_shapes(torchspec.load_spec(spec))
    return str(info.value)


def test_mistakes_are_located_errors() -> None:
    inline = {"type": "TransformerEncoderLayer", "nhead": 2, "causal": True}
    text = _error(
        {
            "name": "e",
            "input": [L, E],
            "layers": [{"type": "TransformerEncoder", "num_layers": 1, "encoder_layer": inline}],
        }
    )
    assert "set causal: true on the stack" in text
    kv = {"name": "kv", "type": "Reshape", "shape": [L // 2, 2 * E], "from": "input"}  # 3 positions
    cross = {
        "type": "MultiheadAttention",
        "num_heads": 2,
        "batch_first": True,
        "causal": True,
        "from": ["input", "kv"],
    }
    text = _error({"name": "e", "input": [L, E], "layers": [kv, cross]})
    assert "causal: true masks self-attention" in text and "6 positions" in text, text
    assert "causal" in REGISTRY["Transformer"].spec_fields


SMALL = """\
name: small
input: {shape: [6], dtype: int64, high: 10}
layers:
  - {type: Embedding, num_embeddings: 10, embedding_dim: 8}
  - type: TransformerEncoder
    num_layers: 1
    causal: true
    encoder_layer: {type: TransformerEncoderLayer, nhead: 2, dim_feedforward: 16, batch_first: true}
  - {type: MultiheadAttention, num_heads: 2, batch_first: true, causal: true}
  - {type: Linear, out_features: 10}
"""


def test_python_export_writes_the_subclass_and_import_reads_it_back(tmp_path: Path) -> None:
    (tmp_path / "small.yaml").write_text(SMALL)
    cli = [sys.executable, "-m", "torchspec"]
    subprocess.run(
        [*cli, "export", "small.yaml", "--to", "python", "-o", "mynet.py"], check=True, cwd=tmp_path
    )
    text = (tmp_path / "mynet.py").read_text()
    assert "class CausalTransformerEncoder(nn.TransformerEncoder):" in text
    assert "class CausalMultiheadAttention(nn.MultiheadAttention):" in text
    assert "generate_square_subsequent_mask" in text
    assert [line for line in text.splitlines() if line.startswith(("import ", "from "))] == [
        "import torch",
        "from torch import nn",
    ]
    cmd = [*cli, "import", "mynet:Small", "--input", "6", "--ids", "10", "-o", "back.yaml"]
    subprocess.run(cmd, check=True, cwd=tmp_path, capture_output=True)
    back = torchspec.load_spec(tmp_path / "back.yaml")
    assert [layer.data().get("causal") for layer in back.layers] == [None, True, True, None]


MASKED = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, None, True, self.mask)[0]
"""


def test_import_never_drops_a_mask(tmp_path: Path) -> None:
    """A mask given to MultiheadAttention positionally (here a plain attribute) is an error."""
    (tmp_path / "masked.py").write_text(
        MASKED + "\n\ndef make() -> Net:\n    net = Net()\n    net.mask = None\n    return net\n"
    )
    cmd = [sys.executable, "-m", "torchspec", "import", "masked:make", "--input", "6,8", "-o", "out.yaml"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1 and "6 positional arguments" in done.stderr, done.stderr
    assert "causal: true" in done.stderr and not (tmp_path / "out.yaml").exists()
