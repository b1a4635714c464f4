/**
 * Throughput of OpenAICompatibleEngine against the loopback test server: C concurrent complete() loops on a server
 * that decodes r tokens/s per stream with at most K streams at once, so the ideal is min(C, K) × r tokens/s.
 * Run with `npm run bench`; it prints the table and rewrites the measured section of BENCHMARKS.md.
 */
import { setMaxListeners } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { expect, test } from 'vitest';
import { getTemplate } from '../../src/core/templates/registry';
import { withBos } from '../../src/core/templates/types';
import { OpenAICompatibleEngine } from '../../src/engine/openai-engine';
import { start } from '../support/openai-test-server';

const MS_PER_TOKEN = 5;
const RATE = 1000 / MS_PER_TOKEN;
const CAPACITY = 16;
const MAX_TOKENS = 64;
const CONCURRENCIES = [1, 4, 16, 64];
const WINDOW_S = Number(process.env.BENCH_SECONDS ?? 2.5);
const MODEL = 'test/llama-3-8b-instruct';
const llama3 = getTemplate('llama-3');

interface Row {
  c: number;
  ideal: number;
  achieved: number;
  completions: number;
  maxDecoding: number;
  ttftMs: number;
}

async function measure(c: number): Promise<Row> {
  const server = await start({ msPerToken: MS_PER_TOKEN, capacity: CAPACITY });
  try {
    const engine = new OpenAICompatibleEngine({ baseUrl: server.url, model: MODEL, maxRetries: 0 });
    const stop = new AbortController();
    // One run-level signal shared by C concurrent completions is the intended use; Node warns past 10 listeners.
    setMaxListeners(0, stop.signal);
    const t0 = performance.now();
    const end = t0 + WINDOW_S * 1000;
    let tokens = 0;
    let completions = 0;
    const ttfts: number[] = [];
    const loop = async (worker: number): Promise<void> => {
      for (let n = 0; !stop.signal.aborted; n++) {
        const instruction = `Benchmark question ${worker}-${n}: explain the water cycle.`;
        const prompt = withBos(llama3, llama3.render([{ role: 'user', content: instruction }], { addGenerationPrompt: true }), false);
        const result = await engine.complete(
          { prompt, temperature: 0, topP: 1, maxTokens: MAX_TOKENS, stop: [...llama3.responseStop] },
          {
            signal: stop.signal,
            // Tokens count only inside the window; one delta is one token on this server.
            onDelta: () => {
              if (performance.now() <= end) tokens++;
            },
          },
        );
        if (result.finishReason !== 'abort') {
          completions++;
          if (result.usage.timeToFirstTokenSeconds !== undefined) ttfts.push(result.usage.timeToFirstTokenSeconds * 1000);
        }
      }
    };
    const loops = Array.from({ length: c }, (_, i) => loop(i));
    await new Promise((r) => setTimeout(r, end - performance.now()));
    stop.abort();
    await Promise.all(loops);
    ttfts.sort((a, b) => a - b);
    expect(server.stats.violations).toEqual([]);
    return {
      c,
      ideal: Math.min(c, CAPACITY) * RATE,
      achieved: tokens / WINDOW_S,
      completions,
      maxDecoding: server.stats.maxDecoding,
      ttftMs: ttfts[Math.floor(ttfts.length / 2)] ?? NaN,
    };
  } finally {
    await server.close();
  }
}

function table(rows: Row[]): string {
  const lines = [
    '| C (concurrent requests) | ideal min(C, K)·r (tok/s) | achieved (tok/s) | achieved / ideal | completions | server max decoding | median time to first token (ms) |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.c} | ${r.ideal.toFixed(0)} | ${r.achieved.toFixed(0)} | ${(r.achieved / r.ideal * 100).toFixed(1)} % | ${r.completions} | ${r.maxDecoding} | ${r.ttftMs.toFixed(1)} |`,
    ),
  ];
  return lines.join('\n');
}

const START = '<!-- bench:throughput:start -->';
const END = '<!-- bench:throughput:end -->';

test('throughput of OpenAICompatibleEngine vs min(C, K) × r', async () => {
  const rows: Row[] = [];
  for (const c of CONCURRENCIES) rows.push(await measure(c));
  const md = table(rows);
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const section = [
    START,
    `Measured ${when} UTC, Node ${process.version}, ${availableParallelism()} CPUs (load average ${loadavg()[0]?.toFixed(1) ?? '?'} at the end),`,
    `r = ${RATE} tok/s per stream (${MS_PER_TOKEN} ms/token), K = ${CAPACITY}, max_tokens = ${MAX_TOKENS}, ${WINDOW_S} s window per row.`,
    '',
    md,
    END,
  ].join('\n');
  console.log(`\n${md}\n`);

  const file = new URL('../../BENCHMARKS.md', import.meta.url);
  const doc = readFileSync(file, 'utf8');
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  if (a === -1 || b === -1) throw new Error('BENCHMARKS.md has no throughput markers.');
  writeFileSync(file, doc.slice(0, a) + section + doc.slice(b + END.length));

  // A loose floor: catches a serialised or stalled engine without failing on a busy machine.
  for (const r of rows) expect(r.achieved / r.ideal).toBeGreaterThan(0.5);
  const k = rows.find((r) => r.c === 64);
  expect(k?.maxDecoding).toBe(CAPACITY);
});
