"""The :class:`Layer` base class: a layer's fields, its shape rule's entry points and how it becomes
torch (the contract in full: :mod:`torchspec.layers.base`)."""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from torchspec.layers.names import From, ModuleName
from torchspec.layers.shapes import Inferred, Shape, ShapeError

__all__ = ["InlineLayer", "Layer", "build_inline"]


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
    # torchspec's own fields that are no argument of the torch constructor (attention's
    # ``causal``): they choose the class (``torch_class``) and never reach the constructor.
    spec_fields: ClassVar[tuple[str, ...]] = ()
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

    @classmethod
    def torch_class(cls, args: dict[str, Any]) -> tuple[str, str]:
        """(module, class name) of the class the resolved ``args`` build: ``torch_factory``'s, or
        torchspec's subclass that a spec field picks (``causal: true``: ``CausalMultiheadAttention``
        of :mod:`torchspec.nn`, torch's class with the mask passed in forward)."""
        return cls.torch_home, cls.type_name()

    @classmethod
    def torch_build(cls, args: dict[str, Any]) -> Any:
        """``torch_class(args)(**args)`` without the spec fields (inline layers built). Imports torch."""
        import importlib

        home, name = cls.torch_class(args)
        kwargs = {k: v for k, v in args.items() if k not in cls.spec_fields}
        return getattr(importlib.import_module(home), name)(**build_inline(kwargs))

    def torch_module(self, args: dict[str, Any]) -> Any:
        """The ``torch.nn.Module`` for this layer, from the resolved :meth:`torch_args`."""
        return self.torch_build(args)

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
    fields = [*(k for k in cls.model_fields if k not in cls.spec_fields), *cls.spec_fields]
    for key in (*cls.positional, *_SIZES_FIRST, *fields):  # torchspec's own fields last
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
