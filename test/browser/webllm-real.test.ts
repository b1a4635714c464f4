// The REAL WebLLM path, as far as it goes without weights: the real engine worker (workers/engine.worker.ts, with
// @mlc-ai/web-llm's MLCEngine) loads a custom model whose files are loopback fixtures served by Vitest's own server.
// The worker runs behind a guard that refuses and reports any request not to loopback; every test ends by checking
// that the worker and the page fetched loopback URLs only.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fetchConvTemplate, mlcChatConfigUrl, type CustomModel, CustomModelStore } from '../../src/app/custom-models';
import { RunCoordinator } from '../../src/app/run-coordination';
import { MagpieSession, type SessionStore } from '../../src/app/session';
import { EngineError } from '../../src/core/errors';
import { getTemplate } from '../../src/core/templates/registry';
import { EngineClient } from '../../src/engine/worker-client';
import type { CustomModelRecord, LoadProgress } from '../../src/engine/worker-api';
import { isLoopbackUrl, REQUEST_CHANNEL, type RequestSeen } from './support/loopback';

const WEIGHTS_URL = `${location.origin}/test/fixtures/custom-model`;
const RESOLVED = `${WEIGHTS_URL}/resolve/main/`;
const CONFIG_URL = `${RESOLVED}mlc-chat-config.json`;
const MANIFEST_URL = `${RESOLVED}tensor-cache.json`;
const LIB_URL = `${WEIGHTS_URL}/libs/stand-in-model-lib.wasm`;
const MODEL_ID = 'Fixture-Llama-3-8B-Instruct-q4f32_1-MLC';
const RECORD: CustomModelRecord = { model: WEIGHTS_URL, model_id: MODEL_ID, model_lib: LIB_URL, vram_required_MB: 6101 };
const PROBE = '<|eot_id|>';
const SCRIPTED = 'scripted:Llama-3.2-1B-Instruct-q4f32_1-MLC';

// Every request the guarded worker made (and the page's own resource loads), in order.
const seen: RequestSeen[] = [];
const channel = new BroadcastChannel(REQUEST_CHANNEL);
channel.onmessage = (e: MessageEvent<RequestSeen>) => seen.push(e.data);
const pageObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) seen.push({ url: entry.name, via: 'page-resource-timing', loopback: isLoopbackUrl(entry.name) });
});
pageObserver.observe({ type: 'resource', buffered: true });

/** Requests made through fetch/Cache.add/XHR (not the Resource Timing echoes), as "via url". */
const requests = (): string[] =>
  seen.filter((s) => s.via === 'fetch' || s.via === 'cache.add' || s.via === 'xhr').map((s) => `${s.via} ${s.url}`);

const clients: EngineClient[] = [];
function guardedClient(): EngineClient {
  const client = new EngineClient({
    createWorker: () =>
      new Worker(new URL('./support/guarded-engine.worker.ts', import.meta.url), { type: 'module', name: 'magpie-engine' }),
  });
  clients.push(client);
  return client;
}

const WEBLLM_CACHES = ['webllm/config', 'webllm/model', 'webllm/wasm'];
async function cachedUrls(): Promise<string[]> {
  const urls: string[] = [];
  for (const name of WEBLLM_CACHES) {
    if (!(await caches.has(name))) continue;
    for (const request of await (await caches.open(name)).keys()) urls.push(`${name} ${request.url}`);
  }
  return urls.sort();
}

const settle = (ms = 150): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function loadError(client: EngineClient, progress: LoadProgress[] = []): Promise<EngineError> {
  const error = await client.load(MODEL_ID, PROBE, (p) => progress.push(p), RECORD).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(EngineError);
  return error as EngineError;
}

beforeEach(async () => {
  // Cache Storage outlives a test: start each one with nothing of WebLLM's cached.
  for (const name of WEBLLM_CACHES) await caches.delete(name);
  seen.length = 0;
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  // Reports from the worker arrive by message; give the last ones time to land before checking them all.
  await settle();
  const away = seen.filter((s) => !s.loopback);
  expect(away, 'requests that were not to loopback').toEqual([]);
});

