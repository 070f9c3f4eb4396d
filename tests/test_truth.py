"""The registry-wide truth test: every layer's shape rule against the real torch module.

One test per registered type (like timm's test_models.py): a layer added to the registry joins the
sweep without a test edit. Arguments come from the layer's own JSON schema, so whatever a spec may
say is what gets tried. For each example:

* the spec validates: the rule's output shape, parameter and buffer counts (and MACs for
  convolutions and Linear) must equal what the torch module really has and computes, and its
  analytic state (``Inferred.state``) must list exactly the module's state_dict keys, in order, with
  their shapes;
* the rule raises ShapeError: torch must fail too (a rule never rejects what torch accepts);
* validation refuses the combination: torch must refuse it too, except for the deliberate
  rejections listed in ``DELIBERATE``.

Deliberate differences from torch that this sweep does not exercise:

* per-sample ranks outside a layer's ``sample_ranks`` are rejected (Conv2d on a 3-D batch,
  Dropout2d on (N, C, L), BatchNorm1d on 4-D...): torch would read such input as unbatched or
  guess its layout, but a spec's input is always one sample plus the batch dimension, so inputs
  are only drawn with the ranks a layer declares.
* a few field bounds are tighter than torch's (eps > 0, BatchNorm momentum in [0, 1]); values are
  drawn from the schema, so those are never tried. (Dropout's p in [0, 1] is torch's own bound.)

Deliberate differences it does exercise: a Parameter's init fields that its ``init`` ignores
(``parameter_init`` in ``DELIBERATE``: torch would ignore them silently) and outputs with a
zero-size dimension (see ``assert_torch_rejects``).

A learned tensor (``Parameter``, ``learned_tensor``) reads nothing: its factory returns the
``nn.Parameter`` itself, which must have the inferred shape, count as its parameters and be
its own state (``{"": shape}``: its container holds it under the layer's name).

Layers with several inputs (``arity``) get that many inputs, drawn as variations of one shape
(each dimension kept, made 1, or redrawn: what broadcasting and concatenation care about), and
are checked through ``infer_many`` and ``module(*inputs)`` (in the order ``torch_inputs`` gives:
MultiheadAttention's one input is query, key and value); a tuple output is compared element by
element with ``Inferred.outputs``. The torch class is ``cls.torch_class(args)``: ``torch_factory()``'s,
or torchspec's subclass a spec field picks (``causal: true``), built by ``cls.torch_build(args)``.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from collections import Counter
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, note, seed, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from torchspec.layers import REGISTRY, Inferred, Layer, Shape, ShapeError, TupleOut
from torchspec.layers.base import InlineLayer

TYPES = sorted(set(REGISTRY) - {"Sequential"})
EXAMPLES = 150
MIN_BUILT = 8  # examples per layer that must reach torch with a valid layer: the sweep is not vacuous
ROUNDS = 3  # rounds of EXAMPLES examples at most, for layers whose valid region is narrow

# Validation errors for things torch accepts but torchspec refuses on purpose (bounds tighter than
# torch's are in the schema, so the sweep never draws them): a learned tensor's ignored init fields.
DELIBERATE = {"parameter_init"}

# Constructor arguments a rule infers from the incoming shapes: (which input, which dimension).
INFERABLE = {
    "in_channels": (0, 1),
    "num_features": (0, 1),
    "num_channels": (0, 1),
    "in_features": (0, -1),
    "input_size": (0, -1),
    "embed_dim": (0, -1),
    "d_model": (0, -1),
    "in1_features": (0, -1),
    "in2_features": (1, -1),
    "normalized_shape": (0, 1),  # LayerNorm2d (LayerNorm's is required)
}

# MACs from torch's own FLOP counter (their products are not one weight matrix per position).
ATTENTION = (
    torch.nn.MultiheadAttention,
    torch.nn.TransformerEncoderLayer,
    torch.nn.TransformerDecoderLayer,
)

SMALL_FLOATS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 1 / 3, 0.7, 1.1, 2.2)


# -- schema -> strategy --------------------------------------------------------------------------
def _integers(node: dict[str, Any], shape: Shape) -> st.SearchStrategy[int]:
    """Small ints within the bounds, or values at the input's edges: each size and its neighbours
    (channel counts, a padding of L - 1 or L...), and the rank's (dim indices just in or out)."""
    lo = node.get("minimum", node.get("exclusiveMinimum", -7) + 1)
    hi = node.get("maximum", node.get("exclusiveMaximum", 2**63) - 1)
    small_lo = max(lo, -6) if lo < 0 else lo
    small_hi = min(hi, 6) if lo < 0 else min(hi, lo + 5)
    small = st.integers(small_lo, small_hi)
    rank = len(shape)
    edges = {v for d in shape[1:] for v in (d - 1, d, d + 1)} | {rank, rank - 1, -rank, -rank - 1}
    seen = sorted(v for v in edges if lo <= v <= hi)
    return st.one_of(small, st.sampled_from(seen)) if seen else small


