// After `npm run build`: the production bundle must not contain test-only code, and we report its size.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const dir = process.argv[2] ?? 'dist';
const files = [];
const walk = (d) => {
  for (const name of readdirSync(d)) {
    const p = join(d, name);
    if (statSync(p).isDirectory()) walk(p);
    else files.push(p);
  }
};
walk(dir);

const FORBIDDEN = ['ScriptedMLCEngine', 'scripted-mlc-engine'];
let bad = false;
for (const f of files.filter((f) => /\.(js|html)$/.test(f))) {
  const text = readFileSync(f, 'utf8');
  for (const word of FORBIDDEN) {
    if (text.includes(word)) {
      console.error(`check-bundle: ${f} contains test-only code (${word})`);
      bad = true;
    }
  }
}

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const rows = files
  .filter((f) => /\.(js|css|html)$/.test(f))
  .map((f) => {
    const buf = readFileSync(f);
    return { f, raw: buf.length, gz: gzipSync(buf).length };
  })
  .sort((a, b) => b.raw - a.raw);
// WebLLM's code lives only in the worker chunk; the page's own weight is everything else.
const isWorker = (f) => /worker/i.test(f);
const page = rows.filter((r) => !isWorker(r.f));
const sum = (rs, k) => rs.reduce((s, r) => s + r[k], 0);
for (const r of rows) console.log(`${r.f.padEnd(60)} ${kb(r.raw).padStart(12)} ${kb(r.gz).padStart(12)} gzip`);
console.log(`page without the worker chunk: ${kb(sum(page, 'raw'))} (${kb(sum(page, 'gz'))} gzip)`);
if (bad) process.exit(1);
