import { describe, expect, it } from 'vitest';
import type { Completion, CompletionCreateParamsStreaming, InitProgressReport } from '@mlc-ai/web-llm';
import {
  countScriptedTokens,
  ScriptedMLCEngine,
  scriptedOptionsFromModelId,
  type ScriptedEngineOptions,
} from '../../src/engine/scripted-mlc-engine';
import { parseProgress } from '../../src/engine/worker-api';

const USER = '<|start_header_id|>user<|end_header_id|>\n\n';
const ASSISTANT = '<|start_header_id|>assistant<|end_header_id|>\n\n';
const PRE_QUERY = `<|begin_of_text|>${USER}`;

let n = 0;
async function loaded(options: ScriptedEngineOptions = {}): Promise<ScriptedMLCEngine> {
  const engine = new ScriptedMLCEngine({ tokenDelayMs: 0, ...options });
  await engine.reload(`scripted:test-${++n}`);
  return engine;
}

function req(over: Partial<CompletionCreateParamsStreaming> = {}): CompletionCreateParamsStreaming {
  return { prompt: PRE_QUERY, temperature: 1, top_p: 1, max_tokens: 256, seed: 1, stream: true, stream_options: { include_usage: true }, ...over };
}

async function run(engine: ScriptedMLCEngine, request: CompletionCreateParamsStreaming) {
  const chunks: Completion[] = [];
  for await (const c of await engine.completions.create(request)) chunks.push(c);
  const text = chunks.map((c) => c.choices[0]?.text ?? '').join('');
  const finish = chunks.map((c) => c.choices[0]?.finish_reason).find((r) => r);
  const usage = chunks.find((c) => c.usage)?.usage;
  return { chunks, text, finish, usage };
}

