"""Look-alike characters: every error about a name holding non-ASCII characters names each one
(code point, Unicode name) at its exact column; Unicode spaces used as indentation or separators
are refused on the line where they are. Parametrised over characters and kinds of names."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

import torchspec
from torchspec import Problem, SpecError
from torchspec.training.resolve import resolve_spec

# (the look-alike, the ASCII letter it replaces)
LOOKALIKES = [
    ("\u0435", "e"),  # CYRILLIC SMALL LETTER IE
    ("\u0430", "a"),  # CYRILLIC SMALL LETTER A
    ("\u043e", "o"),  # CYRILLIC SMALL LETTER O
    ("\u03bf", "o"),  # GREEK SMALL LETTER OMICRON
    ("\u0391", "A"),  # GREEK CAPITAL LETTER ALPHA
    ("\uff21", "A"),  # FULLWIDTH LATIN CAPITAL LETTER A
    ("\u00e9", "e"),  # LATIN SMALL LETTER E WITH ACUTE
]
TRAIN = "train:\n  data: {source: random, samples: 4}\n"
# (spec text with NAME where the misspelt word goes, the ASCII word, where the name is)
CASES = [
    ("name: x\ninput: [3, 8]\nlayers:\n  - NAME\n", "ReLU", "bare layer type"),
    ("name: x\ninput: [3, 8]\nlayers:\n  - {type: NAME}\n", "ReLU", "layer type"),
    ("name: x\ninput: [8]\nlayers:\n  - {type: Linear, NAME: 4}\n", "out_features", "parameter name"),
    ("name: x\ninput: [8]\nlayers:\n  - {type: GELU, approximate: NAME}\n", "tanh", "option value"),
    ("name: x\ninput: [8]\nNAME: [ReLU]\n", "layers", "top-level key"),
    ("name: x\ninput: [8]\nlayers: [ReLU]\n" + TRAIN + "  optimizer: NAME\n", "Adam", "optimizer"),
    ("name: x\ninput: [8]\nlayers: [ReLU]\n" + TRAIN + "  NAME: 2\n", "epochs", "train key"),
]


def first_problem(tmp_path: Path, text: str) -> Problem:
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        resolve_spec(path) if "train:" in text else torchspec.infer_shapes(path)
    return info.value.problems[0]


def pick(word: str, letter: str) -> int:
    """Where ``letter`` is in ``word`` (case-insensitively), or 0."""
    return max(word.lower().find(letter.lower()), 0)


@pytest.mark.parametrize(("char", "letter"), LOOKALIKES, ids=[f"U+{ord(c):04X}" for c, _ in LOOKALIKES])
@pytest.mark.parametrize(("template", "word", "kind"), CASES, ids=[c[2] for c in CASES])
def test_every_non_ascii_character_of_a_name_is_named_at_its_column(
    tmp_path: Path, char: str, letter: str, template: str, word: str, kind: str
) -> None:
    index = pick(word, letter)
    bad = word[:index] + char + word[index + 1 :]
    text = template.replace("NAME", bad)
    problem = first_problem(tmp_path, text)
    line = text.splitlines()[problem.line - 1]
    assert bad in line, problem.format()  # the problem is on the line holding the name
    column = line.index(char) + 1
    named = f"U+{ord(char):04X} {unicodedata.name(char)} at column {column}"
    assert any(named in hint for hint in problem.hints), problem.format()
    assert problem.hints[0].startswith(f"'{bad}' holds non-ASCII character")  # before any did-you-mean


def test_each_of_several_characters_is_named(tmp_path: Path) -> None:
    bad = "R\u0435L\u0423"  # CYRILLIC IE and CYRILLIC CAPITAL U
    problem = first_problem(tmp_path, f"name: x\ninput: [8]\nlayers:\n  - {bad}\n")
    assert problem.hints[0] == (
        f"'{bad}' holds non-ASCII characters: U+0435 CYRILLIC SMALL LETTER IE at column 6, "
        "U+0423 CYRILLIC CAPITAL LETTER U at column 8; names are ASCII: retype it"
    )


def test_a_set_key_or_value_names_the_character_by_its_place_in_the_name(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("name: x\ninput: [8]\nlayers: [ReLU]\n" + TRAIN)
    with pytest.raises(SpecError) as info:
        resolve_spec(path, ["train.optimizer=\u0410dam"])
    (problem,) = info.value.problems
    assert problem.file == "--set train.optimizer=\u0410dam"
    assert "U+0410 CYRILLIC CAPITAL LETTER A at character 1 of the name" in problem.hints[0]


def test_ascii_names_get_no_such_hint(tmp_path: Path) -> None:
    problem = first_problem(tmp_path, "name: x\ninput: [8]\nlayers:\n  - Relu2\n")
    assert not any("non-ASCII" in hint for hint in problem.hints)


# ------------------------------------------------------------------------------ Unicode spaces

SPACES = ["\u00a0", "\u2003", "\u3000", "\u200b", "\u202f", "\ufeff"]
LINES = ["name: x", "input: [8]", "layers:", "  - ReLU", "  - {type: Linear, out_features: 2}"]


@pytest.mark.parametrize("space", SPACES, ids=[f"U+{ord(c):04X}" for c in SPACES])
@pytest.mark.parametrize("line", [2, 4, 5])
@pytest.mark.parametrize("column", [1, 2])
def test_a_unicode_space_in_indentation_is_refused_on_its_own_line(
    tmp_path: Path, space: str, line: int, column: int
) -> None:
    lines = list(LINES)
    text = lines[line - 1]
    lines[line - 1] = text[: column - 1] + space + text[column:] if text.startswith("  ") else space + text
    column = column if text.startswith("  ") else 1
    problem = first_problem(tmp_path, "\n".join(lines) + "\n")
    assert (problem.line, problem.col) == (line, column), problem.format()
    assert problem.message.startswith(f"U+{ord(space):04X} {unicodedata.name(space)} at column {column}")
    assert "as indentation" in problem.message and "plain space" in problem.hints[0]


@pytest.mark.parametrize("space", SPACES, ids=[f"U+{ord(c):04X}" for c in SPACES])
def test_a_unicode_space_after_a_colon_is_refused_where_it_is(tmp_path: Path, space: str) -> None:
    text = f"name: x\ninput: [8]\nlayers:\n  - {{type: Linear, out_features:{space}2}}\n"
    problem = first_problem(tmp_path, text)
    assert (problem.line, problem.col) == (4, 33)
    assert "as a separator" in problem.message


@pytest.mark.parametrize("space", SPACES[:3], ids=[f"U+{ord(c):04X}" for c in SPACES[:3]])
def test_json_indentation_with_a_unicode_space(tmp_path: Path, space: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(f'{{"name": "x",\n{space} "input": [8], "layers": ["ReLU"]}}', encoding="utf-8")
    with pytest.raises(SpecError) as info:
        torchspec.load_spec(path)
    problem = info.value.problems[0]
    assert (problem.line, problem.col) == (2, 1) and "JSON reads only ASCII spaces" in problem.message


def test_unicode_spaces_inside_strings_and_comments_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    text = 'name: x\ndescription: "ratio 1:\u00a02, - \u2003"\ninput: [8]  # a:\u00a0b\nlayers: [ReLU]\n'
    path.write_text(text, encoding="utf-8")
    assert torchspec.load_spec(path).description == "ratio 1:\u00a02, - \u2003"