describe('loopback check', () => {
  it('tells loopback hosts from every other host', () => {
    for (const url of ['http://localhost:5173/a', 'http://127.0.0.1/x', 'http://127.8.9.10:1/', 'http://[::1]:80/', 'blob:http://localhost/x', 'data:text/plain,hi']) {
      expect(isLoopbackUrl(url), url).toBe(true);
    }
    for (const url of ['https://huggingface.co/mlc-ai/x', 'https://raw.githubusercontent.com/x', 'http://10.0.0.1/', 'http://localhost.example.com/', 'file:///etc/passwd', 'not a url']) {
      expect(isLoopbackUrl(url), url).toBe(false);
    }
  });
});

describe('real WebLLM engine worker, custom model on loopback fixtures', () => {
  it('reports the SwiftShader adapter and the real prebuilt list plus the test build’s scripted models', async () => {
    const client = guardedClient();
    const gpu = await client.capabilities();
    expect(gpu.webgpu).toBe(true);
    expect(gpu.problem).toBeUndefined();
    expect(gpu.adapter).toMatchObject({ isFallbackAdapter: true, shaderF16: false });
    expect(`${gpu.adapter?.vendor} ${gpu.adapter?.architecture}`).toMatch(/swiftshader/i);
    const ids = (await client.listModels()).map((m) => m.model_id);
    expect(ids).toContain('Llama-3.2-3B-Instruct-q4f32_1-MLC');
    expect(ids).toContain(SCRIPTED);
    // Listing and detection read nothing over the network.
    expect(requests()).toEqual([]);
  });

  it('before any load: the custom model is not cached (real hasModelInCache, no request) and complete() rejects model-not-loaded', async () => {
    const client = guardedClient();
    expect(await client.cachedModels([MODEL_ID, 'Llama-3.2-3B-Instruct-q4f32_1-MLC'], [RECORD])).toEqual({
      [MODEL_ID]: false,
      'Llama-3.2-3B-Instruct-q4f32_1-MLC': false,
    });
    const error = await client
      .complete({ prompt: '<|begin_of_text|>', temperature: 1, topP: 1, maxTokens: 8, stop: [], seed: 1 })
      .then(() => undefined, (err: unknown) => err);
    expect(error).toBeInstanceOf(EngineError);
    expect((error as EngineError).kind).toBe('model-not-loaded');
    expect((error as EngineError).advice).toMatch(/Load it again/);
    expect(requests()).toEqual([]);
  });

  it('load runs WebLLM’s reload: config from loopback into its cache, then the model library, which fails to compile (model-files, URL named)', async () => {
    const client = guardedClient();
    const progress: LoadProgress[] = [];
    const error = await loadError(client, progress);
    expect(error.kind).toBe('model-files');
    expect(error.recoverable).toBe(false);
    expect(error.message).toContain(`The model library ${LIB_URL} is not a WebLLM model library`);
    // The browser's own words stay in the details: the bytes found where "\0asm" was expected ("Not ").
    expect(error.message).toContain('expected magic word 00 61 73 6d, found 4e 6f 74 20');
    expect(error.advice).toMatch(/weights and library URLs/);
    // WebLLM fetched the config through its Cache Storage, then the library with a plain fetch (a localhost URL is
    // never cached), and stopped there: no tokenizer, no tensor-cache.json, no shard, no GPU work.
    expect(requests()).toEqual([`cache.add ${CONFIG_URL}`, `fetch ${LIB_URL}`]);
    expect(await cachedUrls()).toEqual([`webllm/config ${CONFIG_URL}`]);
    // WebLLM registers its progress callback on the TVM instance, which never exists here: no report at all.
    expect(progress).toEqual([]);
    expect(client.loadedModel).toBeUndefined();
  });

  it('after the failure the same worker loads again: the same clear error (config now from the cache), then a working model', async () => {
    const client = guardedClient();
    const first = await loadError(client);
    seen.length = 0;
    const second = await loadError(client);
    expect(second.kind).toBe('model-files');
    expect(second.message).toBe(first.message);
    expect(requests()).toEqual([`fetch ${LIB_URL}`]);
    // The worker is not wedged: the test build's scripted model loads and completes in it.
    const loaded = await client.load(SCRIPTED, PROBE);
    expect(loaded.modelId).toBe(SCRIPTED);
    expect(client.loadedModel).toEqual(loaded);
    const result = await client.complete({
      prompt: '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n',
      temperature: 1,
      topP: 1,
      maxTokens: 40,
      stop: ['<|eot_id|>'],
      seed: 3,
    });
    expect(result.text.length).toBeGreaterThan(0);
  });

  it('deleteCachedModel with the record removes what the failed load cached; without it WebLLM does not know the id', async () => {
    const client = guardedClient();
    await loadError(client);
    expect(await cachedUrls()).toContain(`webllm/config ${CONFIG_URL}`);

    const unknown = await client.deleteCachedModel(MODEL_ID).then(() => undefined, (err: unknown) => err);
    expect(unknown).toBeInstanceOf(EngineError);
    expect((unknown as EngineError).kind).toBe('model-not-found');

    seen.length = 0;
    await client.deleteCachedModel(MODEL_ID, RECORD);
    // WebLLM learns the shard names from tensor-cache.json, which it fetches (from loopback) to delete them.
    expect(requests()).toEqual([`cache.add ${MANIFEST_URL}`]);
    const left = await cachedUrls();
    expect(left).not.toContain(`webllm/config ${CONFIG_URL}`);
    expect(left.filter((u) => u.includes('params_shard'))).toEqual([]);
    expect(await client.cachedModels([MODEL_ID], [RECORD])).toEqual({ [MODEL_ID]: false });
    // Deleting again (nothing left to delete) still succeeds.
    await client.deleteCachedModel(MODEL_ID, RECORD);
  });
});