describe('ScriptedMLCEngine', () => {
  it('counts special tokens as one token and adds BOS only when configured', () => {
    expect(countScriptedTokens(PRE_QUERY)).toBe(5);
    expect(countScriptedTokens(PRE_QUERY, true)).toBe(6);
    expect(countScriptedTokens('Hello, world!')).toBe(5);
  });

  it('writes the same instruction for the same seed and prompt, and varied ones across seeds', async () => {
    const engine = await loaded();
    const a = await run(engine, req({ seed: 11 }));
    const b = await run(engine, req({ seed: 11 }));
    expect(a.text).toBe(b.text);
    expect(a.finish).toBe('stop');
    const texts = new Set<string>();
    for (let seed = 0; seed < 40; seed++) texts.add((await run(engine, req({ seed }))).text);
    expect(texts.size).toBeGreaterThanOrEqual(15);
  });

  it('answers the instruction found in the prompt', async () => {
    const engine = await loaded();
    const prompt = `${PRE_QUERY}How do I fix a flat bicycle tire?<|eot_id|>${ASSISTANT}`;
    const r = await run(engine, req({ prompt, temperature: 0 }));
    expect(r.text).toContain('How do I fix a flat bicycle tire');
    expect(r.text.split(/[.!?](\s|$)/).filter((s) => s.trim().length > 3).length).toBeGreaterThanOrEqual(3);
    expect(r.finish).toBe('stop');
  });

  it('streams word by word and counts the end-of-turn token as a completion token', async () => {
    const engine = await loaded();
    const r = await run(engine, req());
    const deltas = r.chunks.filter((c) => c.choices[0]?.finish_reason === null);
    expect(deltas.length).toBeGreaterThan(5);
    // As in WebLLM, sampling the end-of-turn token still yields a (empty) delta chunk, and it is counted.
    expect(deltas.at(-1)?.choices[0]?.text).toBe('');
    expect(deltas.slice(0, -1).every((c) => (c.choices[0]?.text ?? '') !== '')).toBe(true);
    expect(r.usage?.completion_tokens).toBe(deltas.length);
    expect(r.usage?.prompt_tokens).toBe(5);
    expect(r.usage?.extra.decode_tokens_per_s).toBeGreaterThan(0);
    // Usage comes last, in a chunk without choices, as in WebLLM.
    expect(r.chunks.at(-1)?.choices).toEqual([]);
  });

  it('honours max_tokens with finish reason length', async () => {
    const engine = await loaded();
    const r = await run(engine, req({ max_tokens: 4 }));
    expect(r.finish).toBe('length');
    expect(r.usage?.completion_tokens).toBe(4);
  });

  it('makes every k-th instruction empty or too long, as configured', async () => {
    const engine = await loaded({ emptyInstructionEvery: 2, lengthInstructionEvery: 3 });
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await run(engine, req({ seed: i, max_tokens: 40 })));
    expect(results.map((r) => r.finish)).toEqual(['stop', 'stop', 'length', 'stop', 'stop', 'stop']);
    expect(results[1]?.text).toBe('');
    expect(results[3]?.text).toBe('');
    expect(results[5]?.text).toBe('');
    expect(results[2]?.usage?.completion_tokens).toBe(40);
  });

  it('loses an interrupt sent before the request starts, like WebLLM', async () => {
    const engine = await loaded();
    await engine.interruptGenerate();
    const r = await run(engine, req());
    expect(r.finish).toBe('stop');
  });

  it('throws ModelNotLoadedError before reload and SeedTypeError for a fractional seed', async () => {
    const engine = new ScriptedMLCEngine();
    await expect(engine.completions.create(req())).rejects.toMatchObject({ name: 'ModelNotLoadedError' });
    await engine.reload('scripted:x');
    await expect(engine.completions.create(req({ seed: 0.5 }))).rejects.toMatchObject({ name: 'SeedTypeError' });
  });

  it('reports load progress in WebLLM formats, with the cache phase only on later loads', async () => {
    const engine = new ScriptedMLCEngine({ paramShards: 3, shaderModules: 4 });
    const reports: InitProgressReport[] = [];
    engine.setInitProgressCallback((r) => reports.push(r));
    const id = `scripted:progress-${++n}`;
    await engine.reload(id);
    expect(reports[0]?.text).toBe('Start to fetch params');
    expect(reports[1]?.text).toMatch(
      /^Fetching param cache\[1\/3\]: 30MB fetched\. 33% completed, \d+ secs elapsed\. It can take a while/,
    );
    expect(reports.some((r) => /^Loading model from cache\[3\/3\]: 90MB loaded\. 100% completed/.test(r.text))).toBe(true);
    expect(reports.some((r) => /^Loading GPU shader modules\[2\/4\]: 50% completed, \d+ secs elapsed\.$/.test(r.text))).toBe(true);
    expect(reports.at(-1)?.text).toMatch(/^Finish loading on WebGPU - /);
    expect(reports.map((r) => parseProgress(r).phase)).toEqual([
      'fetch', 'fetch', 'fetch', 'fetch', 'cache', 'cache', 'cache', 'shader', 'shader', 'shader', 'shader', 'ready',
    ]);
    expect(ScriptedMLCEngine.hasInCache(id)).toBe(true);
    reports.length = 0;
    await engine.reload(id);
    expect(reports.filter((r) => r.text.startsWith('Fetching'))).toHaveLength(0);
  });

  it('fails on load when told to', async () => {
    const error = Object.assign(new Error('boom'), { name: 'ShaderF16SupportError' });
    const engine = new ScriptedMLCEngine({ failOnLoad: error });
    await expect(engine.reload('scripted:f')).rejects.toBe(error);
    expect(engine.modelId).toBeUndefined();
  });

  it('reads fault options from a scripted model id', () => {
    const o = scriptedOptionsFromModelId('scripted:Llama-3.2-1B-Instruct-q4f32_1-MLC?addsBos=1&failAfterTokens=3&failName=DeviceLostError&delayMs=5&emptyEvery=4');
    expect(o.addsBos).toBe(true);
    expect(o.tokenDelayMs).toBe(5);
    expect(o.emptyInstructionEvery).toBe(4);
    expect(o.failAfterTokens?.n).toBe(3);
    expect(o.failAfterTokens?.error.name).toBe('DeviceLostError');
    expect(scriptedOptionsFromModelId('scripted:plain')).toEqual({});
  });
});

describe('ScriptedMLCEngine continuing an open user turn', () => {
  it('finishes the same instruction the bare header starts, so a two-phase first-token ban reads naturally', async () => {
    const engine = await loaded();
    const whole = await run(engine, req({ seed: 9 }));
    const first = await run(engine, req({ seed: 9, max_tokens: 1 }));
    expect(first.finish).toBe('length');
    const rest = await run(engine, req({ seed: 9, prompt: PRE_QUERY + first.text }));
    expect(first.text + rest.text).toBe(whole.text);
    expect(whole.text.length).toBeGreaterThan(first.text.length);
  });
});
