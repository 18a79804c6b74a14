"""The annotated records the SIEM tests use are real and complete.

- With a live CLI, its output equals the checked-in golden files (so the
  golden fallback used on machines without cargo is the CLI's output).
- Every annotation member in that output is one the schema in conftest.py
  knows, with the documented JSON type; the schema itself lists exactly the
  members of SPEC Appendix A plus the two documented extras, and the engine's
  own member list.
- The hand-written SPEC v1.1 dataset (siem_testlib.HANDWRITTEN) is replaced by
  the CLI's output as soon as the CLI writes the v1.1 fields.
"""
import datetime
import json
import re
import subprocess

import pytest

from siem_testlib import (ANNOTATION_SCHEMA, DATASETS, HANDWRITTEN, REPO, V11_FIELDS, annotation_leaves,
                          schema_leaves)

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
        if name in HANDWRITTEN:
            continue  # test_handwritten_datasets_are_replaced_once_the_cli_writes_v11
        text, src = cli_output[name]
        assert text == golden.read_text(), (
            f"{src} differs from {golden.relative_to(REPO)}; regenerate it "
            "(see pipelines/tests/fixtures/make_siem_extra.py or UPDATE_GOLDEN=1 cargo test --test golden)")


def test_handwritten_datasets_are_replaced_once_the_cli_writes_v11(credlineage_bin):
    """SPEC v1.1 fixtures were hand-written before the engine implemented v1.1.
    Once the CLI writes the v1.1 fields, its output must replace them."""
    if not HANDWRITTEN:
        return
    if credlineage_bin is None:
        pytest.skip("no credlineage CLI (set CREDLINEAGE_BIN or install cargo)")
    for name in sorted(HANDWRITTEN):
        cwd, arg, golden = DATASETS[name]
        r = subprocess.run([str(credlineage_bin), "enrich", arg], cwd=cwd, capture_output=True, text=True)
        assert r.returncode == 0, f"credlineage enrich {arg} failed ({r.returncode}): {r.stderr}"
        annotations = [json.loads(line).get("credlineage") or {} for line in r.stdout.splitlines() if line.strip()]
        writes_v11 = any(f in a for a in annotations for f in V11_FIELDS)
        assert not writes_v11, (
            f"the CLI now writes the SPEC v1.1 fields: replace the hand-written {golden.relative_to(REPO)} with "
            f"its output (`credlineage enrich {arg}` in {cwd.relative_to(REPO)}), check the differences, and "
            f"remove {name!r} from siem_testlib.HANDWRITTEN")


def test_every_dataset_is_annotated(annotated):
    for name, recs in annotated.items():
        assert recs, name
        assert all(isinstance(r.get("credlineage"), dict) for r in recs), f"{name}: record without annotation"


def _type_ok(kind, value):
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "true":  # true or absent, never false
        return value is True
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


def test_offhost_fields_are_consistent(all_records):
    """SPEC 3.1 / 3.5 (v1.1): offhost_reason only on off-host calls; offhost_other_identity
    only with ip_used_by_other_identity, and it is an ARN; offhost_ancestor is on calls
    made with a credential issued below an off-host call, and never on instance credentials
    themselves (those are judged by ec2_cred_offhost)."""
    counts = {"other": 0, "ancestor": 0}
    for r in all_records:
        a = r["credlineage"]
        if "offhost_reason" in a:
            assert a["ec2_cred_offhost"] is True, a
        if "offhost_other_identity" in a:
            assert a.get("offhost_reason") == "ip_used_by_other_identity", a
            assert re.fullmatch(r"arn:aws[\w-]*:(iam|sts)::\d{12}:\S+", a["offhost_other_identity"]), a
            counts["other"] += 1
        if "offhost_ancestor" in a:
            assert a["credential_type"] == "temporary" and "ec2_instance_id" not in a, a
            assert a["lineage_depth"] >= 2 and a.get("parent_fingerprint"), a
            counts["ancestor"] += 1
    assert counts["other"] > 0 and counts["ancestor"] > 0, counts


def test_schema_matches_spec_and_engine():
    spec = (REPO / "docs" / "SPEC.md").read_text()
    appendix = spec[spec.index("## Appendix A"):]
    order = appendix[:appendix.index("Inside `issued`")]
    top = re.findall(r"`([a-z_0-9]+)`", order)
    issued = re.findall(r"`([a-z_]+)`", appendix[appendix.index("Inside `issued`"):appendix.index("`chained`.") + len("`chained`")])
    extras = ["used_after_expiration", "self_assume"]
    assert list(ANNOTATION_SCHEMA) == top + extras
    assert list(ANNOTATION_SCHEMA["issued"]) == [k for k in issued if k != "issued"]
    engine = (REPO / "src" / "core" / "engine" / "mod.rs").read_text()
    own = engine[engine.index("const OWN_FIELDS"):]
    own = own[:own.index("];")]
    own = re.findall(r'"([a-z_0-9]+)"', own)
    assert own == list(ANNOTATION_SCHEMA)
