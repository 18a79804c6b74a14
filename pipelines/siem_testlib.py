"""Helpers shared by the SIEM tests under pipelines/ (imported by conftest.py and the tests)."""
import json
import os
import re
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
    "siem_v11": (SIEM_FIXTURES, "siem-v11.jsonl", SIEM_FIXTURES / "siem-v11.expected.jsonl"),
}

# Datasets whose golden output is hand-written rather than the CLI's (none:
# siem-v11's hand-written annotations, derived from SPEC v1.1 before the
# engine implemented it, matched the engine's output byte for byte).
HANDWRITTEN: set = set()

# Annotation members SPEC v1.1 added (3.1 "Extra fields (v1.1)").
V11_FIELDS = ("offhost_other_identity", "offhost_ancestor")

# Every member the annotation can carry (SPEC Appendix A order, then the two
# documented extras), with the JSON type of its value ("true" = true or absent). Nested objects list
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
    "offhost_other_identity": "str",
    "offhost_ancestor": "true",
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
    "used_after_expiration": "true",
    "self_assume": "true",
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


# ---------------------------------------------------------------------------
# A tiny evaluator of the Sigma subset the rules use (field equality, value
# lists, `|exists`, `|gte` and friends, and/or/not), shared by the Sigma and
# Splunk tests.
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


def sigma_field_matches(record, key, expected):
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
        return all(sigma_field_matches(record, k, v) for k, v in item.items())
    if isinstance(item, list) and all(isinstance(x, dict) for x in item):
        return any(_detection_matches(record, x) for x in item)
    raise NotImplementedError(f"detection item {item!r} (keyword searches are not in the evaluated subset)")


def _tokenize(condition):
    tokens = re.findall(r"\(|\)|[A-Za-z0-9_*]+", condition)
    if "".join(tokens) != re.sub(r"\s+", "", condition):
        raise SyntaxError(f"condition {condition!r} has characters outside the evaluated subset")
    return tokens


def sigma_condition(condition, named, record):
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
    return any(sigma_condition(c, detection, record) for c in conditions)


# ---------------------------------------------------------------------------
# A tiny evaluator of the SPL subset the saved searches and pySigma's Splunk
# backend produce, run on real annotated records (no Splunk here). Fields are
# what KV_MODE = json extracts: dotted names for nested objects, JSON true /
# false as the strings "true" / "false", numbers as their text; JSON null and
# arrays are not extracted here (no search filters on them). Values compare
# case-insensitively, `*` is a wildcard, numbers compare numerically.
# ---------------------------------------------------------------------------

def splunk_fields(record, evals=None):
    """{field: [values]} for one record, plus EVAL- fields of props.conf ({name: expression})."""
    out = {}

    def walk(prefix, obj):
        for k, v in obj.items():
            name = prefix + k
            if isinstance(v, dict):
                walk(name + ".", v)
            elif isinstance(v, bool):
                out[name] = ["true" if v else "false"]
            elif isinstance(v, (int, float, str)):
                out[name] = [str(v)]

    walk("", record)
    for name, expr in (evals or {}).items():
        m = re.fullmatch(r"\s*coalesce\((.*)\)\s*", expr)
        if not m:
            raise NotImplementedError(f"EVAL-{name} = {expr}")
        for arg in (a.strip() for a in m.group(1).split(",")):
            ref = arg.strip("'")
            if ref in out:
                out[name] = out[ref]
                break
    return out


_SPL_TOKEN = re.compile(r"""
    \s*(?:
      (?P<cmp>[A-Za-z_][\w.{}]*)\s*(?P<op>>=|<=|!=|=|>|<)\s*(?P<val>"(?:[^"\\]|\\.)*"|[^\s()]+)
    | (?P<paren>[()])
    | (?P<comma>,)
    | (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<word>[^\s()=<>!",]+)
    )""", re.X)