describe('the page session over the real worker', () => {
  const STORE_KEY = 'magpie-web:custom-models:webllm-real';
  afterEach(() => localStorage.removeItem(STORE_KEY));

  it('shows the load failure as a model-files error, allows another load, and deletes the custom model from the cache', async () => {
    const convTemplate = await fetchConvTemplate(mlcChatConfigUrl(WEIGHTS_URL));
    const model: CustomModel = {
      modelId: MODEL_ID,
      kind: 'url',
      modelUrl: WEIGHTS_URL,
      modelLibUrl: LIB_URL,
      vramMB: 6101,
      template: { source: 'conv_template', preQuery: getTemplate('llama-3').preQuery(), convTemplate },
      addedAt: 1,
    };
    const session = new MagpieSession(guardedClient(), {} as SessionStore, {
      customModels: new CustomModelStore(localStorage, STORE_KEY),
      coordinator: new RunCoordinator({ locks: null, channel: null }),
      schedule: (flush) => setTimeout(flush, 0),
    });
    session.addCustomModel(model);
    expect(session.state.selectedModelId).toBe(MODEL_ID);

    const statuses: string[] = [];
    session.subscribe((s) => {
      if (statuses.at(-1) !== s.load.status) statuses.push(s.load.status);
    });
    for (let attempt = 0; attempt < 2; attempt++) {
      await session.loadModel(MODEL_ID);
      // Listeners hear non-urgent changes on the next scheduled flush.
      await settle(20);
      const load = session.state.load;
      expect(load.status).toBe('error');
      if (load.status !== 'error') return;
      expect(load.modelId).toBe(MODEL_ID);
      expect(load.error.kind).toBe('model-files');
      expect(load.error.message).toContain(LIB_URL);
    }
    expect(statuses).toEqual(['loading', 'error', 'loading', 'error']);
    expect(session.state.cachedModelIds.has(MODEL_ID)).toBe(false);

    await session.deleteCachedModel(MODEL_ID);
    expect(session.state.notice).toBeNull();
    expect(await cachedUrls()).not.toContain(`webllm/config ${CONFIG_URL}`);
  });
});
