// The session controller with custom-model templates: a recipe carries the run's custom template (so "Start
// identical run" rebuilds it), and a run paused by GPU loss only goes on with a model whose template writes the same
// prompts. Runs in Node with an in-memory store and a fake engine whose answers depend only on the request.
import { describe, expect, test } from 'vitest';
import { CustomModelStore, type CustomModel, type KeyValueStorage } from '../../src/app/custom-models';
import { RunCoordinator } from '../../src/app/run-coordination';
import { MagpieSession, type SessionEngine } from '../../src/app/session';
import type { CompletionRequest, CompletionResult } from '../../src/core/engine';
import { buildCustomTemplate, withPreQuery } from '../../src/core/custom-template';
import { DEFAULT_MODE_SETTINGS, parseRecipe, recipeHash } from '../../src/core/recipe';
import type { Run, RunSettings } from '../../src/core/record';
import { getTemplate } from '../../src/core/templates/registry';
import type { ListedModel, LoadedModel } from '../../src/engine/worker-api';
import { MemorySessionStore } from '../support/session-store';

const LLAMA3_8B = 'Llama-3-8B-Instruct-q4f32_1-MLC';
const LLAMA31_8B = 'Llama-3.1-8B-Instruct-q4f32_1-MLC';
const LLAMA32_1B = 'Llama-3.2-1B-Instruct-q4f32_1-MLC';
const QWEN25_1B = 'Qwen2.5-1.5B-Instruct-q4f32_1-MLC';
const LISTED: ListedModel[] = [
  { model_id: LLAMA3_8B, vram_required_MB: 6101 },
  { model_id: LLAMA31_8B, vram_required_MB: 6101 },
  { model_id: LLAMA32_1B, vram_required_MB: 1129 },
  { model_id: QWEN25_1B, vram_required_MB: 1888 },
];
const USER_HEADERS = ['<|start_header_id|>user<|end_header_id|>\n\n', '<|im_start|>user\n'];
const SETTINGS: RunSettings = {
  count: 4,
  seed: 11,
  instruction: { temperature: 1, topP: 1, maxTokens: 64 },
  response: { temperature: 0, topP: 1, maxTokens: 64 },
};

/** Answers from the request alone (same seed → same text); loses the device on models in `failing` after one record. */
class FakeEngine implements SessionEngine {
  loaded = '';
  readonly failing = new Set<string>();
  readonly requests: Array<{ model: string; request: CompletionRequest }> = [];
  capabilities = async () => ({ webgpu: false });
  listModels = async () => LISTED;
  cachedModels = async () => ({});
  load = async (modelId: string): Promise<LoadedModel> => {
    this.loaded = modelId;
    return { modelId, addsBos: false, contextWindow: 4096 };
  };
  async complete(request: CompletionRequest): Promise<CompletionResult> {
    this.requests.push({ model: this.loaded, request });
    if (this.failing.has(this.loaded) && this.requests.filter((r) => r.model === this.loaded).length > 2) {
      throw Object.assign(new Error('GPU device was lost'), { name: 'DeviceLostError' });
    }
    const instruction = USER_HEADERS.some((h) => request.prompt.endsWith(h));
    return {
      text: instruction ? `Question for seed ${request.seed ?? 'none'}?` : 'An answer.',
      finishReason: 'stop',
      usage: { promptTokens: 10, completionTokens: 3 },
    };
  }
}