def _spl_tokens(text):
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = _SPL_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise NotImplementedError(f"SPL outside the evaluated subset at {text[pos:pos + 40]!r}")
        pos = m.end()
        if m.group("cmp"):
            out.append(("cmp", m.group("cmp"), m.group("op"), _unquote(m.group("val"))))
        elif m.group("paren"):
            out.append((m.group("paren"),))
        elif m.group("comma"):
            out.append((",",))
        elif m.group("str"):
            out.append(("str", _unquote(m.group("str"))))
        else:
            out.append(("word", m.group("word")))
    return out


def _unquote(v):
    if v.startswith('"') and v.endswith('"') and len(v) >= 2:
        return re.sub(r"\\(.)", r"\1", v[1:-1])
    return v


def _spl_value_matches(actual, op, want):
    try:
        a, w = float(actual), float(want)
        numeric = True
    except ValueError:
        numeric = False
    if op in (">=", "<=", ">", "<"):
        if not numeric:
            return False
        return {">=": a >= w, "<=": a <= w, ">": a > w, "<": a < w}[op]
    if numeric and "*" not in want:
        eq = a == w
    else:
        rx = "".join(".*" if c == "*" else re.escape(c) for c in want)
        eq = re.fullmatch(rx, actual, re.I | re.S) is not None
    return eq if op == "=" else not eq


def _spl_search_matches(tokens, fields):
    pos = 0

    def peek(k=0):
        return tokens[pos + k] if pos + k < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def term():
        tok = take()
        if tok == ("(",):
            v = disj()
            assert take() == (")",), "unbalanced parentheses"
            return v
        if tok == ("word", "NOT"):
            return not term()
        if tok[0] == "cmp":
            _, field, op, want = tok
            values = fields.get(field, [])
            if op == "!=":
                return bool(values) and all(_spl_value_matches(v, "!=", want) for v in values)
            return any(_spl_value_matches(v, op, want) for v in values)
        if tok[0] == "word" and peek() == ("word", "IN") and peek(1) == ("(",):
            take(), take()
            wanted = []
            while peek() != (")",):
                item = take()
                if item == (",",):
                    continue
                assert item[0] in ("str", "word"), item
                wanted.append(item[1])
            take()
            return any(_spl_value_matches(v, "=", w) for v in fields.get(tok[1], []) for w in wanted)
        raise NotImplementedError(f"SPL term {tok} (free-text search is not in the evaluated subset)")

    def conj():
        v = term()
        while peek() is not None and peek() not in ((")",), ("word", "OR")):
            if peek() == ("word", "AND"):
                take()
            rhs = term()
            v = v and rhs
        return v

    def disj():
        v = conj()
        while peek() == ("word", "OR"):
            take()
            rhs = conj()
            v = v or rhs
        return v

    result = disj()
    assert pos == len(tokens), f"trailing SPL tokens {tokens[pos:]}"
    return result


def _split_pipes(search):
    parts, cur, quoted = [], "", False
    for c in search:
        if c == '"':
            quoted = not quoted
        if c == "|" and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    return [p.strip() for p in parts]


def spl_selects(search, record, macros=None, evals=None, sourcetype=None):
    """Whether the filtering part of an SPL search keeps this event: the base
    search and any `| search` commands before the first reporting or eval
    command (`table`, `stats`, `eval`, ...), which do not drop events here."""
    def expand(text):
        for _ in range(5):
            text = re.sub(r"`([^`]+)`", lambda m: f"({macros[m.group(1)]})", text)
        return text

    fields = splunk_fields(record, evals)
    if sourcetype:
        fields["sourcetype"] = [sourcetype]
    segments = _split_pipes(expand(search))
    ok = _spl_search_matches(_spl_tokens(segments[0]), fields)
    filtering = True
    for seg in segments[1:]:
        cmd, _, rest = seg.partition(" ")
        if cmd == "search":
            if not filtering:
                raise NotImplementedError(f"| search after a non-filtering command: {search}")
            ok = ok and _spl_search_matches(_spl_tokens(rest), fields)
        elif cmd in ("where", "dedup", "head", "tail", "regex"):
            raise NotImplementedError(f"| {cmd} is not in the evaluated subset")
        else:
            filtering = False
    return ok
