import { describe, expect, it } from 'vitest';
import type { CompletionRequest } from '../../src/core/engine';
import { EngineError } from '../../src/core/errors';
import { detectGpu } from '../../src/engine/capabilities';
import { engineClients, PROBE, SCRIPTED_MODEL } from './support/engine-clients';
import type { LoadProgress } from '../../src/engine/worker-api';

const USER = '<|start_header_id|>user<|end_header_id|>\n\n';
const ASSISTANT = '<|start_header_id|>assistant<|end_header_id|>\n\n';
const MODEL = SCRIPTED_MODEL;

const client = engineClients();

const instruction = (over: Partial<CompletionRequest> = {}): CompletionRequest => ({
  prompt: `<|begin_of_text|>${USER}`,
  temperature: 1,
  topP: 1,
  maxTokens: 200,
  stop: ['<|eot_id|>'],
  seed: 5,
  ...over,
});

const response = (question: string): CompletionRequest =>
  instruction({ prompt: `<|begin_of_text|>${USER}${question}<|eot_id|>${ASSISTANT}`, temperature: 0 });

describe('engine worker over comlink (real worker, scripted model)', () => {
  it('reports the same WebGPU adapter in the worker as in the page (SwiftShader: fallback, no shader-f16)', async () => {
    const inWorker = await client().capabilities();
    const inPage = await detectGpu();
    expect(inWorker.webgpu).toBe(true);
    expect(inWorker.problem).toBeUndefined();
    expect(inWorker.adapter).toEqual(inPage.adapter);
    expect(inWorker.adapter?.shaderF16).toBe(false);
    expect(inWorker.adapter?.isFallbackAdapter).toBe(true);
    expect(inWorker.adapter?.maxBufferSize).toBeGreaterThan(0);
  });

  it('lists the prebuilt models plus scripted ones in the test build', async () => {
    const models = await client().listModels();
    const ids = models.map((m) => m.model_id);
    expect(ids).toContain('Llama-3.2-3B-Instruct-q4f32_1-MLC');
    expect(ids).toContain(MODEL);
    expect(models.find((m) => m.model_id === 'Llama-3-8B-Instruct-q4f16_1-MLC-1k')?.context_window_size).toBe(1024);
  });

  it('loads with progress phases and the BOS probe, then reports the model as cached', async () => {
    const engine = client();
    const id = `${MODEL}?addsBos=1&loadDelayMs=1`;
    expect(await engine.cachedModels([id])).toEqual({ [id]: false });
    const progress: LoadProgress[] = [];
    const model = await engine.load(id, PROBE, (p) => progress.push(p));
    expect(model).toEqual({ modelId: id, addsBos: true, contextWindow: 4096 });
    const phases = progress.map((p) => p.phase).filter((p, i, a) => p !== a[i - 1]);
    expect(phases).toEqual(['fetch', 'cache', 'shader', 'ready']);
    expect(await engine.cachedModels([id, 'Llama-3.2-3B-Instruct-q4f32_1-MLC'])).toEqual({
      [id]: true,
      'Llama-3.2-3B-Instruct-q4f32_1-MLC': false,
    });
    expect(engine.loadedModel).toEqual(model);
  });

  it('streams a completion across the boundary', async () => {
    const engine = client();
    const loaded = await engine.load(MODEL, PROBE);
    expect(loaded.addsBos).toBe(false);
    const deltas: string[] = [];
    const result = await engine.complete(instruction(), { onDelta: (d) => deltas.push(d) });
    expect(result.finishReason).toBe('stop');
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.join('')).toBe(result.text);
    expect(result.usage.promptTokens).toBe(5);
    const answer = await engine.complete(response(result.text));
    expect(answer.text).toContain(result.text.split(' ').slice(0, 3).join(' '));
  });

  it('interrupts a running completion through its AbortSignal', async () => {
    const engine = client();
    await engine.load(`${MODEL}?delayMs=5`, PROBE);
    const controller = new AbortController();
    let n = 0;
    const result = await engine.complete(response('Explain how a hash map handles collisions.'), {
      signal: controller.signal,
      onDelta: () => {
        if (++n === 3) controller.abort();
      },
    });
    expect(result.finishReason).toBe('abort');
    // Deltas already in flight may arrive, but the answer stops well before its end.
    expect(result.usage.completionTokens).toBeLessThan(12);
  });

  it('keeps the error name across the boundary and classifies it', async () => {
    const engine = client();
    const before = await engine.complete(instruction()).catch((e: unknown) => e);
    expect(before).toBeInstanceOf(EngineError);
    expect((before as EngineError).kind).toBe('model-not-loaded');
    expect(((before as EngineError).cause as Error).name).toBe('ModelNotLoadedError');

    await engine.load(`${MODEL}?failAfterTokens=3&failName=DeviceLostError`, PROBE);
    const lost = await engine.complete(instruction()).catch((e: unknown) => e);
    expect((lost as EngineError).kind).toBe('device-lost');
    expect(((lost as EngineError).cause as Error).name).toBe('DeviceLostError');
    expect(engine.loadedModel).toBeUndefined();
    await expect(engine.complete(instruction())).rejects.toMatchObject({ kind: 'model-not-loaded' });

    const failedLoad = await engine.load(`${MODEL}?failOnLoad=ShaderF16SupportError`, PROBE).catch((e: unknown) => e);
    expect((failedLoad as EngineError).kind).toBe('shader-f16');
  });

  it('terminate(): the pending call rejects and the next call runs on a fresh worker', async () => {
    const engine = client();
    await engine.load(`${MODEL}?delayMs=20`, PROBE);
    const pending = engine.complete(response('Why is the sky blue?'));
    await new Promise((r) => setTimeout(r, 30));
    engine.terminate();
    await expect(pending).rejects.toMatchObject({ kind: 'aborted' });
    // A fresh worker has no model loaded, and works.
    await expect(engine.complete(instruction())).rejects.toMatchObject({ kind: 'model-not-loaded' });
    await engine.load(MODEL, PROBE);
    await expect(engine.complete(instruction())).resolves.toMatchObject({ finishReason: 'stop' });
  });

  it('a crashing worker rejects the pending call with a classified error; the next call starts a new one', async () => {
    const engine = client();
    await engine.load(`${MODEL}?crashAfterTokens=2`, PROBE);
    const err = await engine.complete(instruction()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).message).toMatch(/Scripted crash after 2 tokens/);
    expect(engine.loadedModel).toBeUndefined();
    const model = await engine.load(MODEL, PROBE);
    expect(model.modelId).toBe(MODEL);
    await expect(engine.complete(instruction())).resolves.toMatchObject({ finishReason: 'stop' });
  });

  it('sends nothing for a pre-aborted signal and rejects invalid settings on the page side', async () => {
    const engine = client();
    const controller = new AbortController();
    controller.abort();
    await expect(engine.complete(instruction(), { signal: controller.signal })).resolves.toMatchObject({ finishReason: 'abort', text: '' });
    await expect(engine.complete(instruction({ seed: 0.5 }))).rejects.toMatchObject({ kind: 'invalid-request' });
  });
});
