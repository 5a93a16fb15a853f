from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from tessera.models._schema import bound_schema, fit_schema, max_json_tokens, schema_to_grammar


class Item(BaseModel):
    name: str
    tags: list[str]
    level: int = Field(ge=1, le=3)
    big: int = Field(ge=0, le=10_000)
    mode: Literal["a", "b"]


class Wrapper(BaseModel):
    items: list[Item] = Field(max_length=2)
    note: str = Field(max_length=10)


def test_every_string_and_array_gets_a_bound() -> None:
    schema = bound_schema(Wrapper.model_json_schema(), max_string=50, max_items=4)
    item = schema["$defs"]["Item"]
    assert item["properties"]["name"]["maxLength"] == 50
    assert item["properties"]["tags"]["maxItems"] == 4
    assert schema["properties"]["items"]["maxItems"] == 2  # a tighter bound of the user's own stays
    assert schema["properties"]["note"]["maxLength"] == 10
    assert item["additionalProperties"] is False


def test_small_integer_ranges_become_enums_large_ones_do_not() -> None:
    item = bound_schema(Item.model_json_schema())["properties"]
    assert item["level"]["enum"] == [1, 2, 3]
    assert "enum" not in item["big"]


def test_worst_case_tokens_add_up() -> None:
    schema = bound_schema(
        {
            "type": "object",
            "properties": {"s": {"type": "string", "maxLength": 10}},
            "required": ["s"],
        }
    )
    # {"s": "<10 chars, up to 4 tokens each>"} plus optional spaces
    assert 2 + 10 * 4 < max_json_tokens(schema) < 70


def test_fit_schema_tightens_bounds_to_the_context() -> None:
    loose, loose_worst = fit_schema(Item.model_json_schema(), 100_000)
    tight, tight_worst = fit_schema(Item.model_json_schema(), 400)
    assert loose_worst is not None and tight_worst is not None
    assert tight_worst <= 400 < loose_worst
    assert tight["properties"]["name"]["maxLength"] < loose["properties"]["name"]["maxLength"]
    with pytest.raises(ValueError, match="does not fit"):
        fit_schema(Item.model_json_schema(), 20)


def test_patterns_cannot_be_bounded() -> None:
    schema = {"type": "object", "properties": {"p": {"type": "string", "pattern": "^a+$"}}}
    bounded, worst = fit_schema(schema, 1000)
    assert worst is None and bounded["properties"]["p"]["pattern"] == "^a+$"


def test_grammar_keeps_control_characters_out_of_strings() -> None:
    pytest.importorskip("llama_cpp")
    grammar = schema_to_grammar(bound_schema(Item.model_json_schema()))
    char_rule = next(line for line in grammar.splitlines() if line.startswith("char ::="))
    assert r"\x00-\x1F" in char_rule and '"u"' not in char_rule