def _numbers(node: dict[str, Any]) -> st.SearchStrategy[float]:
    excl_lo, excl_hi = "exclusiveMinimum" in node, "exclusiveMaximum" in node
    lo = node.get("minimum", node.get("exclusiveMinimum"))
    hi = node.get("maximum", node.get("exclusiveMaximum"))
    if lo is None and hi is None:
        lo, hi = -3.0, 3.0
    elif hi is None:
        hi = lo + 4.0
    elif lo is None:
        lo = hi - 4.0
    floats = st.floats(
        lo, hi, exclude_min=excl_lo, exclude_max=excl_hi, allow_nan=False, allow_infinity=False
    )
    nice = [v for v in SMALL_FLOATS if (v > lo if excl_lo else v >= lo) and (v < hi if excl_hi else v <= hi)]
    return st.one_of(floats, st.sampled_from(nice)) if nice else floats


def strategy(node: dict[str, Any], shape: Shape) -> st.SearchStrategy[Any]:
    """A hypothesis strategy for one JSON-schema node; ``shape`` is the input, to aim at its edges.

    A layer given inline (an object: TransformerEncoder's ``encoder_layer``) is drawn like a layer;
    a field taking any layer (``norm``) draws one of the layers that need no arguments."""
    if node.get("x-torchspec") == "layer":
        return st.sampled_from(_plain_layers()).map(lambda name: {"type": name})
    if node.get("type") == "object":
        return _object(node, shape)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "anyOf" in node:
        return st.one_of([strategy(option, shape) for option in node["anyOf"]])
    kind = node.get("type")
    if kind == "integer":
        return _integers(node, shape)
    if kind == "number":
        return _numbers(node)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        low, high = node.get("minItems", 0), node.get("maxItems", len(shape))
        items = st.lists(strategy(node.get("items", {}), shape), min_size=low, max_size=min(high, low + 3))
        # the input's trailing sizes, batch included (normalized_shape, sizes that keep a shape)
        tails = [list(shape[i:]) for i in range(len(shape)) if low <= len(shape) - i <= high]
        tails = [t for t in tails if all(_fits(v, node.get("items", {})) for v in t)]
        options = [items, st.sampled_from(tails)] if tails else [items]
        if low <= len(shape) <= high and _fits(0, node.get("items", {})):  # dim lists: a permutation
            options.append(st.permutations(range(len(shape))).map(list))
        return st.one_of(options)
    raise NotImplementedError(f"no strategy for schema node {node}")


@st.composite
def _object(draw: st.DrawFn, node: dict[str, Any], shape: Shape) -> dict[str, Any]:
    """An inline layer's data: ``type``, the required fields, optional ones sometimes."""
    required = set(node.get("required", ())) | {"type"}
    data: dict[str, Any] = {}
    for field, sub in node["properties"].items():
        if field not in ("name", "from") and (field in required or draw(st.booleans())):
            data[field] = draw(strategy(sub, shape))
    return data


@functools.cache
def _plain_layers() -> list[str]:
    """Registered one-input float layers that take no arguments and accept any rank (ReLU,
    Identity, Flatten...): what a field taking any layer is drawn from."""
    return [
        name
        for name, cls in sorted(REGISTRY.items())
        if not cls.model_json_schema().get("required")
        and cls.arity == (1, 1)
        and cls.sample_ranks is None
        and cls.reads != "index"
        and name != "Sequential"
    ]


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with every ``$ref`` to its ``$defs`` replaced by the definition itself."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


