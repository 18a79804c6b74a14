"""Sigma rules for credlineage: valid, convertible, and right on real records.

1. Every rule in rules/ has the fields the Sigma specification requires, in the
   right form (UUIDv4 id, ISO date, status/level from the allowed sets, AWS
   CloudTrail logsource, ATT&CK tags that exist), and pySigma parses it and
   raises no validator issue.
2. Each rule converts with pySigma's Splunk backend (SPL) and Elasticsearch
   backends (Lucene and ES|QL), with and without the Elastic AWS integration
   field mapping, and the queries name the expected fields and values.
3. The strongest check: a small evaluator for the Sigma subset the rules use
   (field equality, value lists, `|exists`, `|gte` and friends, and/or/not)
   runs each rule's detection over the CLI's real annotated output, and the
   rule must fire on exactly the records it should, no more, no less.
"""
import datetime
import re
import uuid
from pathlib import Path

import pytest
import yaml
from sigma.backends.elasticsearch import ESQLBackend, LuceneBackend
from sigma.backends.splunk import SplunkBackend
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingPipeline
from sigma.validation import SigmaValidator
from sigma.validators.core import validators as core_validators

from siem_testlib import schema_leaves

HERE = Path(__file__).resolve().parent
RULE_FILES = sorted((HERE / "rules").glob("*.yml"))
ELASTIC_AWS_PIPELINE = HERE / "elastic-aws-integration.pipeline.yml"

# ---------------------------------------------------------------------------
# Expectations, per rule file
# ---------------------------------------------------------------------------

SENSITIVE = {
    "AddUserToGroup", "AttachGroupPolicy", "AttachRolePolicy", "AttachUserPolicy", "BatchGetSecretValue",
    "CreateAccessKey", "CreateLoginProfile", "CreatePolicyVersion", "CreateRole", "CreateUser", "DeleteFlowLogs",
    "DeleteTrail", "EnableSerialConsoleAccess", "GetPasswordData", "GetSecretValue", "LeaveOrganization",
    "ModifyDBSnapshotAttribute", "ModifyImageAttribute", "ModifySnapshotAttribute", "PutEventSelectors",
    "PutGroupPolicy", "PutRolePolicy", "PutUserPolicy", "SendCommand", "SendSerialConsoleSSHPublicKey",
    "SendSSHPublicKey", "SetDefaultPolicyVersion", "StartSession", "StopLogging", "UpdateAssumeRolePolicy",
    "UpdateLoginProfile", "UpdateTrail",
}


def ann(r):
    return r.get("credlineage") or {}


EXPECT = {
    # rule file: predicate written independently of the rule (plain Python over the
    # annotation), the records of scenarios / siem_extra it must fire on (by eventID),
    # and substrings each backend's query must contain.
    "credlineage_ec2_credentials_offhost.yml": dict(
        predicate=lambda r: ann(r).get("ec2_cred_offhost") is True,
        ids={"evt-0020", "evt-0021"},
        min_hits={"stratus": 2, "awslogs": 2},
        splunk=["credlineage.ec2_cred_offhost=true"],
        lucene=["credlineage.ec2_cred_offhost:true"],
        esql=["credlineage.ec2_cred_offhost==true"],
    ),
    "credlineage_key_collision.yml": dict(
        predicate=lambda r: ann(r).get("is_key_collision") is True,
        ids={"evt-0010", "evt-0011", "evt-0012", "evt-0013"},
        splunk=["credlineage.is_key_collision=true"],
        lucene=["credlineage.is_key_collision:true"],
        esql=["credlineage.is_key_collision==true"],
    ),
    "credlineage_deep_role_chain.yml": dict(
        predicate=lambda r: ann(r).get("lineage_depth", 0) >= 3,
        ids={"evt-0008", "siem-evt-0004"},
        splunk=["credlineage.lineage_depth>=3"],
        lucene=["credlineage.lineage_depth:>=3"],
        esql=["credlineage.lineage_depth>=3"],
    ),
    "credlineage_persistence_created_key_used.yml": dict(
        predicate=lambda r: ann(r).get("credential_type") == "long_term" and "created_by" in ann(r),
        ids={"evt-0009", "siem-evt-0008"},
        splunk=['credlineage.credential_type="long_term"', "credlineage.created_by.lineage_root=*"],
        lucene=["credlineage.credential_type:long_term", "_exists_:credlineage.created_by.lineage_root"],
        esql=['credlineage.credential_type=="long_term"', "credlineage.created_by.lineage_root is not null"],
    ),
    "credlineage_unresolved_sensitive_call.yml": dict(
        predicate=lambda r: ann(r).get("lineage_root_type") == "unresolved" and r.get("eventName") in SENSITIVE,
        ids={"siem-evt-0006"},
        min_hits={"stratus": 4},
        splunk=['credlineage.lineage_root_type="unresolved"', 'eventName IN ("AddUserToGroup"'],
        lucene=["credlineage.lineage_root_type:unresolved", "eventName:(AddUserToGroup OR"],
        esql=['credlineage.lineage_root_type=="unresolved"', 'eventName in ("AddUserToGroup"'],
    ),
    "credlineage_used_after_expiration.yml": dict(
        predicate=lambda r: ann(r).get("used_after_expiration") is True,
        ids={"evt-0027"},
        splunk=["credlineage.used_after_expiration=true"],
        lucene=["credlineage.used_after_expiration:true"],
        esql=["credlineage.used_after_expiration==true"],
    ),
    "credlineage_role_self_assume.yml": dict(
        predicate=lambda r: ann(r).get("self_assume") is True,
        ids={"siem-evt-0002"},
        splunk=["credlineage.self_assume=true"],
        lucene=["credlineage.self_assume:true"],
        esql=["credlineage.self_assume==true"],
    ),
}

