"""Format layer data: the extraction set and IFEval subset load, and bad schemas are refused with a clear message."""

import json

import pytest

from evalkit import fmt
from evalkit.errors import ConfigError, TaskFileError


def test_sets_load_and_every_expected_answer_matches_its_schema():
    from jsonschema import validate

    extraction = fmt.load_items("extraction")
    assert len(extraction) == 16 and len({i.item for i in extraction}) == 16
    for item in extraction:
        validate(item.expected, item.schema)  # the answer key itself is schema-valid
        assert fmt.shape(item.schema) in item.prompt
    ifeval = fmt.load_items("ifeval")
    assert len(ifeval) == 17 and all(i.schema is None for i in ifeval)
    assert all(fmt.items.IFEVAL_JSON in i.meta["instructions"] for i in ifeval)
    assert len(fmt.load_items(limit=3)) == 6 and len(fmt.load_items("extraction", schema="pet.json")) == 2
    with pytest.raises(ConfigError, match="Unknown format set"):
        fmt.load_items(("extraction", "mmlu"))
    with pytest.raises(ConfigError, match="limit"):
        fmt.load_items(limit=0)


def test_shape_is_a_short_sketch():
    schema = json.loads((fmt.format_dir() / "schemas" / "story.json").read_text())
    assert fmt.shape(schema) == ('{"title": string, "characters": [{"name": string, "role": "hero" | "friend" | '
                                 '"villain" | "parent" | "other"}, ...], "happy_ending": boolean}')


@pytest.mark.parametrize(("schema", "message"), [
    ({"type": "strin"}, "not a valid JSON Schema: 'strin' is not valid"),
    ({"type": "object", "properties": {"age": {"type": "integer", "minimum": "0"}}}, "at properties/age/minimum"),
    ({"type": "object", "required": "name"}, "at required"),
    ({"type": "object", "properties": {"name": {"type": "string", "maxlength": 5}}},
     "unknown keyword 'maxlength' (at properties/name)"),
    (["not", "an", "object"], "must be a JSON object"),
])
def test_invalid_schema_names_where_and_why(schema, message):
    with pytest.raises(TaskFileError) as info:
        fmt.items.validate_schema(schema, "schemas/x.json (item x-1)")
    assert "schemas/x.json (item x-1)" in str(info.value) and message in str(info.value)
    assert "Fix:" in str(info.value)


def test_invalid_schema_file_in_a_set(tmp_path):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "bad.json").write_text('{"type": "object", "properties": {"a": {"type": "numbr"}}}')
    (tmp_path / "schemas" / "broken.json").write_text('{"type": "object",\n "properties": }')
    (tmp_path / "schemas" / "good.json").write_text('{"type": "object"}')
    data = tmp_path / "set.jsonl"
    line = {"id": "a", "schema": "bad.json", "instruction": "Extract.", "text": "t"}
    data.write_text(json.dumps(line) + "\n")
    with pytest.raises(TaskFileError, match=r"bad\.json: not a valid JSON Schema: 'numbr' is not valid.*properties/a"):
        fmt.items.load_extraction(data)
    data.write_text(json.dumps({**line, "schema": "broken.json"}) + "\n")
    with pytest.raises(TaskFileError, match=r"broken\.json, line 2: not valid JSON"):
        fmt.items.load_extraction(data)
    data.write_text(json.dumps({**line, "schema": "missing.json"}) + "\n")
    with pytest.raises(TaskFileError, match="does not exist"):
        fmt.items.load_extraction(data)
    data.write_text(json.dumps({**line, "schema": "good.json"}) + "\n{oops\n")
    with pytest.raises(TaskFileError, match="line 2: not valid JSON"):
        fmt.items.load_extraction(data)
    data.write_text(json.dumps({"id": "a", "schema": "bad.json"}) + "\n")
    with pytest.raises(TaskFileError, match="line 1: missing instruction, text"):
        fmt.items.load_extraction(data)


def test_edited_schema_is_validated_and_shapes_the_prompt():
    items = fmt.load_items("extraction", schema="pet.json")
    edited = fmt.with_schema(items, '{"type": "object", "properties": {"animal": {"type": "string"}}}', "mine")
    assert edited[0].schema_file == "mine" and '{"animal": string}' in edited[0].prompt
    assert '"color"' not in edited[0].prompt
    with pytest.raises(TaskFileError, match="schema mine: not a valid JSON Schema"):
        fmt.with_schema(items, {"type": "object", "properties": {"animal": {"type": 7}}}, "mine")
    with pytest.raises(TaskFileError, match="schema mine, line 1: not valid JSON"):
        fmt.with_schema(items, '{"type": ', "mine")


def test_learner_config_with_an_invalid_schema(tmp_path):
    path = tmp_path / "promptfooconfig.yaml"
    path.write_text("prompts: ['{{q}}']\nproviders: [echo]\ntests:\n  - description: ages\n    vars: {q: x}\n"
                    "    assert:\n      - type: is-json\n        value: {type: object, properties: {age: "
                    "{type: int}}}\n")
    with pytest.raises(TaskFileError) as info:
        fmt.run._check_own_config(path)
    assert str(path) in str(info.value) and "test 1 (ages)" in str(info.value) and "'int' is not valid" in \
        str(info.value)
