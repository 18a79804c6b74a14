"""Splunk files, checked without Splunk.

- Every .conf file parses as INI (Splunk's dialect: '=' only, case-sensitive keys,
  no interpolation, no continuation lines).
- props.conf: LINE_BREAKER splits the CLI's real NDJSON output into exactly one
  event per record; TRUNCATE keeps the longest record whole; TIME_PREFIX +
  TIME_FORMAT + MAX_TIMESTAMP_LOOKAHEAD find each record's own eventTime (plain,
  inside an EventBridge envelope, or inside a JSON string under "message").
- limits.conf: the [spath] extraction_cutoff covers the end of the longest
  annotation in the fixtures (Splunk's default 5000 does not).
- savedsearches.conf: every search names only fields that exist (credlineage.*
  from the annotation schema, the EVAL- fields of props.conf, CloudTrail
  fields), filters booleans/enums/numbers with values of the right kind, uses
  only the macros of macros.conf, and mirrors an existing Sigma rule; run on
  the real records (siem_testlib.spl_selects, the macro expanded, props.conf's
  EVAL- fields computed), each search keeps exactly the records its Sigma
  rule fires on.
"""
import configparser
import datetime
import json
import re
from pathlib import Path

import yaml

from siem_testlib import rule_fires, schema_leaves, spl_selects

HERE = Path(__file__).resolve().parent
SIGMA_RULES = HERE.parent / "sigma" / "rules"
SOURCETYPE = "aws:cloudtrail:credlineage"
SPLUNK_DEFAULT_EXTRACTION_CUTOFF = 5000


def load_conf(name):
    path = HERE / name
    text = path.read_text()
    for i, line in enumerate(text.splitlines(), 1):
        assert not line.startswith((" ", "\t")) or not line.strip(), f"{name}:{i}: indented (continuation) line"
        assert not line.rstrip().endswith("\\") or line.lstrip().startswith("#"), f"{name}:{i}: continuation"
    cp = configparser.ConfigParser(delimiters=("=",), comment_prefixes=("#",), inline_comment_prefixes=None,
                                   interpolation=None, strict=True, empty_lines_in_values=False)
    cp.optionxform = str
    cp.read_string(text, source=name)
    return cp


PROPS = load_conf("props.conf")
SAVED = load_conf("savedsearches.conf")
MACROS = load_conf("macros.conf")
LIMITS = load_conf("limits.conf")
ST = PROPS[SOURCETYPE]


def test_confs_parse_as_ini():
    assert SOURCETYPE in PROPS
    assert len(SAVED.sections()) >= 5
    assert "credlineage_cloudtrail" in MACROS
    assert "spath" in LIMITS


def test_props_json_extraction_and_line_breaking():
    assert ST.get("KV_MODE") == "json" or ST.get("INDEXED_EXTRACTIONS") == "json"
    assert not (ST.get("KV_MODE") == "json" and ST.get("INDEXED_EXTRACTIONS")), "would extract every field twice"
    assert ST["SHOULD_LINEMERGE"] == "false"


def _splunk_events(raw, line_breaker):
    """Splunk's LINE_BREAKER: split where the regex matches; the first capture group is discarded."""
    rx = re.compile(line_breaker)
    events, start = [], 0
    for m in rx.finditer(raw):
        events.append(raw[start:m.start(1)])
        start = m.end(1)
    events.append(raw[start:])
    return [e for e in events if e.strip()]


def test_line_breaker_and_truncate_on_real_output(cli_output, annotated):
    truncate = int(ST["TRUNCATE"])
    for name, (text, _) in cli_output.items():
        events = _splunk_events(text, ST["LINE_BREAKER"])
        assert len(events) == len(annotated[name]), name
        for e in events:
            assert json.loads(e)["credlineage"]
            assert truncate == 0 or len(e.encode()) <= truncate


def _strptime_regex(fmt):
    table = {"%Y": r"\d{4}", "%m": r"\d{2}", "%d": r"\d{2}", "%H": r"\d{2}", "%M": r"\d{2}", "%S": r"\d{2}",
             "%Z": r"(?:Z|UTC|GMT)", "%z": r"[+-]\d{4}"}
    out, i = "", 0
    while i < len(fmt):
        tok = fmt[i:i + 2]
        if tok in table:
            out += table[tok]
            i += 2
        else:
            assert fmt[i] != "%", f"unsupported strptime directive {tok}"
            out += re.escape(fmt[i])
            i += 1
    return re.compile(out)


