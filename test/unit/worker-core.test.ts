import { releaseProxy } from 'comlink';
import { describe, expect, it } from 'vitest';
import type { CompletionRequest } from '../../src/core/engine';
import { classifyEngineError, EngineError } from '../../src/core/errors';
import { ScriptedMLCEngine, type ScriptedEngineOptions } from '../../src/engine/scripted-mlc-engine';
import { createEngineWorkerApi, toWireError } from '../../src/engine/worker-core';
import { parseProgress, type LoadProgress } from '../../src/engine/worker-api';

const USER = '<|start_header_id|>user<|end_header_id|>\n\n';
const ASSISTANT = '<|start_header_id|>assistant<|end_header_id|>\n\n';
const PROBE = '<|eot_id|>';

let modelCounter = 0;
/** A fresh model id per test, because the scripted "download cache" lives for the whole thread. */
const freshId = (): string => `scripted:Llama-3.2-1B-Instruct-q4f32_1-MLC#${++modelCounter}`;

function setup(options: ScriptedEngineOptions = {}) {
  const made: ScriptedMLCEngine[] = [];
  const api = createEngineWorkerApi(
    (modelId) => {
      const engine = new ScriptedMLCEngine({ tokenDelayMs: 0, ...options });
      made.push(engine);
      // The id must be well-formed, as WebLLM would check it.
      if (!modelId.startsWith('scripted:')) throw Object.assign(new Error(`Cannot find model record for ${modelId}`), { name: 'ModelNotFoundError' });
      return engine;
    },
    {
      capabilities: async () => ({ webgpu: false }),
      listModels: () => [{ model_id: 'scripted:Llama-3.2-1B-Instruct-q4f32_1-MLC' }],
      isCached: async (id) => {
        if (id === 'broken') throw new Error('cache unreadable');
        return ScriptedMLCEngine.hasInCache(id);
      },
      contextWindow: () => 4096,
    },
  );
  return { api, made };
}

const instructionRequest = (over: Partial<CompletionRequest> = {}): CompletionRequest => ({
  prompt: `<|begin_of_text|>${USER}`,
  temperature: 1,
  topP: 1,
  maxTokens: 128,
  stop: ['<|eot_id|>'],
  seed: 3,
  ...over,
});

describe('parseProgress', () => {
  it('reads each WebLLM phase from its text, not from the restarting progress number', () => {
    const fetch = parseProgress({
      progress: 0.3,
      timeElapsed: 2,
      text:
        'Fetching param cache[3/10]: 120MB fetched. 30% completed, 2 secs elapsed. It can take a while when we ' +
        'first visit this page to populate the cache. Later refreshes will become faster.',
    });
    expect(fetch).toMatchObject({ phase: 'fetch', fraction: 0.3, megabytes: 120, elapsedSeconds: 2 });
    const cache = parseProgress({ progress: 0.5, timeElapsed: 4, text: 'Loading model from cache[5/10]: 200MB loaded. 50% completed, 4 secs elapsed.' });
    expect(cache).toMatchObject({ phase: 'cache', fraction: 0.5, megabytes: 200 });
    const shader = parseProgress({ progress: 0.3, timeElapsed: 6, text: 'Loading GPU shader modules[12/40]: 30% completed, 6 secs elapsed.' });
    expect(shader).toMatchObject({ phase: 'shader', fraction: 0.3 });
    const ready = parseProgress({ progress: 1, timeElapsed: 7.2, text: 'Finish loading on WebGPU - swiftshader device' });
    expect(ready).toEqual({ phase: 'ready', fraction: 1, text: 'Finish loading on WebGPU - swiftshader device', elapsedSeconds: 7.2 });
    expect(parseProgress({ progress: 0, timeElapsed: 0, text: 'Start to fetch params' }).phase).toBe('fetch');
    expect(parseProgress({ progress: 7, timeElapsed: 0, text: 'Something new' })).toMatchObject({ phase: 'other', fraction: 1 });
  });
});

