"""The layer contract and the registry.

A layer is one pydantic model: its fields are the torch constructor's keyword arguments (same names,
same defaults), ``infer`` is its shape rule in pure Python, and ``torch.nn.<type>(**args)`` is how it
becomes a module. Registering a class is all it takes to add a layer: the spec schema, the CLI, the
builder and the registry-wide truth test pick it up.

Shapes here always include the batch dimension, exactly as torch sees them: ``(N, C, D, H, W)``.

What ``infer`` returns (:class:`Inferred`) is the contract a layer keeps with the rest of torchspec:
the output shape, parameter and buffer element counts, MACs, the inferred constructor arguments and
``state``, the layer's analytic ``state_dict``: every tensor name, relative to the layer, mapped to
its shape, in torch's order (parameters, then buffers): ``{"weight": (64, 3, 3, 3), "bias": (64,)}``
for a Conv2d, ``{}`` for a layer without state, ``num_batches_tracked: ()`` for a 0-d buffer,
``{"": (1, 1, 768)}`` for a learned tensor (the key is the layer's own path: ``class_token``). Readers
of checkpoints and .safetensors files compare a file's tensors with it before building anything.
The truth sweep (tests/test_truth.py) checks all of it against the real module for every registered
layer, ``state`` included (names and shapes exactly as ``module.state_dict()``).

Graphs (the contract every layer follows):

* ``arity`` = (min, max) inputs (max None: any). One-input layers implement ``infer(shape)``;
  layers with several inputs implement ``infer_many(shapes)``, which the graph always calls.
* A layer whose torch forward returns a tuple sets ``Inferred.outputs`` to a :class:`TupleOut`
  (nested as torch nests it) and ``Inferred.shape`` to its first tensor, which is what the next
  layer reads by default; ``from: lstm.1.0`` takes another element (name, then indices).
* A learned tensor (``learned_tensor``, the ``Parameter`` layer) has no input and no batch
  dimension; ``batch_rule`` says how layers combine it with batched tensors
  (:mod:`torchspec.layers.batch`).
* ``torch_factory()`` is the class the layer becomes (``torch.nn.<type>`` by default; torchspec's
  own merge and tensor layers return a module of :mod:`torchspec.nn`); ``torch_module(args)``
  instantiates it. The builder has no per-type code.
"""

import functools
import importlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, TypeAlias, TypeVar, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from torchspec.layers.fields import INT64_MAX

__all__ = [
    "REGISTRY",
    "RESERVED",
    "SPATIAL_LAYOUTS",
    "From",
    "Inferred",
    "InlineLayer",
    "Layer",
    "ModuleName",
    "Out",
    "Ref",
    "Registry",
    "Shape",
    "ShapeError",
    "TupleOut",
    "build_inline",
    "checked_dim",
    "expand",
    "first_tensor",
    "fmt_shape",
    "fmt_size",
    "prod",
    "register",
    "spatial_name",
    "tensors_of",
]

Shape = tuple[int, ...]


@dataclass(frozen=True)
class TupleOut:
    """A layer output that is a tuple (LSTM's ``(output, (h_n, c_n))``, Chunk's pieces).

    ``items`` hold shapes or nested tuples; an item may be None where torch returns None
    (MultiheadAttention's weights with ``need_weights: false``).
    """

    items: "tuple[Out | None, ...]"  # Out is defined below (it names this class)


# What a layer produces: one tensor (its shape, batch included) or a tuple of them.
Out: TypeAlias = Union[Shape, TupleOut]  # noqa: UP007 (a runtime alias with a forward reference)


def first_tensor(out: Out) -> Shape:
    """The main output: the tensor itself, or recursively the first element of a tuple.

    It is what the next layer reads by default (an RNN's output sequence, a Chunk's first piece).
    """
    while isinstance(out, TupleOut):
        out = out.items[0]  # type: ignore[assignment]
    return out


def tensors_of(out: Out | None) -> list[Shape]:
    """Every tensor shape in an output, depth first (for activation memory)."""
    if out is None:
        return []
    if isinstance(out, TupleOut):
        return [s for item in out.items for s in tensors_of(item)]
    return [out]