@functools.lru_cache(maxsize=4096)
def _cached_strategy(node: str, shape: Shape) -> st.SearchStrategy[Any]:
    return strategy(json.loads(node), shape)


@functools.cache
def _schema(cls: type[Layer]) -> dict[str, Any]:
    schema = cls.model_json_schema()
    return _inline_refs(schema, schema.get("$defs", {}))  # type: ignore[no-any-return]


def _fits(value: int, node: dict[str, Any]) -> bool:
    if "anyOf" in node:
        return any(_fits(value, option) for option in node["anyOf"])
    return node.get("type") == "integer" and node.get("minimum", value) <= value <= node.get("maximum", value)


@st.composite
def layer_data(draw: st.DrawFn, cls: type[Layer], shape: Shape) -> dict[str, Any]:
    """Spec data for ``cls``: required fields always, optional ones sometimes (torch's default).

    A schema's ``oneOf`` of ``required`` lists (exactly one of output_size and output_ratio) is
    mostly followed: one alternative's fields are drawn and the others' left out."""
    schema = _schema(cls)
    required = set(schema.get("required", ()))
    excluded: set[str] = set()
    chosen: set[str] = set()
    alternatives = [set(option.get("required", ())) for option in schema.get("oneOf", ())]
    if alternatives and draw(st.integers(0, 4)):
        chosen = draw(st.sampled_from(alternatives))
        required |= chosen
        excluded = set().union(*alternatives) - chosen
    data: dict[str, Any] = {"type": cls.type_name()}
    for field, node in schema["properties"].items():
        if field in ("name", "type", "from") or field in excluded:
            continue
        if field in chosen and "anyOf" in node:  # a chosen alternative is given: not null
            node = {**node, "anyOf": [o for o in node["anyOf"] if o.get("type") != "null"]}
        if field in required or draw(st.booleans()):
            data[field] = draw(_cached_strategy(json.dumps(node, sort_keys=True), shape))
    return data


@st.composite
def shapes(draw: st.DrawFn, cls: type[Layer]) -> Shape:
    """A batched input: batch 1..3, a per-sample rank the layer accepts, small dimensions."""
    ranks = cls.sample_ranks or (1, 2, 3, 4)
    rank = draw(st.sampled_from(ranks))
    cap = max(2, min(12, int(40_000 ** (1 / rank))))  # keep big ranks small in elements
    per = [draw(st.integers(1, 6 if i == 0 and rank > 1 else cap)) for i in range(rank)]
    return (draw(st.integers(1, 3)), *per)


@st.composite
def input_shapes(draw: st.DrawFn, cls: type[Layer]) -> list[Shape]:
    """``arity`` inputs: a shape, then the same again (half the time: what layers with several
    constraints between inputs, like Transformer's src and tgt, need to be valid at all) or
    variations of it (each dim kept, 1, or redrawn)."""
    base = draw(shapes(cls))
    low, high = cls.arity
    count = draw(st.integers(low, high if high is not None else low + 2))
    if count > 1 and draw(st.booleans()):
        return [base] * count
    out = [base]
    for _ in range(count - 1):
        if draw(st.booleans()):
            out.append(base)
            continue
        out.append(tuple(draw(st.sampled_from([d, d, d, 1, draw(st.integers(1, 6))])) for d in base))
    return out


