"""Elastic files, checked without an Elasticsearch instance.

- Every member in credlineage's real output is mapped by the component
  template with a compatible type, observed values fit the type, and the
  template maps nothing credlineage does not write.
- The index template composes the component template and the pipeline it
  names is the one shipped; the pipelines use only known processors.
- Every credlineage.* field the README's queries name exists.
"""
import datetime
import json
import re
from pathlib import Path

import pytest

from siem_testlib import annotation_leaves, schema_leaves

HERE = Path(__file__).resolve().parent
COMPONENT = json.loads((HERE / "credlineage-component-template.json").read_text())
INDEX_TEMPLATE = json.loads((HERE / "credlineage-index-template.json").read_text())
PIPELINE = json.loads((HERE / "credlineage-cloudtrail-pipeline.json").read_text())
CUSTOM_PIPELINE = json.loads((HERE / "logs-aws.cloudtrail@custom.pipeline.json").read_text())

INT_RANGES = {"byte": 2**7 - 1, "short": 2**15 - 1, "integer": 2**31 - 1, "long": 2**63 - 1}
# JSON value kind in credlineage's output -> Elasticsearch field types that hold it.
COMPATIBLE = {
    "bool": {"boolean"},
    "true": {"boolean"},
    "int": set(INT_RANGES),
    "str": {"keyword"},
    "enum": {"keyword"},
    "str|null": {"keyword"},
    "datetime": {"date"},
}
KNOWN_PROCESSORS = {"date", "set", "append", "json", "rename", "remove"}


def mapped_leaves(properties, prefix=""):
    """{'credlineage.issued.expiration': {'type': 'date', ...}, ...}; checks objects are objects."""
    out = {}
    for name, spec in properties.items():
        path = prefix + name
        if "properties" in spec:
            assert spec.get("type", "object") == "object", f"{path}: has properties but type {spec.get('type')}"
            out.update(mapped_leaves(spec["properties"], path + "."))
        else:
            assert "type" in spec, f"{path}: no type"
            out[path] = spec
    return out


MAPPED = mapped_leaves(COMPONENT["template"]["mappings"]["properties"])


def test_component_template_maps_exactly_the_annotation():
    assert set(COMPONENT["template"]["mappings"]["properties"]) == {"credlineage"}
    known = schema_leaves()
    assert set(MAPPED) == set(known), (
        f"unmapped: {sorted(set(known) - set(MAPPED))}; unknown: {sorted(set(MAPPED) - set(known))}")
    for field, kind in known.items():
        assert MAPPED[field]["type"] in COMPATIBLE[kind], f"{field}: {MAPPED[field]['type']} cannot hold {kind}"
    props = COMPONENT["template"]["mappings"]["properties"]["credlineage"]["properties"]
    assert props["issued"]["type"] == "object" and props["created_by"]["type"] == "object"


def _date_formats(spec):
    return spec.get("format", "strict_date_optional_time||epoch_millis").split("||")


def _parses_as(value, fmt):
    patterns = {
        "strict_date_time_no_millis": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})",
        "strict_date_optional_time": r"\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?)?)?)?",
    }
    if fmt not in patterns:
        return False
    if not re.fullmatch(patterns[fmt], value):
        return False
    datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))  # a real date, not just the right shape
    return True


def test_every_field_in_real_output_is_mapped_compatibly(all_records):
    seen = 0
    for record in all_records:
        for field, value in annotation_leaves(record).items():
            assert field in MAPPED, f"{field} (value {value!r}) is not mapped"
            es_type = MAPPED[field]["type"]
            seen += 1
            if value is None:
                continue  # null: not indexed, any type accepts it
            if isinstance(value, bool):
                assert es_type == "boolean", f"{field}={value!r} mapped as {es_type}"
            elif isinstance(value, int):
                assert es_type in INT_RANGES, f"{field}={value!r} mapped as {es_type}"
                assert 0 <= value <= INT_RANGES[es_type], f"{field}={value} overflows {es_type}"
            elif isinstance(value, str) and es_type == "date":
                assert any(_parses_as(value, f) for f in _date_formats(MAPPED[field])), \
                    f"{field}={value!r} does not match {MAPPED[field].get('format')}"
            elif isinstance(value, str):
                assert es_type == "keyword", f"{field}={value!r} mapped as {es_type}"
                assert "ignore_above" not in MAPPED[field] or len(value) <= MAPPED[field]["ignore_above"]
            else:
                pytest.fail(f"{field}={value!r}: unexpected JSON type")
    assert seen > 0