# ATT&CK Enterprise tactics (as Sigma tags) and the techniques the rules use.
ATTACK_TACTICS = {
    "reconnaissance", "resource-development", "initial-access", "execution", "persistence",
    "privilege-escalation", "defense-evasion", "credential-access", "discovery", "lateral-movement",
    "collection", "command-and-control", "exfiltration", "impact",
}
ATTACK_TECHNIQUES = {
    "t1078.004": "Valid Accounts: Cloud Accounts",
    "t1098.001": "Account Manipulation: Additional Cloud Credentials",
    "t1552.005": "Unsecured Credentials: Cloud Instance Metadata API",
}
# Validators that download MITRE ATT&CK / D3FEND data at run time (no network
# here); the ATT&CK tags are checked against the tables above instead.
NETWORK_VALIDATORS = {"attacktag", "d3_fendtag"}


def test_rule_files_present():
    assert {p.name for p in RULE_FILES} == set(EXPECT)


# ---------------------------------------------------------------------------
# 1. Sigma specification
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_follows_sigma_spec(path):
    raw = yaml.safe_load(path.read_text())
    for key in ("title", "id", "status", "description", "references", "author", "date", "logsource",
                "detection", "falsepositives", "level", "tags"):
        assert key in raw, f"{path.name}: missing {key}"
    assert isinstance(raw["title"], str) and 0 < len(raw["title"]) <= 256
    assert uuid.UUID(raw["id"]).version == 4 and str(uuid.UUID(raw["id"])) == raw["id"]
    assert raw["status"] in {"stable", "test", "experimental", "deprecated", "unsupported"}
    assert raw["level"] in {"informational", "low", "medium", "high", "critical"}
    date = raw["date"]
    if isinstance(date, str):
        date = datetime.date.fromisoformat(date)
    assert isinstance(date, datetime.date)
    assert raw["logsource"] == {"product": "aws", "service": "cloudtrail"}
    assert "condition" in raw["detection"]
    assert all(isinstance(u, str) and u.startswith("https://") for u in raw["references"])
    assert isinstance(raw["falsepositives"], list) and raw["falsepositives"]
    assert re.fullmatch(r"[a-z0-9_]+\.yml", path.name)
    for tag in raw["tags"]:
        ns, _, name = tag.partition(".")
        assert ns in {"attack", "detection", "car", "cve", "stp", "tlp"}, tag
        if ns == "attack":
            assert name in ATTACK_TACTICS or name in ATTACK_TECHNIQUES, f"unknown ATT&CK tag {tag}"
        if ns == "detection":
            assert name in {"dfir", "emerging-threats", "threat-hunting"}, tag


def test_rule_ids_and_titles_unique():
    raws = [yaml.safe_load(p.read_text()) for p in RULE_FILES]
    assert len({r["id"] for r in raws}) == len(raws)
    assert len({r["title"] for r in raws}) == len(raws)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_pysigma_parses_and_validates(path):
    collection = SigmaCollection.from_yaml(path.read_text())
    assert len(collection.rules) == 1
    rule = collection.rules[0]
    assert not rule.errors, rule.errors
    validator = SigmaValidator(v for k, v in core_validators.items() if k not in NETWORK_VALIDATORS)
    issues = validator.validate_rule(rule)
    assert issues == [], issues


