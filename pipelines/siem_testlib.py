"""Helpers shared by the SIEM tests under pipelines/ (imported by conftest.py and the tests)."""
import json
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SIEM_FIXTURES = REPO / "pipelines" / "tests" / "fixtures"

# name -> (working directory, CLI argument, golden output)
DATASETS = {
    "scenarios": (FIXTURES, "scenarios.jsonl", FIXTURES / "scenarios.expected.jsonl"),
    "stratus": (FIXTURES, "stratus.jsonl", FIXTURES / "stratus.expected.jsonl"),
    "awslogs": (FIXTURES, "AWSLogs", FIXTURES / "awslogs.expected.jsonl"),
    "siem_extra": (SIEM_FIXTURES, "siem-extra.jsonl", SIEM_FIXTURES / "siem-extra.expected.jsonl"),
}

# Every member the annotation can carry (SPEC Appendix A order, then the two
# documented extras), with the JSON type of its value. Nested objects list
# their members.
ANNOTATION_SCHEMA = {
    "v": "int",
    "credential_type": "enum",
    "access_key_id": "str",
    "key_account": "str",
    "session_fingerprint": "str|null",
    "lineage_root": "str|null",
    "lineage_root_type": "enum",
    "lineage_depth": "int",
    "lineage_complete": "bool",
    "parent_fingerprint": "str",
    "is_key_collision": "bool",
    "collision_count": "int",
    "ec2_cred_offhost": "bool",
    "ec2_instance_id": "str",
    "offhost_reason": "enum",
    "issued": {
        "access_key_id": "str",
        "session_fingerprint": "str",
        "lineage_root": "str",
        "lineage_depth": "int",
        "expiration": "datetime",
        "chained": "bool",
    },
    "created_by": {
        "session_fingerprint": "str",
        "lineage_root": "str",
    },
    "used_after_expiration": "bool",
    "self_assume": "bool",
}


def schema_leaves(schema=ANNOTATION_SCHEMA, prefix="credlineage."):
    """{'credlineage.v': 'int', 'credlineage.issued.expiration': 'datetime', ...}"""
    out = {}
    for k, v in schema.items():
        if isinstance(v, dict):
            out.update(schema_leaves(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def annotation_leaves(record, prefix="credlineage."):
    """Flatten a record's annotation to {'credlineage.x.y': value}."""
    out = {}

    def walk(p, obj):
        for k, v in obj.items():
            if isinstance(v, dict):
                walk(f"{p}{k}.", v)
            else:
                out[p + k] = v

    ann = record.get("credlineage")
    if isinstance(ann, dict):
        walk(prefix, ann)
    return out


def cargo_binary():
    cargo = shutil.which("cargo")
    if not cargo or os.environ.get("CREDLINEAGE_NO_CARGO"):
        return None
    subprocess.run([cargo, "build", "--release", "--quiet", "--bin", "credlineage"], cwd=REPO, check=True)
    meta = subprocess.run([cargo, "metadata", "--format-version", "1", "--no-deps"], cwd=REPO, check=True,
                          capture_output=True, text=True)
    target = Path(json.loads(meta.stdout)["target_directory"])
    return target / "release" / "credlineage"
