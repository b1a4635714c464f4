import { afterAll, describe, expect, test } from 'vitest';
import type { CompleteOptions, CompletionRequest, CompletionResult, TextEngine } from '../../src/core/engine';
import { EngineError, classifyEngineError } from '../../src/core/errors';
import { getTemplate } from '../../src/core/templates/registry';
import { withBos } from '../../src/core/templates/types';
import { EnginePool } from '../../src/engine/engine-pool';
import { OpenAICompatibleEngine } from '../../src/engine/openai-engine';
import { start, type TestServer, type TestServerOptions } from '../support/openai-test-server';

const MODEL = 'test/llama-3-8b-instruct';
const llama3 = getTemplate('llama-3');
const request = (instruction: string, maxTokens = 40): CompletionRequest => ({
  prompt: withBos(llama3, llama3.render([{ role: 'user', content: instruction }], { addGenerationPrompt: true }), false),
  temperature: 0,
  topP: 1,
  maxTokens,
  stop: ['<|eot_id|>'],
});

const servers: TestServer[] = [];
async function server(options: TestServerOptions = {}): Promise<TestServer> {
  const s = await start(options);
  servers.push(s);
  return s;
}
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

const engineFor = (url: string, maxRetries = 0): OpenAICompatibleEngine =>
  new OpenAICompatibleEngine({ baseUrl: url, model: MODEL, inBrowser: false, maxRetries, sleep: async () => undefined });

/** A TextEngine whose completions finish when the test says so. */
class ManualEngine implements TextEngine {
  readonly pending: Array<{ resolve: (r: CompletionResult) => void; reject: (e: unknown) => void; options: CompleteOptions }> = [];
  complete(_request: CompletionRequest, options: CompleteOptions = {}): Promise<CompletionResult> {
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject, options }));
  }
  finishOne(text = 'done'): void {
    this.pending.shift()?.resolve({ text, finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 } });
  }
  failOne(err: unknown): void {
    this.pending.shift()?.reject(err);
  }
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));
const loads = (pool: EnginePool): number[] => pool.inFlight().map((m) => m.inFlight);