def _own_event_time(record):
    for holder in (record, record.get("detail")):
        if isinstance(holder, dict) and isinstance(holder.get("eventTime"), str):
            return holder["eventTime"]
    if isinstance(record.get("message"), str):
        try:
            inner = json.loads(record["message"])
        except ValueError:
            return None
        return inner.get("eventTime") if isinstance(inner, dict) else None
    return None


def test_timestamp_recognition_on_real_output(cli_output):
    prefix = re.compile(ST["TIME_PREFIX"])
    fmt = _strptime_regex(ST["TIME_FORMAT"])
    lookahead = int(ST["MAX_TIMESTAMP_LOOKAHEAD"])
    assert ST["TZ"] == "UTC"
    checked = 0
    for name, (text, _) in cli_output.items():
        for line in text.splitlines():
            record = json.loads(line)
            want = _own_event_time(record)
            m = prefix.search(line)
            if want is None:
                assert m is None, f"{name}: TIME_PREFIX matched a record without eventTime"
                continue
            assert m, f"{name}: TIME_PREFIX does not match {line[:120]}"
            window = line[m.end():m.end() + lookahead]
            t = fmt.match(window)
            assert t, f"{name}: TIME_FORMAT does not match {window!r}"
            assert t.group(0).rstrip("Z") == want.rstrip("Z"), f"{name}: took {t.group(0)}, record says {want}"
            datetime.datetime.strptime(want, "%Y-%m-%dT%H:%M:%SZ")
            checked += 1
    assert checked > 300


def test_limits_extraction_cutoff_covers_annotation(cli_output):
    cutoff = int(LIMITS["spath"]["extraction_cutoff"])
    ends = []
    for text, _ in cli_output.values():
        for line in text.splitlines():
            ends.append(len(line.encode()))  # the annotation is the last key: it ends at the end of the line
    assert cutoff >= max(ends)
    stratus_over = sum(1 for line in cli_output["stratus"][0].splitlines()
                       if line.encode().find(b'"credlineage":') > SPLUNK_DEFAULT_EXTRACTION_CUTOFF)
    assert stratus_over == 1, "limits.conf's comment quotes this count"


# --- saved searches ----------------------------------------------------------

ANNOTATION = schema_leaves()
EVAL_FIELDS = {k[len("EVAL-"):] for k in ST if k.startswith("EVAL-")}
CLOUDTRAIL = {"eventName", "eventSource", "sourceIPAddress", "detail.eventName", "detail.eventSource",
              "detail.sourceIPAddress"}
SPL_WORDS = {"table", "stats", "eval", "search", "by", "as", "min", "max", "dc", "values", "count", "coalesce",
             "IN", "key_id", "first_seen", "last_seen", "first_use", "last_use", "max_live_sets", "fingerprints",
             "roots", "events", "sources", "max_depth", "sessions", "max_issued_depth", "_time", "true", "false",
             "long_term", "unresolved"}


def test_eval_fields_reference_cloudtrail_fields():
    for name in EVAL_FIELDS:
        expr = ST["EVAL-" + name]
        refs = set(re.findall(r"'([^']+)'", expr)) | set(re.findall(r"\b([A-Za-z_][\w.]*)\b(?!\()", expr))
        refs -= {"coalesce"}
        assert refs <= CLOUDTRAIL, (name, refs - CLOUDTRAIL)


def test_saved_searches_reference_only_existing_fields():
    for name in SAVED.sections():
        stanza = SAVED[name]
        for key in ("search", "description", "dispatch.earliest_time", "cron_schedule", "enableSched"):
            assert key in stanza, f"{name}: no {key}"
        search = stanza["search"]
        macros = re.findall(r"`([^`]+)`", search)
        assert macros and all(m in MACROS for m in macros), f"{name}: unknown macro in {macros}"
        body = re.sub(r"`[^`]+`", "", search)
        body = re.sub(r'"[^"]*"', '""', body)  # string literals (event names)
        used = set(re.findall(r"credlineage(?:\.[a-z_0-9]+)+", body))
        assert used and used <= set(ANNOTATION), f"{name}: unknown fields {used - set(ANNOTATION)}"
        other = set(re.findall(r"(?<![\w.'])([A-Za-z_][\w]*(?:\.[\w]+)*)", re.sub(r"credlineage(?:\.[a-z_0-9]+)+", "", body)))
        unknown = other - EVAL_FIELDS - CLOUDTRAIL - SPL_WORDS
        assert not unknown, f"{name}: names neither a field nor an SPL word: {unknown}"