# A reference to what a layer reads (``from:``): ``input`` (its container's input), a sibling's
# name, or an element of a sibling's tuple output by index, ``lstm.1.0`` (names have no dots).
Ref = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[0-9]{1,4})*$", max_length=160)]
From = Ref | Annotated[list[Ref], Field(min_length=1, max_length=256)]

# Attributes of a fresh torch.nn.Sequential: add_module refuses a child named like one of them
# ("attribute already exists"). Names starting with "__" are refused by pattern too (Python and
# torch add new ones).
_RESERVED_NAMES = """
    T_destination add_module append apply bfloat16 buffers call_super_init children compile cpu
    cuda double dump_patches eval extend extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half insert ipu load_state_dict modules mtia named_buffers
    named_children named_modules named_parameters parameters pop register_backward_hook
    register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty train training type xpu zero_grad

    _apply _backward_hooks _backward_pre_hooks _buffers _call_impl _compiled_call_impl
    _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs _forward_pre_hooks
    _forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks _get_item_by_idx
    _get_name _is_full_backward_hook _load_from_state_dict _load_state_dict_post_hooks
    _load_state_dict_pre_hooks _maybe_warn_non_full_backward_hook _modules _named_members
    _non_persistent_buffers_set _parameters _register_load_state_dict_pre_hook
    _register_state_dict_hook _replicate_for_data_parallel _save_to_state_dict _slow_forward
    _state_dict_hooks _state_dict_pre_hooks _version _wrapped_call_impl

    __add__ __annotations__ __call__ __class__ __delattr__ __delitem__ __dict__ __dir__ __doc__
    __eq__ __format__ __ge__ __getattr__ __getattribute__ __getitem__ __getstate__ __gt__
    __hash__ __iadd__ __imul__ __init__ __init_subclass__ __iter__ __le__ __len__ __lt__
    __module__ __mul__ __ne__ __new__ __reduce__ __reduce_ex__ __repr__ __rmul__ __setattr__
    __setitem__ __setstate__ __sizeof__ __str__ __subclasshook__ __weakref__
"""
RESERVED: frozenset[str] = frozenset(_RESERVED_NAMES.split())


def _free_name(name: str) -> str:
    # "__" names are Python's and torch's own (torch.compile adds ___needs_generation_tag_patch)
    if name in RESERVED or name.startswith("__"):
        raise PydanticCustomError(
            "reserved_name",
            "name '{name}' is taken: torch.nn.Sequential already has an attribute of that name, "
            "so add_module would refuse it; pick another name",
            {"name": name},
        )
    return name


# A child name must work with add_module: no dots, not empty, not an attribute of nn.Sequential;
# we also keep it an identifier-like word.
ModuleName = Annotated[
    str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128), AfterValidator(_free_name)
]