# ---------------------------------------------------------------------------
# 2. Conversion with the Splunk and Elasticsearch backends
# ---------------------------------------------------------------------------

KNOWN_FIELDS = set(schema_leaves())
CLOUDTRAIL_FIELDS = {"eventName", "eventSource", "sourceIPAddress", "requestParameters.roleArn"}


def _convert(backend, path):
    queries = backend.convert(SigmaCollection.from_yaml(path.read_text()))
    assert len(queries) == 1 and isinstance(queries[0], str) and queries[0].strip()
    return queries[0]


def _credlineage_fields(query):
    return set(re.findall(r"credlineage(?:\.[a-z_0-9]+)+", query))


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_converts_to_splunk_spl(path):
    q = _convert(SplunkBackend(), path)
    for s in EXPECT[path.name]["splunk"]:
        assert s in q, f"{s!r} not in {q!r}"
    assert _credlineage_fields(q) <= KNOWN_FIELDS, q


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_converts_to_elasticsearch_lucene_and_esql(path):
    lucene = _convert(LuceneBackend(), path)
    for s in EXPECT[path.name]["lucene"]:
        assert s in lucene, f"{s!r} not in {lucene!r}"
    esql = _convert(ESQLBackend(), path)
    for s in EXPECT[path.name]["esql"]:
        assert s in esql, f"{s!r} not in {esql!r}"
    for q in (lucene, esql):
        assert _credlineage_fields(q) <= KNOWN_FIELDS, q


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_converts_for_elastic_aws_integration(path):
    pipeline = ProcessingPipeline.from_yaml(ELASTIC_AWS_PIPELINE.read_text())
    q = _convert(LuceneBackend(pipeline), path)
    assert not re.search(r"\beventName\b|\beventSource\b|\bsourceIPAddress\b", q), q
    assert _credlineage_fields(q) == _credlineage_fields(_convert(LuceneBackend(), path))
    if path.name == "credlineage_unresolved_sensitive_call.yml":
        assert "event.action:(AddUserToGroup OR" in q


# ---------------------------------------------------------------------------
# 3. A tiny Sigma evaluator, run on real annotated records
# ---------------------------------------------------------------------------

_MISSING = object()
SUPPORTED_MODIFIERS = {"exists", "gte", "gt", "lte", "lt"}


def _lookup(record, field):
    """Nested lookup of a dotted field ('credlineage.issued.chained'); a literal
    dotted key at any level is honoured too."""
    def walk(obj, parts):
        if not parts:
            return obj
        if not isinstance(obj, dict):
            return _MISSING
        for i in range(len(parts), 0, -1):
            key = ".".join(parts[:i])
            if key in obj:
                found = walk(obj[key], parts[i:])
                if found is not _MISSING:
                    return found
        return _MISSING
    return walk(record, field.split("."))


def _value_matches(actual, expected):
    if actual is _MISSING:
        return expected is None
    if expected is None:
        return actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and actual == expected
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and actual == expected
    if isinstance(expected, str):
        if any(c in expected for c in "*?"):
            raise NotImplementedError(f"wildcards are not in the evaluated subset: {expected!r}")
        return isinstance(actual, str) and actual.lower() == expected.lower()  # Sigma: case-insensitive
    raise NotImplementedError(f"value {expected!r}")


def _field_matches(record, key, expected):
    field, *mods = key.split("|")
    unknown = set(mods) - SUPPORTED_MODIFIERS
    if unknown or len(mods) > 1:
        raise NotImplementedError(f"modifiers {mods} are not in the evaluated subset")
    actual = _lookup(record, field)
    values = expected if isinstance(expected, list) else [expected]
    if mods == ["exists"]:
        assert values in ([True], [False]), key
        present = actual is not _MISSING and actual is not None
        return present == values[0]
    if mods:
        if isinstance(actual, bool) or not isinstance(actual, (int, float)):
            return False
        op = {"gte": lambda a, b: a >= b, "gt": lambda a, b: a > b,
              "lte": lambda a, b: a <= b, "lt": lambda a, b: a < b}[mods[0]]
        return any(op(actual, v) for v in values)
    return any(_value_matches(actual, v) for v in values)