describe('createEngineWorkerApi', () => {
  it('loads with progress: fetch, cache, shader, ready on first load; cache only on the second', async () => {
    const { api } = setup();
    const id = freshId();
    const first: LoadProgress[] = [];
    await api.load(id, PROBE, (p) => first.push(p));
    const phases = (list: LoadProgress[]) => list.map((p) => p.phase).filter((p, i, a) => p !== a[i - 1]);
    expect(phases(first)).toEqual(['fetch', 'cache', 'shader', 'ready']);
    expect(first.at(-1)?.fraction).toBe(1);
    // Fractions rise within a phase even though they restart between phases.
    const shader = first.filter((p) => p.phase === 'shader').map((p) => p.fraction);
    expect(shader).toEqual([...shader].sort((a, b) => a - b));
    expect(await api.cachedModels([id, 'scripted:never-loaded', 'broken'])).toEqual({
      [id]: true,
      'scripted:never-loaded': false,
      broken: false,
    });
    const second: LoadProgress[] = [];
    await api.load(id, PROBE, (p) => second.push(p));
    expect(phases(second)).toEqual(['fetch', 'cache', 'shader', 'ready']);
    // Only the "Start to fetch params" line belongs to the fetch phase the second time.
    expect(second.filter((p) => p.phase === 'fetch')).toHaveLength(1);
  });

  it.each([false, true])('reports the BOS probe result (engine adds BOS: %s)', async (addsBos) => {
    const { api } = setup({ addsBos });
    const model = await api.load(freshId(), PROBE);
    expect(model.addsBos).toBe(addsBos);
    expect(model.contextWindow).toBe(4096);
  });

  it('rejects complete before load with a ModelNotLoadedError', async () => {
    const { api } = setup();
    const err = await api.complete(instructionRequest()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe('ModelNotLoadedError');
    expect(classifyEngineError(err).kind).toBe('model-not-loaded');
  });

  it('completes with streamed deltas after load, and not after unload', async () => {
    const { api, made } = setup();
    await api.load(freshId(), PROBE);
    const deltas: string[] = [];
    const result = await api.complete(instructionRequest(), (d) => deltas.push(d));
    expect(result.finishReason).toBe('stop');
    expect(result.text.length).toBeGreaterThan(0);
    expect(deltas.join('')).toBe(result.text);
    await api.unload();
    expect(made[0]?.modelId).toBeUndefined();
    await expect(api.complete(instructionRequest())).rejects.toMatchObject({ name: 'ModelNotLoadedError' });
  });

  it('resolves only after the page acknowledged every delta, then releases the callback port', async () => {
    const { api } = setup();
    await api.load(freshId(), PROBE);
    let calls = 0;
    let acked = 0;
    let released = 0;
    // Shaped like a comlink proxy: each call answers asynchronously, and it can be released.
    const onDelta = Object.assign(
      (_d: string) => {
        calls++;
        return new Promise<void>((resolve) => setTimeout(() => (acked++, resolve()), 3));
      },
      { [releaseProxy]: () => void released++ },
    );
    await api.complete(instructionRequest(), onDelta);
    expect(calls).toBeGreaterThan(3);
    expect(acked).toBe(calls);
    expect(released).toBe(1);
  });

  it('unloads the previous engine when another model is loaded', async () => {
    const { api, made } = setup();
    await api.load(freshId(), PROBE);
    await api.load(freshId(), PROBE);
    expect(made).toHaveLength(2);
    expect(made[0]?.modelId).toBeUndefined();
    expect(made[1]?.modelId).toBeDefined();
  });

  it('interrupt() ends the running completion with finish reason abort', async () => {
    const { api } = setup({ tokenDelayMs: 2 });
    await api.load(freshId(), PROBE);
    const prompt = `<|begin_of_text|>${USER}Explain how a hash map handles collisions.<|eot_id|>${ASSISTANT}`;
    let n = 0;
    const result = await api.complete(instructionRequest({ prompt }), () => {
      if (++n === 3) void api.interrupt();
    });
    expect(result.finishReason).toBe('abort');
    expect(result.usage.completionTokens).toBe(3);
  });

  it('an interrupt posted right after complete() still stops it', async () => {
    const { api } = setup({ tokenDelayMs: 1 });
    await api.load(freshId(), PROBE);
    const prompt = `<|begin_of_text|>${USER}Why is the sky blue?<|eot_id|>${ASSISTANT}`;
    const pending = api.complete(instructionRequest({ prompt }));
    await api.interrupt();
    const result = await pending;
    expect(result.finishReason).toBe('abort');
    expect(result.usage.completionTokens).toBeLessThanOrEqual(1);
  });

  it('reports a failure mid-completion as a plain Error with the WebLLM name and message, then needs a reload', async () => {
    const lost = Object.assign(new Error('The WebGPU device was lost.'), { name: 'DeviceLostError' });
    // The BOS probe generates one token, so a fault after 3 tokens lets the load succeed.
    const { api } = setup({ failAfterTokens: { n: 3, error: lost } });
    await api.load(freshId(), PROBE);
    const err = await api.complete(instructionRequest()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ name: 'DeviceLostError', message: 'The WebGPU device was lost.' });
    await expect(api.complete(instructionRequest())).rejects.toMatchObject({ name: 'ModelNotLoadedError' });
  });

  it('passes a load failure through with its name', async () => {
    const fail = Object.assign(new Error('no record'), { name: 'ModelNotFoundError' });
    const { api } = setup({ failOnLoad: fail });
    await expect(api.load(freshId(), PROBE)).rejects.toMatchObject({ name: 'ModelNotFoundError', message: 'no record' });
  });

  it('rejects an older load that a newer one superseded', async () => {
    const { api } = setup({ loadStepDelayMs: 2 });
    const older = api.load(freshId(), PROBE);
    const newer = api.load(freshId(), PROBE);
    await expect(older).rejects.toMatchObject({ name: 'AbortError' });
    await expect(newer).resolves.toMatchObject({ addsBos: false });
  });

  it('lists models and capabilities from its dependencies', async () => {
    const { api } = setup();
    expect(await api.listModels()).toEqual([{ model_id: 'scripted:Llama-3.2-1B-Instruct-q4f32_1-MLC' }]);
    expect(await api.capabilities()).toEqual({ webgpu: false });
  });
});

describe('toWireError', () => {
  it('uses the WebLLM error behind an EngineError', () => {
    const cause = Object.assign(new Error('too long'), { name: 'ContextWindowSizeExceededError' });
    const engineError = new EngineError(classifyEngineError(cause));
    engineError.cause = cause;
    const wire = toWireError(engineError);
    expect(wire.name).toBe('ContextWindowSizeExceededError');
    expect(wire.message).toBe('too long');
    expect(classifyEngineError(wire).kind).toBe('context-window');
  });
  it('turns strings into errors whose message is the string', () => {
    expect(toWireError('Unable to find a compatible GPU').message).toBe('Unable to find a compatible GPU');
  });
});
