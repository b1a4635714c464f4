// `npm run bench`: the OpenAI-compatible engine's throughput against the loopback test server. It prints a markdown
// table and rewrites the measured section of BENCHMARKS.md. BENCH_SECONDS sets the window per concurrency (default 2.5).
import { spawnSync } from 'node:child_process';

const result = spawnSync('npx', ['vitest', 'run', '--config', 'test/bench/vitest.config.ts', ...process.argv.slice(2)], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
