"""README's table of every train key states the config model's own defaults (it cannot go stale)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from torchspec.training.config import TrainConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def _default(field: Any) -> str:
    """How the table writes a field's default: required, none, `value`, or `[]`."""
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        made = field.default_factory()
        return f"`{made.type}`" if hasattr(made, "type") else repr(made)
    value = field.default
    if value is None:
        return "none"
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def _table() -> dict[str, str]:
    text = README.read_text()
    block = text.split("<summary>Every train key and its default</summary>", 1)[1].split("</details>", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", block, flags=re.M)
    assert rows, "no train-key table in README.md"
    return dict(rows)


def test_the_readme_lists_every_train_key_with_its_default() -> None:
    table = _table()
    assert list(table) == list(TrainConfig.model_fields)  # every key, in the model's order
    for name, field in TrainConfig.model_fields.items():
        assert table[name] == _default(field), name
