/// <reference lib="webworker" />
/**
 * The engine worker: owns web-llm's MLCEngine (created here, so errors stay real Errors and GPU work stays off the
 * page's thread) and exposes EngineWorkerApi with comlink. Logic lives in src/engine/worker-core.ts.
 */
import { expose } from 'comlink';
import {
  MLCEngine,
  deleteModelAllInfoInCache,
  hasModelInCache,
  prebuiltAppConfig,
  type AppConfig,
} from '@mlc-ai/web-llm';
import { detectGpu } from '../src/engine/capabilities';
import type { MLCEngineLike } from '../src/engine/webllm-adapter';
import { createEngineWorkerApi } from '../src/engine/worker-core';
import { SCRIPTED_MODEL_PREFIX, type CustomModelRecord, type ListedModel } from '../src/engine/worker-api';

let webllm: MLCEngine | undefined;

/** The prebuilt list, plus the user's model when one is given (it replaces a prebuilt record of the same id). */
function appConfigWith(custom: CustomModelRecord | undefined): AppConfig {
  if (!custom) return prebuiltAppConfig;
  const record = { ...custom, overrides: { ...custom.overrides } };
  return {
    ...prebuiltAppConfig,
    model_list: [...prebuiltAppConfig.model_list.filter((r) => r.model_id !== custom.model_id), record],
  };
}

async function makeEngine(modelId: string, custom?: CustomModelRecord): Promise<MLCEngineLike> {
  if (modelId.startsWith(SCRIPTED_MODEL_PREFIX)) {
    if (__MAGPIE_TEST_BUILD__) {
      const { createScriptedEngine, indexedDbFaultLedger } = await import('../src/engine/scripted-mlc-engine');
      // Faults limited to "n times" are counted in IndexedDB, so a crash that restarts this worker stays spent.
      return createScriptedEngine(modelId, indexedDbFaultLedger());
    }
  }
  // One MLCEngine for the worker's life: reload() swaps models and aborts a load still in progress.
  webllm ??= new MLCEngine({ appConfig: prebuiltAppConfig });
  // reload() looks the id up in the engine's appConfig, so a custom model must be in it for this load.
  webllm.setAppConfig(appConfigWith(custom));
  return webllm;
}

async function isCached(modelId: string, custom?: CustomModelRecord): Promise<boolean> {
  // The define is tested inline each time so the production build drops the branch and the scripted chunk.
  if (__MAGPIE_TEST_BUILD__ && modelId.startsWith(SCRIPTED_MODEL_PREFIX)) {
    const { scriptedModelInCache } = await import('../src/engine/scripted-mlc-engine');
    return scriptedModelInCache(modelId);
  }
  return hasModelInCache(modelId, appConfigWith(custom));
}

async function deleteCached(modelId: string, custom?: CustomModelRecord): Promise<void> {
  if (__MAGPIE_TEST_BUILD__ && modelId.startsWith(SCRIPTED_MODEL_PREFIX)) {
    const { forgetScriptedModel } = await import('../src/engine/scripted-mlc-engine');
    forgetScriptedModel(modelId);
    return;
  }
  // WebLLM finds the files by the model's record, so an added model needs its record in the config too.
  await deleteModelAllInfoInCache(modelId, appConfigWith(custom));
}

function contextWindow(modelId: string, custom?: CustomModelRecord): number {
  if (custom) return custom.overrides?.context_window_size ?? 4096;
  if (__MAGPIE_TEST_BUILD__ && modelId.startsWith(SCRIPTED_MODEL_PREFIX)) {
    const m = /[?&]contextWindow=(\d+)/.exec(modelId);
    return m ? Number(m[1]) : 4096;
  }
  const record = prebuiltAppConfig.model_list.find((r) => r.model_id === modelId);
  return record?.overrides?.context_window_size ?? 4096;
}

/** Scripted stand-ins listed in test builds, so end-to-end tests can pick them in the model picker. */
const SCRIPTED_LISTING = ['Llama-3.2-1B-Instruct-q4f32_1-MLC', 'Llama-3.1-8B-Instruct-q4f32_1-MLC', 'Llama-3-8B-Instruct-q4f32_1-MLC'];

function listModels(): ListedModel[] {
  const real = prebuiltAppConfig.model_list.map((r) => {
    const m: ListedModel = { model_id: r.model_id };
    if (r.vram_required_MB !== undefined) m.vram_required_MB = r.vram_required_MB;
    if (r.low_resource_required !== undefined) m.low_resource_required = r.low_resource_required;
    if (r.overrides?.context_window_size !== undefined) m.context_window_size = r.overrides.context_window_size;
    m.model_url = r.model;
    return m;
  });
  if (!__MAGPIE_TEST_BUILD__) return real;
  return [...real, ...SCRIPTED_LISTING.map((id) => ({ model_id: SCRIPTED_MODEL_PREFIX + id, context_window_size: 4096 }))];
}

expose(createEngineWorkerApi(makeEngine, { capabilities: () => detectGpu(), listModels, isCached, contextWindow, deleteCached }));