def test_index_template_composes_component_template():
    assert INDEX_TEMPLATE["composed_of"] == ["credlineage-mappings"]
    assert "data_stream" in INDEX_TEMPLATE
    mappings = INDEX_TEMPLATE["template"]["mappings"]
    assert "credlineage" not in mappings["properties"], "the annotation is mapped by the component template only"
    assert mappings["properties"]["@timestamp"]["type"] == "date"
    assert INDEX_TEMPLATE["template"]["settings"]["index.default_pipeline"] == "credlineage-cloudtrail"
    for pattern in INDEX_TEMPLATE["index_patterns"]:
        assert not pattern.startswith(("logs-", "metrics-", "traces-")), "would compete with Elastic's built-in templates"
    # sourceIPAddress is not always an IP ("AWS Internal", service names): keyword, never ip.
    assert mappings["properties"]["sourceIPAddress"]["type"] == "keyword"


def _processors(pipeline):
    for block in ("processors", "on_failure"):
        for proc in pipeline.get(block, []):
            assert len(proc) == 1
            (kind, body), = proc.items()
            yield kind, body


def test_pipelines_use_known_processors():
    for pipeline in (PIPELINE, CUSTOM_PIPELINE):
        assert pipeline["description"]
        for kind, body in _processors(pipeline):
            assert kind in KNOWN_PROCESSORS, kind
            assert "field" in body


def test_custom_pipeline_lifts_annotation_from_event_original():
    procs = [(k, b) for k, b in _processors({"processors": CUSTOM_PIPELINE["processors"]})]
    assert [k for k, _ in procs] == ["json", "rename", "remove"]
    (_, parse), (_, lift), (_, cleanup) = procs
    tmp = parse["target_field"]
    assert parse["field"] == "event.original"
    assert "ctx.credlineage == null" in parse["if"], "must leave documents that already carry the annotation alone"
    assert lift["field"] == f"{tmp}.credlineage" and lift["target_field"] == "credlineage"
    assert cleanup["field"] == tmp and cleanup["ignore_missing"] is True
    assert not tmp.startswith("_"), "underscore-prefixed fields are reserved for metadata"
    assert any(k == "remove" and b["field"] == tmp for k, b in _processors({"processors": CUSTOM_PIPELINE["on_failure"]}))


def test_readme_queries_name_only_existing_fields():
    text = (HERE / "README.md").read_text()
    blocks = re.findall(r"```(?:esql|kql)\n(.*?)```", text, re.S)
    assert len(blocks) >= 8
    fields = set()
    for b in blocks:
        fields |= set(re.findall(r"credlineage(?:\.[a-z_0-9]+)+", b))
    unknown = fields - set(schema_leaves())
    assert not unknown, unknown
    assert {"credlineage.ec2_cred_offhost", "credlineage.is_key_collision", "credlineage.lineage_depth",
            "credlineage.created_by.lineage_root", "credlineage.used_after_expiration",
            "credlineage.offhost_ancestor", "credlineage.offhost_other_identity"} <= fields


def test_readme_has_a_query_for_every_sigma_rule():
    """The Elastic content follows the Sigma rules: each rule's credlineage.* filter
    fields appear in a query of this README."""
    import yaml
    text = (HERE / "README.md").read_text()
    queries = "\n".join(re.findall(r"```(?:esql|kql)\n(.*?)```", text, re.S))
    for path in sorted((HERE.parent / "sigma" / "rules").glob("*.yml")):
        detection = dict(yaml.safe_load(path.read_text())["detection"])
        detection.pop("condition")
        for item in detection.values():
            for key in (item if isinstance(item, dict) else {}):
                field = key.split("|")[0]
                if field.startswith("credlineage."):
                    assert field in queries, f"{path.name}: no README query names {field}"
