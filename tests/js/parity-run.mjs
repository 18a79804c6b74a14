// Runs one NDJSON stream through the credlineage npm package in Node, record by record, for tests/parity.rs.
//   node tests/js/parity-run.mjs <package dir> <input.jsonl> <output.jsonl>
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [pkg, input, output] = process.argv.slice(2);
const { Enricher } = createRequire(import.meta.url)(join(pkg, "pkg/node/credlineage.js"));
const e = new Enricher();
const buf = readFileSync(input);
const parts = [];
let start = 0;
for (let i = 0; i <= buf.length; i++) {
  if (i === buf.length || buf[i] === 0x0a) {
    if (i > start) {
      parts.push(Buffer.from(e.process(buf.subarray(start, i))));
      parts.push(Buffer.from("\n"));
    }
    start = i + 1;
  }
}
writeFileSync(output, Buffer.concat(parts));