class ShapeError(Exception):
    """A shape rule failed. ``field`` names the parameter to point at (None: the layer itself).

    ``message`` may contain ``{incoming}``, replaced by the incoming shape and where it came from;
    a layer with several inputs writes ``{in0}``, ``{in1}``, ... for each input the same way.
    """

    def __init__(self, message: str, *, field: str | None = None, hints: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.hints = tuple(hints)


@dataclass(frozen=True)
class Inferred:
    """What a shape rule computes for one layer on one input shape (batch included)."""

    shape: Shape  # the main output: the tensor, or the first tensor of a tuple output
    params: int = 0  # trainable parameter elements
    buffers: int = 0  # buffer elements (running statistics)
    int64_buffers: int = 0  # of which int64 (BatchNorm's num_batches_tracked): 8 bytes, not 4
    macs: int = 0  # multiply-accumulates of one forward pass over the whole batch
    args: dict[str, Any] = field(default_factory=dict)  # values inferred for the constructor
    # the layer's state_dict: tensor name (relative to the layer) -> shape, in torch's order
    state: dict[str, Shape] = field(default_factory=dict)

    outputs: TupleOut | None = None  # the whole output when torch returns a tuple (else None)

    @property
    def out(self) -> Out:
        """The whole output: ``outputs`` for a tuple-returning layer, else ``shape``."""
        return self.outputs if self.outputs is not None else self.shape

    @property
    def state_bytes(self) -> int:
        """Bytes of the state_dict in float32: parameters and buffers, int64 ones at 8 bytes."""
        return (self.params + self.buffers + self.int64_buffers) * 4


@dataclass(frozen=True)
class InlineLayer:
    """A layer given inline as another layer's argument (TransformerEncoder's ``encoder_layer``),
    with its constructor arguments as its own rule resolved them (``torch_args``). It prints as
    the table shows layers and becomes its module when the outer one is built (:func:`build_inline`)."""

    layer: "Layer"
    args: dict[str, Any]

    def __str__(self) -> str:
        return self.layer.summary(Inferred((), args=self.args))

    def module(self) -> Any:
        return self.layer.torch_module(self.args)


def build_inline(args: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments with every :class:`InlineLayer` built into its torch module."""
    return {k: v.module() if isinstance(v, InlineLayer) else v for k, v in args.items()}


def fmt_shape(shape: Sequence[int], batch: bool = True) -> str:
    """``[N, 64, 16]``: the batch dimension is written N in messages."""
    items = ["N", *map(str, shape[1:])] if batch else [str(d) for d in shape]
    return "[" + ", ".join(items) + "]"


# Per-sample layouts and spatial dimension names by the number of spatial dimensions.
SPATIAL_LAYOUTS = {1: "(C, L)", 2: "(C, H, W)", 3: "(C, D, H, W)"}
_SPATIAL_NAMES = {1: "L", 2: "HW", 3: "DHW"}


def spatial_name(index: int, rank: int) -> str:
    """``H`` for spatial dimension 0 of a 2-d layer: what messages call a dimension."""
    return _SPATIAL_NAMES[rank][index]


def fmt_size(values: tuple[int, ...]) -> str:
    """``3`` when every dimension has the same size, else ``[1, 2, 2]``."""
    return str(values[0]) if len(set(values)) == 1 else str(list(values))


def expand(value: int | Sequence[int], rank: int) -> tuple[int, ...]:
    """torch's ``_ntuple``: an int stands for the same value on every spatial dimension."""
    if isinstance(value, int):
        return (value,) * rank
    return tuple(value)


class Layer(BaseModel):
    """Base of every layer. Subclasses declare ``type: Literal["Name"] = "Name"`` and their fields."""

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, defer_build=True, populate_by_name=True
    )

    name: ModuleName | None = None
    # What the layer reads (``from:`` in a spec): a sibling's name, ``input``, or a list of them
    # for a layer with several inputs. None: the previous sibling (the container's input first).
    from_: From | None = Field(
        default=None,
        alias="from",
        description="what this layer reads: an earlier sibling's name, `input` (the container's "
        "input), `name.1` for element 1 of a tuple output, or a list for several inputs",
    )

    # How many inputs the layer takes: (min, max), max None for any number. Add, Concat: (2, None).
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    # Inputs torch reads as int64 indices rather than values (MaxUnpool's second: a pool's indices).
    index_inputs: ClassVar[tuple[int, ...]] = ()
    # True when the output may share memory with the input (views, Identity, Dropout in eval):
    # an in-place layer downstream would overwrite the input too.
    aliases_input: ClassVar[bool] = False
    # What the layer computes on (see torchspec.inputs): "float" (an integer input, token ids, is
    # an error), "index" (integer ids, e.g. Embedding: a float input is an error; the output is
    # float), "any" (views and tensor ops: the output keeps the input's dtype).
    reads: ClassVar[str] = "float"
    # The module holding the torch class of the same name (torchspec's own layers: torchspec.nn).
    torch_home: ClassVar[str] = "torch.nn"
    # A learned tensor (``Parameter``): it reads nothing (arity (0, 0)), its output is the tensor
    # itself, without a batch dimension, and ``torch_module`` returns an ``nn.Parameter`` that the
    # container holds directly (state_dict key: the layer's own path; ``Inferred.state`` is
    # ``{"": shape}``). A container holding one compiles to a graph (a ``get_attr`` node).
    learned_tensor: ClassVar[bool] = False
    # How the batch dimension flows through a layer when some input has none (a learned tensor):
    # "same" (the inputs must agree: all batched or none), "broadcast" (Add, Mul: torch's
    # broadcasting spreads an unbatched input over the batch), "expand" (ExpandBatch). See
    # torchspec.layers.batch.
    batch_rule: ClassVar[str] = "same"

    # Parameters shown without a keyword in the table, as torch's repr does (in_channels, out_channels).
    positional: ClassVar[tuple[str, ...]] = ()
    # Per-sample ranks this layer accepts (None: any). Conv3d: (4,) for (C, D, H, W).
    sample_ranks: ClassVar[tuple[int, ...] | None] = None
    sample_layout: ClassVar[str] = ""

    @classmethod
    def type_name(cls) -> str:
        name = _TYPE_NAMES.get(cls)
        if name is None:  # pydantic's model_fields is a computed class property: look it up once
            name = _TYPE_NAMES[cls] = str(cls.model_fields["type"].default)
        return name

    # -- the shape rule ---------------------------------------------------------------------------
    def infer(self, shape: Shape) -> Inferred:
        """Output shape, parameter count and MACs for ``shape`` (batch included)."""
        raise NotImplementedError

    def infer_many(self, shapes: list[Shape]) -> Inferred:
        """The rule for ``arity`` inputs (the graph always calls this): one-input layers use ``infer``."""
        return self.infer(shapes[0])

    def index_bound(self, inferred: Inferred) -> int | None:
        """For ``reads = "index"`` layers: one past the largest valid id (Embedding's
        ``num_embeddings``); the input's declared range is checked against it."""
        return None

    @classmethod
    def torch_inputs(cls, count: int) -> tuple[int, ...]:
        """Which of the layer's ``count`` inputs torch's forward receives, in order: all of them by
        default; MultiheadAttention given one input calls ``forward(x, x, x)``: ``(0, 0, 0)``."""
        return tuple(range(count))

    def check_rank(self, shape: Shape) -> None:
        ranks = self.sample_ranks
        if ranks is None or len(shape) - 1 in ranks:
            return
        want = " or ".join(str(r) for r in ranks)
        layout = f" {self.sample_layout}" if self.sample_layout else ""
        raise ShapeError(
            f"expects{layout} samples (rank {want}), but the incoming shape is {{incoming}}, "
            f"rank {len(shape) - 1} per sample",
            hints=[
                "the spec's input is one sample without the batch dimension; "
                "reshape with Flatten/Unflatten or change the input"
            ],
        )

    def check_given(
        self, field: str, given: int | None, actual: int, what: str | None, hints: Sequence[str] = ()
    ) -> int:
        """An inferable parameter (in_channels, in_features, num_features): check it or infer it.

        ``what`` names the dimension ("channels") where the shape alone doesn't say which one it is;
        None for the last dimension (Linear's features), which the shape already shows.
        """
        if given is not None and given != actual:
            which = f" with {actual} {what}" if what else ""
            raise ShapeError(
                f"{field} is {given} but the incoming shape is {{incoming}}{which}; "
                f"set {field}: {actual} or leave it out",
                field=field,
                hints=hints,
            )
        return actual

    # -- how it becomes torch ---------------------------------------------------------------------
    def torch_args(self, inferred: Inferred) -> dict[str, Any]:
        """Keyword arguments for ``torch.nn.<type>``: what the user set plus what was inferred.

        Unset parameters are left to torch, so torch's own defaults apply.
        """
        args = {k: _tuplify(getattr(self, k)) for k in self.model_fields_set if k not in _META}
        args.update({k: _tuplify(v) for k, v in inferred.args.items()})
        order = _arg_order(type(self))
        return dict(sorted(args.items(), key=lambda kv: order[kv[0]]))

    @classmethod
    def torch_factory(cls) -> Callable[..., Any]:
        """The torch class the layer becomes: ``torch.nn.<type>``; torchspec's own layers
        (merges, tensor ops) return theirs from :mod:`torchspec.nn`. Imports torch."""
        import importlib

        return getattr(importlib.import_module(cls.torch_home), cls.type_name())  # type: ignore[no-any-return]

    def torch_module(self, args: dict[str, Any]) -> Any:
        """The ``torch.nn.Module`` for this layer, from the resolved :meth:`torch_args`."""
        return self.torch_factory()(**build_inline(args))

    @property
    def inplace_write(self) -> bool:
        """True when the layer overwrites its input (``inplace: true``)."""
        return "inplace" in _field_names(type(self)) and bool(self.inplace)  # type: ignore[attr-defined]

    def summary(self, inferred: Inferred) -> str:
        """``Conv3d(3, 64, kernel_size=3, padding=1)``: positional values, then what was set."""
        return self.summary_of(self.torch_args(inferred))

    def summary_of(self, args: dict[str, Any]) -> str:
        """:meth:`summary` from the resolved :meth:`torch_args` (a shape table row already has them)."""
        shown = [_show(args[k]) for k in self.positional if k in args]
        shown += [f"{k}={_show(v)}" for k, v in args.items() if k not in self.positional]
        return f"{self.type_name()}({', '.join(shown)})"

    def data(self) -> dict[str, Any]:
        """The layer as spec data (what the user wrote, with ``type`` first)."""
        return {
            "type": self.type_name(),
            **self.model_dump(exclude_unset=True, exclude={"type"}, by_alias=True),
        }


_TYPE_NAMES: dict[type, str] = {}


@functools.cache
def _field_names(cls: type[Layer]) -> frozenset[str]:
    """``cls``'s fields, looked up once (pydantic's ``model_fields`` is a computed class property,
    slow enough to show in a 5,000-layer check when asked at every layer)."""
    return frozenset(cls.model_fields)


@functools.cache
def _arg_order(cls: type[Layer]) -> dict[str, int]:
    """torch's own argument order for ``cls``: positional values, then the window sizes, then the
    rest as declared (computed once per class: the walk asks for it at every layer)."""
    order: dict[str, int] = {}
    for key in (*cls.positional, *_SIZES_FIRST, *cls.model_fields):
        order.setdefault(key, len(order))  # the first mention wins
    return order


_META = frozenset({"type", "name", "from_"})
_SIZES_FIRST = ("kernel_size", "stride", "padding", "output_padding", "dilation")


def _tuplify(value: Any) -> Any:
    if isinstance(value, Layer):  # an inline layer whose rule has not run: what the user set
        return InlineLayer(value, value.torch_args(Inferred(())))
    return tuple(value) if isinstance(value, list) else value


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(map(str, value)) + ")"
    return repr(value) if isinstance(value, str) else str(value)


L = TypeVar("L", bound=type[Layer])


class Registry(Mapping[str, "type[Layer]"]):
    """Layer type name -> class, importing a family module only when one of its types is asked for.

    Creating ~150 pydantic classes costs more than the rest of `torchspec check`, so the names are
    known up front (``index``: name -> module, from a scan of the family modules' ``type:``
    declarations) and a module is imported at the first lookup of one of its types. Names, ``in``
    and iteration never import; ``values()`` and ``items()`` import every family.
    """

    def __init__(self) -> None:
        self._classes: dict[str, type[Layer]] = {}
        self._where: dict[str, str] = {}  # name -> module that registers it

    def index(self, where: Mapping[str, str]) -> None:
        for name, module in where.items():
            self._where.setdefault(name, module)

    def add(self, cls: type[Layer]) -> None:
        name = cls.type_name()
        if name in self._classes:
            raise RuntimeError(f"layer type {name!r} registered twice")
        self._classes[name] = cls
        self._where.setdefault(name, cls.__module__)

    def __getitem__(self, name: str) -> type[Layer]:
        cls = self._classes.get(name)
        if cls is None:
            importlib.import_module(self._where[name])  # KeyError: no such layer type
            cls = self._classes.get(name)
            if cls is None:
                raise RuntimeError(
                    f"{self._where[name]} declares layer type {name!r} but does not register it"
                )
        return cls

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


REGISTRY = Registry()


def register(cls: L) -> L:
    """Add a layer class to the registry under its ``type`` name (the torch.nn class name)."""
    REGISTRY.add(cls)
    return cls


def prod(values: Sequence[int]) -> int:
    return math.prod(values)


def checked_dim(value: int, what: str) -> int:
    """A computed dimension must be positive and fit torch's int64."""
    if value > INT64_MAX:
        raise ShapeError(f"{what} would be {value}, beyond torch's int64 limit")
    return value
