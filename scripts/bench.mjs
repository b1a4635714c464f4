// `npm run bench`: every test/bench/*.bench.ts — the OpenAI-compatible engine's throughput against the loopback test
// server, and the first-token ban's cost (ban on vs off). Each prints a markdown table and rewrites its section of
// BENCHMARKS.md. BENCH_SECONDS sets the throughput window per concurrency (default 2.5), BENCH_BAN_QUERIES the
// queries per side of the ban bench (default 300).
import { spawnSync } from 'node:child_process';

const result = spawnSync('npx', ['vitest', 'run', '--config', 'test/bench/vitest.config.ts', ...process.argv.slice(2)], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
