"""The annotated records the SIEM tests use are real and complete.

- With a live CLI, its output equals the checked-in golden files (so the
  golden fallback used on machines without cargo is the CLI's output).
- Every annotation member in that output is one the schema in conftest.py
  knows, with the documented JSON type; the schema itself lists exactly the
  members of SPEC Appendix A plus the two documented extras, and the engine's
  own member list.
"""
import datetime
import re

import pytest

from siem_testlib import ANNOTATION_SCHEMA, DATASETS, REPO, annotation_leaves, schema_leaves

ENUMS = {
    "credlineage.credential_type": {"long_term", "temporary", "none", "unknown"},
    "credlineage.lineage_root_type": {"access_key", "root_user", "iam_user_session", "ec2_instance",
                                      "aws_service", "saml", "web_identity", "unresolved"},
    "credlineage.offhost_reason": {"new_ip_for_instance", "ip_used_by_other_identity", "outside_aws",
                                   "foreign_vpc_endpoint"},
}
FINGERPRINT = re.compile(r"^sf1_[0-9a-f]{32}$")


def test_cli_output_equals_golden_files(credlineage_bin, cli_output):
    if credlineage_bin is None:
        pytest.skip("no credlineage CLI (set CREDLINEAGE_BIN or install cargo)")
    for name, (_, _, golden) in DATASETS.items():
        text, src = cli_output[name]
        assert text == golden.read_text(), (
            f"{src} differs from {golden.relative_to(REPO)}; regenerate it "
            "(see pipelines/tests/fixtures/make_siem_extra.py or UPDATE_GOLDEN=1 cargo test --test golden)")


def test_every_dataset_is_annotated(annotated):
    for name, recs in annotated.items():
        assert recs, name
        assert all(isinstance(r.get("credlineage"), dict) for r in recs), f"{name}: record without annotation"


def _type_ok(kind, value):
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("str", "enum"):
        return isinstance(value, str)
    if kind == "str|null":
        return value is None or isinstance(value, str)
    if kind == "datetime":
        return isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", value) and \
            datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ") is not None
    raise AssertionError(kind)


def test_annotation_members_have_documented_types(all_records):
    known = schema_leaves()
    seen = set()
    for r in all_records:
        for field, value in annotation_leaves(r).items():
            assert field in known, f"{field} is not in the documented annotation schema"
            assert _type_ok(known[field], value), f"{field}={value!r} is not a {known[field]}"
            if field in ENUMS:
                assert value in ENUMS[field], f"{field}={value!r}"
            if field.endswith("fingerprint") and value is not None:
                assert FINGERPRINT.match(value), f"{field}={value!r}"
            seen.add(field)
    # The four core members are on every record; the rest appear somewhere in the fixtures.
    assert seen == set(known), f"never seen in the fixtures: {sorted(set(known) - seen)}"


def test_schema_matches_spec_and_engine():
    spec = (REPO / "docs" / "SPEC.md").read_text()
    appendix = spec[spec.index("## Appendix A"):]
    order = appendix[:appendix.index("Inside `issued`")]
    top = re.findall(r"`([a-z_0-9]+)`", order)
    issued = re.findall(r"`([a-z_]+)`", appendix[appendix.index("Inside `issued`"):appendix.index("`chained`.") + len("`chained`")])
    extras = ["used_after_expiration", "self_assume"]
    assert list(ANNOTATION_SCHEMA) == top + extras
    assert list(ANNOTATION_SCHEMA["issued"]) == [k for k in issued if k != "issued"]
    engine = (REPO / "src" / "engine.rs").read_text()
    own = engine[engine.index("const OWN_FIELDS"):]
    own = own[:own.index("];")]
    assert re.findall(r'"([a-z_0-9]+)"', own) == list(ANNOTATION_SCHEMA)
