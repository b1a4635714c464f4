// `npm test`: make sure a system Chromium exists, run Vitest (unit in Node + browser mode in Chromium), build the e2e
// bundle and run Playwright against it; finish with one summary line "N passed, N failed".
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';

const run = (cmd, args, env = {}) =>
  spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } }).status ?? 1;

if (run('node', ['scripts/ensure-chromium.mjs']) !== 0) process.exit(1);
mkdirSync('.tmp', { recursive: true });
for (const f of ['.tmp/vitest.json', '.tmp/playwright.json']) rmSync(f, { force: true });

const vitest = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', '--outputFile.json=.tmp/vitest.json']);
const build = run('npx', ['vite', 'build', '--mode', 'e2e', '--logLevel', 'warn']);
const e2e =
  build === 0
    ? run('npx', ['playwright', 'test', '--reporter=list,json'], { PLAYWRIGHT_JSON_OUTPUT_FILE: '.tmp/playwright.json' })
    : 1;

let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync('.tmp/vitest.json')) {
  const v = JSON.parse(readFileSync('.tmp/vitest.json', 'utf8'));
  passed += v.numPassedTests;
  failed += v.numFailedTests;
  skipped += v.numPendingTests + (v.numTodoTests ?? 0);
}
if (existsSync('.tmp/playwright.json')) {
  const p = JSON.parse(readFileSync('.tmp/playwright.json', 'utf8'));
  passed += p.stats.expected + p.stats.flaky;
  failed += p.stats.unexpected;
  skipped += p.stats.skipped;
}
const ok = vitest === 0 && build === 0 && e2e === 0;
if (!ok) {
  const steps = { vitest, 'e2e build': build, playwright: e2e };
  console.log(`failed steps: ${Object.entries(steps).filter(([, c]) => c !== 0).map(([n]) => n).join(', ')}`);
}
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(ok ? 0 : 1);