# -- torch side ----------------------------------------------------------------------------------
def _tuplify(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _complete(type_name: str, kwargs: dict[str, Any], shapes: list[Shape]) -> dict[str, Any]:
    """Fill the constructor arguments a rule would infer, so torch sees a complete call."""
    # torch requires every inferable argument (RNN's takes *args, so ask the layer, not torch)
    for name, (which, dim) in INFERABLE.items():
        if name in REGISTRY[type_name].model_fields and name not in kwargs:
            kwargs[name] = shapes[min(which, len(shapes) - 1)][dim]
    for name, value in kwargs.items():  # an inline layer (encoder_layer) reads the same input
        if isinstance(value, InlineLayer):
            inner = _complete(value.layer.type_name(), dict(value.args), shapes)
            kwargs[name] = InlineLayer(value.layer, inner)
    return kwargs


def _call_inputs(type_name: str, shapes: list[Shape], ids: int = 1) -> list[torch.Tensor]:
    """One random tensor per input, passed to forward as the layer says (a tensor may repeat).

    Index inputs (``index_inputs``: MaxUnpool's pool indices) are int64 zeros, valid for any
    output size. A layer that reads integer ids (``reads == "index"``: Embedding) gets int64 ids
    below ``ids`` (its ``index_bound``; 1, always valid, where the layer did not validate)."""
    cls = REGISTRY[type_name]
    inputs = [
        torch.zeros(shape, dtype=torch.int64)
        if i in cls.index_inputs
        else torch.randint(0, ids, shape)
        if cls.reads == "index"
        else torch.randn(shape)
        for i, shape in enumerate(shapes)
    ]
    return [inputs[i] for i in cls.torch_inputs(len(shapes))]


def run_torch(
    type_name: str, kwargs: dict[str, Any], shapes: list[Shape], ids: int = 1
) -> tuple[torch.nn.Module, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = REGISTRY[type_name].torch_build(kwargs)
        if isinstance(made, torch.Tensor):  # a learned tensor: it is its own output
            return made, made
        module = made.eval()
        with torch.no_grad():
            return module, module(*_call_inputs(type_name, shapes, ids))


def structure(out: Any) -> Any:
    """A torch output as shapes: a tensor's shape, nested tuples of them, None as None."""
    if isinstance(out, torch.Tensor):
        return tuple(out.shape)
    if out is None:
        return None
    return TupleOut(tuple(structure(item) for item in out))


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for item in (out or ()) for t in _tensors(item)]


def assert_torch_rejects(
    type_name: str, kwargs: dict[str, Any], shapes: list[Shape], why: str, ids: int = 1
) -> None:
    try:
        _, out = run_torch(type_name, kwargs, shapes, ids)
    except TypeError as exc:
        assert "required positional argument" not in str(exc), f"test harness: {exc}"
        return
    except Exception:  # any failure of torch's is a rejection
        return
    if any(t.numel() == 0 for t in _tensors(out)):
        # Deliberate: torch returns an empty tensor in a few cases (Upsample mode='area' with a
        # scale_factor that floors a size to 0); spec shapes are positive, so the rule rejects it.
        return
    pytest.fail(
        f"torchspec rejects {type_name}({kwargs}) on inputs {shapes} ({why}), but torch accepts "
        f"it and returns {structure(out)}"
    )


def expected_macs(
    type_name: str, module: torch.nn.Module, shapes: list[Shape], out_shape: Shape
) -> int | None:
    """MACs computed from the real module, independently of the rules."""
    x_shape = shapes[0]
    if any(isinstance(m, ATTENTION) for m in module.modules()):  # attention, or a stack of it
        # torch's FLOP counter (2 per multiply-accumulate), in training mode and with the math
        # attention kernel: eval's fused fast path and the CPU flash kernel hide their products
        with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            module.train()(*_call_inputs(type_name, shapes))
        return counter.get_total_flops() // 2
    weights = sum(p.numel() for n, p in module.named_parameters() if n.startswith("weight"))
    if isinstance(module, torch.nn.RNNBase):  # every weight matrix once per step and sample
        return weights * x_shape[0] * x_shape[1]
    if isinstance(module, (torch.nn.RNNCellBase, torch.nn.Bilinear)):
        return weights * math.prod(x_shape[:-1])
    if isinstance(module, torch.nn.modules.conv._ConvTransposeNd):
        return module.weight.numel() * x_shape[0] * math.prod(x_shape[2:])
    if isinstance(module, torch.nn.modules.conv._ConvNd):
        return module.weight.numel() * out_shape[0] * math.prod(out_shape[2:])
    if isinstance(module, torch.nn.Linear):
        return module.weight.numel() * math.prod(x_shape[:-1])
    return None


# -- the sweep -----------------------------------------------------------------------------------
def check_example(
    cls: type[Layer], shapes: list[Shape], data: dict[str, Any], outcomes: Counter[str]
) -> None:
    type_name = cls.type_name()
    shape = shapes[0]
    note(f"{type_name} {data} on {shapes}")
    try:
        layer = cls.model_validate(data)
    except ValidationError as exc:
        kinds = {e["type"] for e in exc.errors()}
        if kinds & DELIBERATE:
            outcomes["deliberate"] += 1
            return
        kwargs = {k: _tuplify(v) for k, v in data.items() if k not in ("name", "type")}
        why = "; ".join(e["msg"] for e in exc.errors())
        assert_torch_rejects(type_name, _complete(type_name, kwargs, shapes), shapes, why)
        outcomes["invalid"] += 1
        return
    if cls.learned_tensor:
        check_tensor(layer, kwargs_of(layer), outcomes)
        return
    try:
        inferred = layer.infer_many(shapes)
    except ShapeError as err:
        kwargs = _complete(type_name, layer.torch_args(Inferred(shape)), shapes)
        assert_torch_rejects(type_name, kwargs, shapes, err.message, layer.index_bound(Inferred(shape)) or 1)
        outcomes["shape_error"] += 1
        return
    kwargs = layer.torch_args(inferred)
    note(f"{cls.torch_home}.{type_name}(**{kwargs})")
    ids = layer.index_bound(inferred) or 1
    try:
        module, out = run_torch(type_name, kwargs, shapes, ids)
    except Exception as exc:
        pytest.fail(
            f"torchspec infers {inferred.out} for {type_name}({kwargs}) on {shapes}, "
            f"but torch fails: {type(exc).__name__}: {exc}"
        )
    assert structure(out) == inferred.out, "output shape(s)"
    out = _tensors(out)[0]  # the main output: what the next layer reads
    assert tuple(out.shape) == inferred.shape, "main output shape"
    params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert params == inferred.params, "trainable parameters"
    assert sum(b.numel() for b in module.buffers()) == inferred.buffers, "buffer elements"
    state = module.state_dict()
    assert sum(t.numel() * t.element_size() for t in state.values()) == inferred.state_bytes, "state bytes"
    real = {name: tuple(tensor.shape) for name, tensor in state.items()}
    assert list(inferred.state.items()) == list(real.items()), "analytic state_dict (names, order, shapes)"
    macs = expected_macs(type_name, module, shapes, tuple(out.shape))
    if macs is not None:
        assert inferred.macs == macs, "MACs"
    outcomes["built"] += 1


def kwargs_of(layer: Layer) -> dict[str, Any]:
    return layer.torch_args(layer.infer_many([]))


def check_tensor(layer: Layer, kwargs: dict[str, Any], outcomes: Counter[str]) -> None:
    """A learned tensor: the nn.Parameter its factory makes against the rule (no input)."""
    inferred = layer.infer_many([])
    tensor, _ = run_torch(layer.type_name(), kwargs, [])
    assert isinstance(tensor, torch.nn.Parameter) and tensor.requires_grad
    assert tuple(tensor.shape) == inferred.shape == inferred.out, "shape"
    assert tensor.numel() == inferred.params and inferred.buffers == 0, "trainable parameters"
    assert inferred.state == {"": tuple(tensor.shape)}, "analytic state (its own key)"
    assert tensor.numel() * tensor.element_size() == inferred.state_bytes, "state bytes"
    outcomes["built"] += 1


@pytest.mark.parametrize("type_name", TYPES)
def test_rule_matches_torch(type_name: str) -> None:
    """EXAMPLES examples; a layer whose valid region is narrow (few examples reach torch) gets up
    to ROUNDS - 1 more rounds of other examples, each round reproducible by its seed."""
    cls = REGISTRY[type_name]
    outcomes: Counter[str] = Counter()

    @given(st.data())
    def sweep(data: st.DataObject) -> None:
        inputs = data.draw(input_shapes(cls), label="shapes")
        spec = data.draw(layer_data(cls, inputs[0]), label="spec")
        check_example(cls, inputs, spec, outcomes)

    for attempt in range(ROUNDS):
        fixed = settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=attempt == 0,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        run = fixed(sweep) if attempt == 0 else seed(attempt)(fixed(sweep))
        run()
        if outcomes["built"] >= MIN_BUILT:
            break
    assert outcomes["built"] >= MIN_BUILT, f"too few valid examples reached torch: {dict(outcomes)}"
