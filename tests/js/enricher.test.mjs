// The credlineage npm package in Node: byte parity with the native Enricher, snapshots, stats, hostile input, bad config.
//
// Run by `cargo test --test js` (tests/js.rs), which builds the package and
// writes the native outputs. By hand:
//   CREDLINEAGE_JS_PKG=dist/js CREDLINEAGE_JS_DATA=<dir written by tests/js.rs> node --test tests/js/
// CREDLINEAGE_JS_DATA holds <name>.in.jsonl, <name>.native.jsonl and
// <name>.native.snapshot for scenarios, stratus and trail10k, plus
// trail10k.half.snapshot and node_modules/credlineage (the packed package).

import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const PKG = resolve(process.env.CREDLINEAGE_JS_PKG ?? join(here, "../../dist/js"));
const DATA = process.env.CREDLINEAGE_JS_DATA;
if (!DATA) {
  throw new Error("CREDLINEAGE_JS_DATA is not set: run these through `cargo test --test js`");
}

const require = createRequire(import.meta.url);
const { Enricher } = require(join(PKG, "pkg/node/credlineage.js"));

/** Split a Buffer into its non-empty lines (bytes, not strings). */
function lines(buf) {
  const out = [];
  let start = 0;
  for (let i = 0; i <= buf.length; i++) {
    if (i === buf.length || buf[i] === 0x0a) {
      if (i > start) out.push(buf.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

const stream = (name) => ({
  input: lines(readFileSync(join(DATA, `${name}.in.jsonl`))),
  native: lines(readFileSync(join(DATA, `${name}.native.jsonl`))),
  snapshot: readFileSync(join(DATA, `${name}.native.snapshot`)),
});

function assertSameBytes(actual, expected, what) {
  if (Buffer.compare(Buffer.from(actual), Buffer.from(expected)) !== 0) {
    assert.fail(`${what} differs\n  js: ${Buffer.from(actual)}\n  native: ${Buffer.from(expected)}`);
  }
}

/** Run `E` over a stream and compare every output with the native bytes. */
function parity(E, name) {
  const s = stream(name);
  assert.ok(s.input.length > 0);
  assert.equal(s.input.length, s.native.length);
  const e = new E();
  s.input.forEach((rec, i) => assertSameBytes(e.process(rec), s.native[i], `${name} record ${i}`));
  assertSameBytes(e.snapshot(), s.snapshot, `${name} snapshot`);
  const stats = JSON.parse(e.stats());
  assert.equal(stats.records, s.input.length);
  return e;
}

for (const name of ["scenarios", "stratus", "trail10k"]) {
  test(`process: byte-identical to native over ${name}`, () => {
    const e = parity(Enricher, name);
    if (name === "trail10k") writeFileSync(join(DATA, "trail10k.js.snapshot"), e.snapshot());
    e.free();
  });
}

test("processString: the same text as native", () => {
  const s = stream("scenarios");
  const e = new Enricher();
  s.input.forEach((rec, i) => {
    const out = e.processString(rec.toString("utf8"));
    assert.equal(typeof out, "string");
    assert.equal(out, s.native[i].toString("utf8"), `record ${i}`);
  });
  e.free();
});

test("processAt / processStringAt take the host time for records without eventTime", () => {
  const rec =
    '{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","userIdentity":{"type":"IAMUser","accountId":"111122223333","arn":"arn:aws:iam::111122223333:user/alice","accessKeyId":"AKIAIOSFODNN7EXAMPLE"}}';
  const e = new Enricher();
  const a = JSON.parse(e.processStringAt(rec, 1722500000));
  assert.equal(a.credlineage.lineage_root, "AKIAIOSFODNN7EXAMPLE");
  const b = e.processAt(new TextEncoder().encode(rec), 1722500000.9);
  assert.equal(JSON.parse(Buffer.from(b)).credlineage.session_fingerprint, a.credlineage.session_fingerprint);
  for (const t of [NaN, Infinity, -Infinity, -1, 0, 1e300, -1e300, Number.MAX_SAFE_INTEGER]) {
    assert.doesNotThrow(() => e.processAt(new TextEncoder().encode(rec), t), `t=${t}`);
    assert.doesNotThrow(() => e.processStringAt(rec, t), `t=${t}`);
  }
  e.free();
});

test("snapshot: native → JS restore continues the stream exactly", () => {
  const s = stream("trail10k");
  const e = new Enricher();
  e.restore(readFileSync(join(DATA, "trail10k.half.snapshot")));
  for (let i = 5000; i < s.input.length; i++) {
    assertSameBytes(e.process(s.input[i]), s.native[i], `record ${i}`);
  }
  assertSameBytes(e.snapshot(), s.snapshot, "final snapshot");
  e.free();
});

test("snapshot: JS → JS round trip", () => {
  const s = stream("trail10k");
  const a = new Enricher();
  for (let i = 0; i < 5000; i++) a.process(s.input[i]);
  const snap = a.snapshot();
  assert.ok(snap instanceof Uint8Array && snap.length > 0);
  const b = new Enricher("{}");
  b.restore(snap);
  for (let i = 5000; i < s.input.length; i++) {
    assertSameBytes(b.process(s.input[i]), s.native[i], `record ${i}`);
  }
  a.free();
  b.free();
});

test("restore: a corrupt or foreign snapshot throws and leaves the state alone", () => {
  const s = stream("scenarios");
  const e = new Enricher();
  s.input.forEach((r) => e.process(r));
  const good = e.snapshot();
  const flipped = Uint8Array.from(good);
  flipped[flipped.length >> 1] ^= 0x40;
  for (const bad of [new Uint8Array(0), new TextEncoder().encode("not a snapshot"), good.subarray(0, good.length >> 1), flipped]) {
    assert.throws(() => e.restore(bad), (err) => err instanceof Error && /snapshot refused/.test(err.message));
  }
  assertSameBytes(e.snapshot(), good, "state after refused restores");
  const other = new Enricher('{"session_ttl_secs":60}');
  assert.throws(() => other.restore(good), /snapshot refused/);
  e.free();
  other.free();
});

test("stats: a JSON object of counters", () => {
  const e = new Enricher();
  const s = stream("stratus");
  s.input.forEach((r) => e.process(r));
  e.process(new TextEncoder().encode("not json"));
  const st = JSON.parse(e.stats());
  assert.deepEqual(Object.keys(st), [
    "records", "annotated", "passed_through", "malformed", "collisions", "offhost", "issuances",
    "chained_issuances", "evictions", "expired_purged", "tracked_sets", "state_bytes",
    "bad_time",
  ]);
  assert.equal(st.records, s.input.length + 1);
  assert.equal(st.malformed, 1);
  for (const v of Object.values(st)) assert.equal(typeof v, "number");
  e.free();
});

test("hostile records never throw and come back one for one", () => {
  const e = new Enricher();
  const enc = (s) => new TextEncoder().encode(s);
  const big = Buffer.concat([
    enc('{"eventName":"GetObject","eventSource":"s3.amazonaws.com","eventTime":"2024-08-01T12:00:00Z","userIdentity":{"type":"IAMUser","accountId":"111122223333","arn":"arn:aws:iam::111122223333:user/alice","accessKeyId":"AKIAIOSFODNN7EXAMPLE"},"pad":"'),
    Buffer.alloc(10 * 1024 * 1024, 0x78),
    enc('"}'),
  ]);
  const cases = [
    new Uint8Array(0),
    enc("not json"),
    enc("{"),
    enc("[]"),
    enc("null"),
    Uint8Array.from([0xff, 0xfe, 0x00, 0x80]),
    Buffer.concat([enc('{"eventName":"'), Uint8Array.from([0xff, 0xfe]), enc('","eventSource":"s3.amazonaws.com"}')]),
    enc('{"a":'.repeat(100000)),
    enc("[".repeat(1000000) + "]".repeat(1000000)),
    Buffer.alloc(10 * 1024 * 1024, 0x78),
    big,
  ];
  cases.forEach((c, i) => {
    let out;
    assert.doesNotThrow(() => {
      out = e.process(c);
    }, `case ${i}`);
    assert.ok(out instanceof Uint8Array, `case ${i}`);
  });
  // Unreadable records come back unchanged.
  assertSameBytes(e.process(cases[5]), cases[5], "invalid UTF-8");
  for (const s of ["", "not json", "\uD800 lone surrogate", '{"a":'.repeat(50000)]) {
    assert.doesNotThrow(() => e.processString(s));
  }
  const st = JSON.parse(e.stats());
  assert.equal(st.records, cases.length + 1 + 4);
  // The same enricher still works afterwards.
  const ok = stream("scenarios").input[0];
  assert.ok(JSON.parse(Buffer.from(e.process(ok))).credlineage);
  e.free();
});

test("bad config throws a clear Error; omitted/empty/{} mean the defaults", () => {
  for (const [bad, msg] of [
    ['{"nope":1}', /invalid configuration: unknown field `nope`/],
    ["not json", /invalid configuration/],
    ['{"max_entries":0}', /max_entries must be at least 1/],
    ['{"session_ttl_secs":-1}', /session_ttl_secs/],
  ]) {
    assert.throws(() => new Enricher(bad), (err) => err instanceof Error && msg.test(err.message), bad);
  }
  for (const ok of [undefined, null, "", "  ", "{}"]) {
    const e = new Enricher(ok);
    e.free();
  }
  const e = new Enricher('{"namespace":"cl"}');
  const rec = stream("scenarios").input[0];
  assert.ok(JSON.parse(Buffer.from(e.process(rec))).cl);
  e.free();
});

test("the packed npm package resolves through its exports map (require and import)", async () => {
  const base = join(DATA, "probe.cjs");
  const req = createRequire(base);
  const main = req.resolve("credlineage");
  assert.match(main, /node_modules[\\/]credlineage[\\/]pkg[\\/]node[\\/]credlineage\.js$/);
  const viaRequire = req("credlineage");
  assert.equal(typeof viaRequire.Enricher, "function");
  writeFileSync(join(DATA, "probe.mjs"), 'export { Enricher } from "credlineage";\n');
  const viaImport = await import(pathToFileURL(join(DATA, "probe.mjs")));
  const e = new viaImport.Enricher();
  const s = stream("scenarios");
  assertSameBytes(e.process(s.input[0]), s.native[0], "record 0 via import");
  e.free();
});

test("the --target web build works too (initialised from bytes)", async () => {
  const web = await import(pathToFileURL(join(DATA, "node_modules/credlineage/pkg/web/credlineage.js")));
  await web.default({ module_or_path: readFileSync(join(DATA, "node_modules/credlineage/pkg/web/credlineage_bg.wasm")) });
  parity(web.Enricher, "stratus").free();
});