def test_saved_search_filters_have_values_of_the_right_kind():
    enums = {"credlineage.credential_type": {"long_term", "temporary", "none", "unknown"},
             "credlineage.lineage_root_type": {"access_key", "root_user", "iam_user_session", "ec2_instance",
                                               "aws_service", "saml", "web_identity", "unresolved"}}
    for name in SAVED.sections():
        for field, op, value in re.findall(r"(credlineage(?:\.[a-z_0-9]+)+)\s*(>=|<=|>|<|=)\s*([\w*]+)",
                                           SAVED[name]["search"]):
            kind = ANNOTATION[field]
            if value == "*":
                assert op == "=", name
            elif kind in ("bool", "true"):
                assert op == "=" and value == "true", f"{name}: {field}{op}{value}"
            elif kind == "int":
                assert value.isdigit(), f"{name}: {field}{op}{value}"
            elif kind == "enum":
                assert value in enums[field], f"{name}: {field}={value}"


def test_saved_searches_mirror_sigma_rules():
    rules = {p.name: yaml.safe_load(p.read_text()) for p in SIGMA_RULES.glob("*.yml")}
    mirrored = set()
    for name in SAVED.sections():
        m = re.search(r"Sigma: (\S+\.yml)", SAVED[name]["description"])
        assert m and m.group(1) in rules, f"{name}: no existing Sigma rule named in its description"
        mirrored.add(m.group(1))
    assert mirrored == set(rules), f"Sigma rules without a saved search: {set(rules) - mirrored}"
    # The sensitive-call list is the same in both places.
    sigma_list = rules["credlineage_unresolved_sensitive_call.yml"]["detection"]["sensitive"]["eventName"]
    search = SAVED["credlineage - Sensitive call by a credential of unknown origin"]["search"]
    spl_list = re.findall(r'"(\w+)"', search[search.index("IN ("):])
    assert spl_list == sigma_list


def _select(name, record):
    evals = {k[len("EVAL-"):]: v for k, v in ST.items() if k.startswith("EVAL-")}
    macros = {m: MACROS[m]["definition"] for m in MACROS.sections()}
    return spl_selects(SAVED[name]["search"], record, macros=macros, evals=evals, sourcetype=SOURCETYPE)


def test_saved_searches_select_what_their_sigma_rule_fires_on(annotated):
    rules = {p.name: yaml.safe_load(p.read_text()) for p in SIGMA_RULES.glob("*.yml")}
    for name in SAVED.sections():
        rule = rules[re.search(r"Sigma: (\S+\.yml)", SAVED[name]["description"]).group(1)]
        hits = 0
        for dataset, records in annotated.items():
            for i, r in enumerate(records):
                want = rule_fires(rule, r)
                assert _select(name, r) == want, f"[{name}] on {dataset} line {i + 1}: search != Sigma rule ({want})"
                hits += want
        assert hits > 0, name
    # the macro's sourcetype filter is evaluated too: another sourcetype selects nothing
    r = annotated["siem_v11"][5]
    assert not spl_selects(SAVED["credlineage - Credential descended from stolen EC2 instance credentials is used"]["search"],
                           r, macros={m: MACROS[m]["definition"] for m in MACROS.sections()}, sourcetype="aws:cloudtrail")


def test_offhost_ancestor_search_on_the_pivot_chain(annotated):
    """SPEC v1.1: the saved search keeps the calls made with credentials obtained from
    stolen instance credentials, and not the off-host calls themselves or a clean
    session of the same role."""
    name = "credlineage - Credential descended from stolen EC2 instance credentials is used"
    picked = {r["eventID"] for r in annotated["siem_v11"] if _select(name, r)}
    assert picked == {"siem11-evt-0006", "siem11-evt-0007", "siem11-evt-0008"}
    for r in annotated["siem_v11"]:
        assert (r["eventID"] in picked) == (r["credlineage"].get("offhost_ancestor") is True)