function memoryStorage(): KeyValueStorage {
  const data = new Map<string, string>();
  return { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
}

function customModel(modelId: string, preQuery: string): CustomModel {
  return {
    modelId,
    kind: 'url',
    modelUrl: `https://example.org/${modelId}`,
    modelLibUrl: 'https://example.org/lib.wasm',
    template: withPreQuery({ baseTemplateId: 'llama-3' }, preQuery),
    addedAt: 0,
  };
}

const llama3 = getTemplate('llama-3');
const BIRDS = '<|start_header_id|>system<|end_header_id|>\n\nAsk about birds.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n';
const FISH = '<|start_header_id|>system<|end_header_id|>\n\nAsk about fish.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n';

async function setup(): Promise<{ session: MagpieSession; store: MemorySessionStore; engine: FakeEngine }> {
  const engine = new FakeEngine();
  const store = new MemorySessionStore();
  const session = new MagpieSession(engine, store, {
    customModels: new CustomModelStore(memoryStorage()),
    coordinator: new RunCoordinator({ locks: null, channel: null }),
    schedule: (flush) => setTimeout(flush, 0),
    // The first loss pauses the run (the default reloads the model a few times first).
    lossPolicy: { maxLosses: 1, windowMs: 60_000 },
  });
  await session.init();
  return { session, store, engine };
}

async function runWith(session: MagpieSession, modelId: string, settings: RunSettings = SETTINGS): Promise<Run> {
  session.selectModel(modelId);
  await session.loadModel(modelId);
  expect(session.state.load.status).toBe('ready');
  await session.startRun(settings, DEFAULT_MODE_SETTINGS);
  const run = session.state.runs[0];
  if (!run) throw new Error('no run started');
  return run;
}

/** A run of `modelId` that the fake engine pauses on a lost device after one record. */
async function pausedRun(session: MagpieSession, store: MemorySessionStore, engine: FakeEngine, modelId: string): Promise<Run> {
  engine.failing.add(modelId);
  const run = await runWith(session, modelId);
  const stored = await store.getRun(run.id);
  expect(stored?.status).toBe('paused');
  expect(stored?.pause?.reason).toBe('engine-lost');
  expect(stored?.counters.accepted).toBe(1);
  if (!stored) throw new Error('unreachable');
  return stored;
}

describe('recipes of custom-model runs', () => {
  test('the recipe carries the custom template, and "Start identical run" rebuilds it even after the model is edited', async () => {
    const { session, store } = await setup();
    const model = customModel('My-Llama-q4f32_1-MLC', BIRDS);
    session.addCustomModel(model);
    const first = await runWith(session, model.modelId);
    const stored = await store.getRun(first.id);
    expect(stored?.status).toBe('done');
    expect(stored?.customTemplate).toEqual(model.template);
    const recipe = stored?.recipe;
    expect(recipe?.version).toBe(2);
    expect(recipe?.template.custom).toEqual(model.template);
    expect(recipe?.template.id).toBe(buildCustomTemplate(model.template).id);
    const firstRecords = store.recordsOf(first.id);
    expect(firstRecords.map((r) => r.preQueryTemplate)).toEqual(Array(4).fill(BIRDS));

    // The exported file, read back; then the saved model changes its pre-query: the recipe must still win.
    const parsed = parseRecipe(JSON.stringify(recipe));
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    expect(recipeHash(parsed.recipe)).toBe(firstRecords[0]?.recipeHash);
    session.addCustomModel(customModel(model.modelId, FISH));
    await session.loadModel(model.modelId);
    await session.startRun(SETTINGS, DEFAULT_MODE_SETTINGS, parsed.recipe);
    expect(session.state.notice).toBeNull();
    const second = session.state.runs[0];
    expect(second?.id).not.toBe(first.id);
    if (!second) return;
    expect((await store.getRun(second.id))?.customTemplate).toEqual(model.template);
    const secondRecords = store.recordsOf(second.id);
    expect(secondRecords.map((r) => r.instructionStep.prompt)).toEqual(firstRecords.map((r) => r.instructionStep.prompt));
    expect(secondRecords.map((r) => r.instruction)).toEqual(firstRecords.map((r) => r.instruction));
    expect(secondRecords.map((r) => r.recipeHash)).toEqual(firstRecords.map((r) => r.recipeHash));
    expect(secondRecords.map((r) => r.templateId)).toEqual(firstRecords.map((r) => r.templateId));
  });
});

describe('continuing a paused run with another model', () => {
  test('a custom template that writes other prompts than the registry model: refused, the run is unchanged', async () => {
    const { session, store, engine } = await setup();
    const model = customModel('My-Llama-q4f32_1-MLC', BIRDS);
    session.addCustomModel(model);
    const paused = await pausedRun(session, store, engine, model.modelId);
    const calls = engine.requests.length;

    await session.continueWithModel(paused.id, LLAMA3_8B);
    expect(session.state.notice).toMatch(/Cannot continue this run with Llama-3-8B.*different chat template/);
    const after = await store.getRun(paused.id);
    expect(after).toEqual(paused);
    expect(engine.requests.length).toBe(calls);
    expect(session.continuation(paused, LLAMA3_8B).ok).toBe(false);
  });

  test('a custom template that writes the registry prompts: continues on the registry model, customTemplate cleared', async () => {
    const { session, store, engine } = await setup();
    const model = customModel('Plain-Llama-q4f32_1-MLC', llama3.preQuery());
    session.addCustomModel(model);
    const paused = await pausedRun(session, store, engine, model.modelId);
    expect(paused.customTemplate).toEqual(model.template);

    await session.continueWithModel(paused.id, LLAMA3_8B);
    expect(session.state.notice).toBeNull();
    const done = await store.getRun(paused.id);
    expect(done?.status).toBe('done');
    expect(done?.customTemplate).toBeUndefined();
    expect(done?.templateId).toBe('llama-3');
    expect(done?.modelId).toBe(LLAMA3_8B);
    const records = store.recordsOf(paused.id);
    expect(records.map((r) => r.modelId)).toEqual([model.modelId, LLAMA3_8B, LLAMA3_8B, LLAMA3_8B]);
    expect(records.map((r) => r.templateId)).toEqual([buildCustomTemplate(model.template).id, 'llama-3', 'llama-3', 'llama-3']);
    // The prompts did not change with the model: one format for the whole run.
    expect(new Set(records.map((r) => r.preQueryTemplate))).toEqual(new Set([llama3.preQuery()]));
  });

  test('registry runs: Llama-3.1 goes on as Llama-3.2 with the run\'s date and variant; Qwen2.5 or a custom model is refused', async () => {
    const { session, store, engine } = await setup();
    session.selectModel(LLAMA31_8B);
    session.setTemplateVariant('llama-3.1-bare-query');
    const paused = await pausedRun(session, store, engine, LLAMA31_8B);
    expect(paused.templateId).toBe('llama-3.1-bare-query');
    const date = paused.recipe?.template.dateString;
    expect(date).toBe('26 Jul 2024');

    session.addCustomModel(customModel('My-Llama-q4f32_1-MLC', llama3.preQuery()));
    expect(session.continuation(paused, 'My-Llama-q4f32_1-MLC').ok).toBe(false);
    expect(session.continuation(paused, QWEN25_1B).ok).toBe(false);
    await session.continueWithModel(paused.id, QWEN25_1B);
    expect(session.state.notice).toMatch(/Qwen2\.5 Instruct/);
    expect((await store.getRun(paused.id))?.status).toBe('paused');
    session.dismissNotice();

    // Llama-3.2's own default date is today's: the run keeps 26 Jul 2024 and the reference (bare-query) variant.
    expect(session.continuation(paused, LLAMA32_1B)).toEqual({ ok: true, templateId: 'llama-3.2-bare-query' });
    await session.continueWithModel(paused.id, LLAMA32_1B);
    const done = await store.getRun(paused.id);
    expect(done?.status).toBe('done');
    expect(done?.templateId).toBe('llama-3.2-bare-query');
    const records = store.recordsOf(paused.id);
    expect(records.map((r) => r.templateId)).toEqual(['llama-3.1-bare-query', ...Array(3).fill('llama-3.2-bare-query')]);
    const responses = records.map((r) => r.responseStep.prompt);
    expect(responses.every((p) => p.includes(`Today Date: ${date}`))).toBe(true);
    expect(new Set(records.map((r) => r.preQueryTemplate)).size).toBe(1);
  });
});
