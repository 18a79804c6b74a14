// Times the credlineage npm package in Node over one NDJSON file, record by record, for benches/wasm.rs.
//   node benches/js_throughput.mjs <package dir> <input.jsonl> <rounds>
// Prints one JSON object: records, input bytes, output bytes (a check against
// native), the package's load time, and the best round of `process`
// (Uint8Array in and out) and of `processString` (string in and out), in ns.
// Every round uses a fresh Enricher over the whole stream; the records are
// split (views into one Buffer) and decoded to strings before any timing.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [pkg, input, roundsArg] = process.argv.slice(2);
const rounds = Number(roundsArg ?? 3);

let t = process.hrtime.bigint();
const { Enricher } = createRequire(import.meta.url)(join(pkg, "pkg/node/credlineage.js"));
const loadNs = Number(process.hrtime.bigint() - t);

const buf = readFileSync(input);
const bytes = [];
let start = 0;
for (let i = buf.indexOf(0x0a); ; i = buf.indexOf(0x0a, start)) {
  const end = i === -1 ? buf.length : i;
  if (end > start) bytes.push(buf.subarray(start, end));
  if (i === -1) break;
  start = i + 1;
}
const strings = bytes.map((b) => b.toString("utf8"));
const inBytes = bytes.reduce((n, b) => n + b.length, 0);

// V8 compiles wasm with a baseline tier first and optimises hot functions
// later: warm both entry points up before the timed rounds.
{
  const w = new Enricher();
  for (let i = 0; i < Math.min(bytes.length, 5000); i++) {
    w.process(bytes[i]);
    w.processString(strings[i]);
  }
  w.free();
}

let outBytes = 0;
let best = Infinity;
let bestString = Infinity;
for (let r = 0; r < rounds; r++) {
  let e = new Enricher();
  let n = 0;
  t = process.hrtime.bigint();
  for (const rec of bytes) n += e.process(rec).length;
  best = Math.min(best, Number(process.hrtime.bigint() - t));
  e.free();
  outBytes = n;

  e = new Enricher();
  t = process.hrtime.bigint();
  for (const rec of strings) e.processString(rec);
  bestString = Math.min(bestString, Number(process.hrtime.bigint() - t));
  e.free();
}

console.log(
  JSON.stringify({
    records: bytes.length,
    in_bytes: inBytes,
    out_bytes: outBytes,
    load_ns: loadNs,
    process_ns: best,
    process_string_ns: bestString,
  }),
);
