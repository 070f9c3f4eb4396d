"""The names a spec gives layers (``name:``) and what they read (``from:``): the rules torch's
``add_module`` and the wiring impose on them, checked as the spec is validated."""

from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

__all__ = ["RESERVED", "From", "ModuleName", "Ref"]

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