describe('EnginePool', () => {
  test('spreads concurrent completions evenly over 3 servers, and results match a single server', async () => {
    const trio = await Promise.all([0, 1, 2].map(() => server({ msPerToken: 5 })));
    const pool = new EnginePool(
      trio.map((s) => engineFor(s.url)),
      { names: trio.map((s) => s.url) },
    );
    const runs = Array.from({ length: 9 }, (_, i) => pool.complete(request(`question ${i}`)));
    expect(loads(pool)).toEqual([3, 3, 3]);
    const results = await Promise.all(runs);
    expect(loads(pool)).toEqual([0, 0, 0]);
    expect(trio.map((s) => s.stats.completions)).toEqual([3, 3, 3]);
    expect(trio.map((s) => s.stats.maxConcurrent)).toEqual([3, 3, 3]);
    expect(pool.inFlight().map((m) => m.completed)).toEqual([3, 3, 3]);
    expect(pool.inFlight()[0]?.name).toBe(trio[0]?.url);

    const direct = await engineFor(trio[0]?.url ?? '').complete(request('question 4'));
    expect(results[4]?.text).toBe(direct.text);
  });

  test('sequential completions go round-robin (ties)', async () => {
    const trio = await Promise.all([0, 1, 2].map(() => server()));
    const pool = new EnginePool(trio.map((s) => engineFor(s.url)));
    for (let i = 0; i < 6; i++) await pool.complete(request(`q${i}`, 5));
    expect(trio.map((s) => s.stats.completions)).toEqual([2, 2, 2]);
  });

  test('the next completion goes to the engine with the fewest in flight', async () => {
    const engines = [new ManualEngine(), new ManualEngine(), new ManualEngine()];
    const pool = new EnginePool(engines);
    const calls = Array.from({ length: 6 }, () => pool.complete(request('x')));
    expect(loads(pool)).toEqual([2, 2, 2]);
    engines[1]?.finishOne();
    engines[1]?.finishOne();
    engines[2]?.finishOne();
    await tick();
    expect(loads(pool)).toEqual([2, 0, 1]);
    calls.push(pool.complete(request('y')));
    expect(loads(pool)).toEqual([2, 1, 1]);
    calls.push(pool.complete(request('z')));
    // A tie between engines 2 and 3: round-robin moves past the engine used last.
    expect(loads(pool)).toEqual([2, 1, 2]);
    for (const e of engines) while (e.pending.length) e.finishOne();
    await Promise.all(calls);
  });

  test('fails over from a server that is down, rests it, and every completion still succeeds', async () => {
    const up = await Promise.all([0, 1].map(() => server()));
    const down = await start();
    const downUrl = down.url;
    await down.close();
    const pool = new EnginePool([engineFor(up[0]?.url ?? ''), engineFor(downUrl), engineFor(up[1]?.url ?? '')], { cooldownMs: 60_000 });
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.complete(request(`q${i}`))));
    expect(results.every((r, i) => r.finishReason === 'length' && r.text.includes(`"q${i}"`))).toBe(true);
    const stats = pool.inFlight();
    expect(stats[1]).toMatchObject({ healthy: false, completed: 0 });
    expect(stats[1]?.failed).toBeGreaterThanOrEqual(1);
    expect((up[0]?.stats.completions ?? 0) + (up[1]?.stats.completions ?? 0)).toBe(6);

    // While it rests, new work only goes to healthy servers.
    const failedBefore = stats[1]?.failed ?? 0;
    await Promise.all(Array.from({ length: 4 }, (_, i) => pool.complete(request(`r${i}`))));
    expect(pool.inFlight()[1]?.failed).toBe(failedBefore);
    const direct = await engineFor(up[0]?.url ?? '').complete(request('q3'));
    expect(results[3]?.text).toBe(direct.text);
  });

  test('a stream that breaks after deltas fails over with onRestart, and the text is whole', async () => {
    const a = await server();
    const b = await server();
    a.plan({ kind: 'reset', afterChunks: 3 });
    const pool = new EnginePool([engineFor(a.url), engineFor(b.url)]);
    const deltas: string[] = [];
    let restarts = 0;
    const result = await pool.complete(request('Tell me a story.', 60), {
      onDelta: (d) => deltas.push(d),
      onRestart: () => {
        restarts++;
        deltas.length = 0;
      },
    });
    expect(restarts).toBe(1);
    expect(deltas.join('')).toBe(result.text);
    expect(result.text).toBe((await engineFor(b.url).complete(request('Tell me a story.', 60))).text);
    expect(b.stats.completions).toBe(2);
  });

  test('errors another server would repeat (unknown model) are not failed over', async () => {
    const a = await server({ models: ['other-model'] });
    const b = await server({ models: ['other-model'] });
    const pool = new EnginePool([engineFor(a.url), engineFor(b.url)]);
    const err = await pool.complete(request('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(classifyEngineError(err).kind).toBe('unknown-model');
    expect(a.stats.completions + b.stats.completions).toBe(1);
    expect(pool.inFlight().every((m) => m.healthy)).toBe(true);
  });

  test('when every engine failed, the last error is thrown; a rested engine is used again after its cooldown', async () => {
    let now = 1000;
    const engines = [new ManualEngine(), new ManualEngine()];
    const pool = new EnginePool(engines, { cooldownMs: 500, now: () => now });
    const serverError = () => new EngineError({ ...classifyEngineError({ kind: 'server-error', message: '' }), message: 'boom' });
    const call = pool.complete(request('x'));
    engines[0]?.failOne(serverError());
    await tick();
    expect(loads(pool)).toEqual([0, 1]);
    engines[1]?.failOne(serverError());
    await expect(call).rejects.toThrow('boom');
    expect(pool.inFlight().map((m) => m.healthy)).toEqual([false, false]);

    // All resting: a first attempt still goes somewhere (the one that recovers first).
    const next = pool.complete(request('y'));
    expect(loads(pool)).toEqual([1, 0]);
    engines[0]?.finishOne('ok');
    expect((await next).text).toBe('ok');
    expect(pool.inFlight()[0]?.healthy).toBe(true);

    now += 600;
    expect(pool.inFlight()[1]?.healthy).toBe(true);
  });
});