def _detection_matches(record, item):
    if isinstance(item, dict):
        return all(_field_matches(record, k, v) for k, v in item.items())
    if isinstance(item, list) and all(isinstance(x, dict) for x in item):
        return any(_detection_matches(record, x) for x in item)
    raise NotImplementedError(f"detection item {item!r} (keyword searches are not in the evaluated subset)")


def _tokenize(condition):
    tokens = re.findall(r"\(|\)|[A-Za-z0-9_*]+", condition)
    if "".join(tokens) != re.sub(r"\s+", "", condition):
        raise SyntaxError(f"condition {condition!r} has characters outside the evaluated subset")
    return tokens


def _evaluate(condition, named, record):
    """Recursive descent over: or < and < not < (expr) | identifier | 1 of x* | all of x*."""
    tokens = _tokenize(condition)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take(expected=None):
        nonlocal pos
        tok = peek()
        if tok is None or (expected and tok != expected):
            raise SyntaxError(f"condition {condition!r}: expected {expected or 'a token'} at {pos}")
        pos += 1
        return tok

    def atom():
        tok = peek()
        if tok == "(":
            take("(")
            v = expr()
            take(")")
            return v
        if tok == "not":
            take("not")
            return not atom()
        if tok is not None and (tok.isdigit() or tok in ("all", "any")):
            raise NotImplementedError("'x of' quantifiers are not in the evaluated subset")
        name = take()
        assert name in named, f"condition names unknown detection {name!r}"
        return _detection_matches(record, named[name])

    def conj():
        v = atom()
        while peek() == "and":
            take("and")
            rhs = atom()
            v = v and rhs
        return v

    def expr():
        v = conj()
        while peek() == "or":
            take("or")
            rhs = conj()
            v = v or rhs
        return v

    result = expr()
    if pos != len(tokens):
        raise SyntaxError(f"condition {condition!r}: trailing tokens {tokens[pos:]}")
    return result


def rule_fires(rule, record):
    detection = dict(rule["detection"])
    condition = detection.pop("condition")
    conditions = condition if isinstance(condition, list) else [condition]
    return any(_evaluate(c, detection, record) for c in conditions)


def event_id(record):
    if "eventID" in record:
        return record["eventID"]
    detail = record.get("detail")
    if isinstance(detail, dict):
        return detail.get("eventID")
    return None


def test_evaluator_self_check():
    rec = {"a": {"b": 3, "t": True, "s": "Long_Term"}, "eventName": "CreateUser"}
    named = {"x": {"a.b|gte": 3}, "y": {"a.t": True}, "z": {"a.s": "long_term", "eventName": ["A", "CreateUser"]},
             "n": {"a.missing|exists": True}, "m": [{"a.b": 4}, {"a.t": False}]}
    assert _evaluate("x and y and z", named, rec)
    assert not _evaluate("n", named, rec)
    assert _evaluate("x and not n", named, rec)
    assert not _evaluate("m", named, rec)
    assert _evaluate("(m or z) and not (n or m)", named, rec)
    assert not _evaluate("x and y and not z", named, rec)
    assert not _field_matches(rec, "a.t|gte", 0)          # booleans are not numbers
    assert not _field_matches({"a": {"b": "3"}}, "a.b", 3)  # "3" is not 3
    with pytest.raises(NotImplementedError):
        _field_matches(rec, "a.s|contains", "x")
    with pytest.raises(NotImplementedError):
        _evaluate("1 of x*", named, rec)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_fires_on_exactly_the_right_records(path, annotated):
    rule = yaml.safe_load(path.read_text())
    exp = EXPECT[path.name]
    fired_ids = set()
    for dataset, records in annotated.items():
        fired = [i for i, r in enumerate(records) if rule_fires(rule, r)]
        wanted = [i for i, r in enumerate(records) if exp["predicate"](r)]
        assert fired == wanted, (
            f"{path.name} on {dataset}: fired on lines {[i + 1 for i in fired]}, "
            f"expected lines {[i + 1 for i in wanted]}")
        if dataset in exp.get("min_hits", {}):
            assert len(fired) >= exp["min_hits"][dataset], f"{path.name}: {len(fired)} hits in {dataset}"
        if dataset in ("scenarios", "siem_extra"):
            fired_ids |= {event_id(records[i]) for i in fired}
    assert fired_ids == exp["ids"], f"{path.name}: fired on {sorted(fired_ids)}, expected {sorted(exp['ids'])}"
