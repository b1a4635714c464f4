/**
 * Shared between the engine worker and the page: the worker's API (exposed with comlink) and the pure parser of
 * WebLLM's load-progress reports. No WebLLM runtime import here, so the page can use it for free.
 */
import type { CompletionRequest, CompletionResult, JsonRequest } from '../core/engine';
import type { ClassifiedError } from '../core/errors';

/** Model ids with this prefix load the scripted test engine (test builds only). */
export const SCRIPTED_MODEL_PREFIX = 'scripted:';

export type LoadPhase = 'fetch' | 'cache' | 'shader' | 'ready' | 'other';

export interface LoadProgress {
  /** fetch: downloading weights; cache: loading weights from the browser cache onto the GPU; shader: compiling. */
  phase: LoadPhase;
  /** 0..1 within the phase; phases restart at 0, so do not compare across phases. */
  fraction: number;
  /** WebLLM's own text, for the details line. */
  text: string;
  elapsedSeconds: number;
  /** Megabytes fetched or loaded so far (fetch and cache phases). */
  megabytes?: number;
}

/** WebLLM's InitProgressReport, structurally. */
export interface InitProgressReportLike {
  progress: number;
  timeElapsed: number;
  text: string;
}

const FETCH_START = /^Start to fetch params/;
const FETCHING = /^Fetching param cache\[\d+\/\d+\]:\s*(\d+)MB fetched\.\s*(\d+)% completed/;
const FROM_CACHE = /^Loading model from cache\[\d+\/\d+\]:\s*(\d+)MB loaded\.\s*(\d+)% completed/;
const SHADERS = /^Loading GPU shader modules\[(\d+)\/(\d+)\]/;
const FINISHED = /^Finish loading on /;

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}

/** Reads the phase from WebLLM's progress text; the numeric `progress` alone restarts at 0 when shaders start. */
export function parseProgress(report: InitProgressReportLike): LoadProgress {
  const { text } = report;
  const base = { text, elapsedSeconds: Number.isFinite(report.timeElapsed) ? report.timeElapsed : 0 };
  let m: RegExpExecArray | null;
  if (FETCH_START.test(text)) return { ...base, phase: 'fetch', fraction: clamp01(report.progress), megabytes: 0 };
  if ((m = FETCHING.exec(text))) {
    return { ...base, phase: 'fetch', fraction: clamp01(report.progress), megabytes: Number(m[1]) };
  }
  if ((m = FROM_CACHE.exec(text))) {
    return { ...base, phase: 'cache', fraction: clamp01(report.progress), megabytes: Number(m[1]) };
  }
  if ((m = SHADERS.exec(text))) {
    const done = Number(m[1]);
    const total = Number(m[2]);
    return { ...base, phase: 'shader', fraction: total > 0 ? clamp01(done / total) : clamp01(report.progress) };
  }
  if (FINISHED.test(text)) return { ...base, phase: 'ready', fraction: 1 };
  return { ...base, phase: 'other', fraction: clamp01(report.progress) };
}

export interface LoadedModel {
  modelId: string;
  /** Measured by the BOS probe right after loading. */
  addsBos: boolean;
  contextWindow: number;
}

export interface GpuAdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  isFallbackAdapter: boolean;
  shaderF16: boolean;
  maxBufferSize: number;
}

export interface GpuCapabilities {
  webgpu: boolean;
  adapter?: GpuAdapterSummary;
  /** Why WebLLM cannot run here (no WebGPU, no adapter), when that is known before loading. */
  problem?: ClassifiedError;
}

/** A model record as the worker lists it: the page never imports WebLLM, so the worker sends the data. */
export interface ListedModel {
  model_id: string;
  vram_required_MB?: number;
  low_resource_required?: boolean;
  context_window_size?: number;
  /** The weights URL (WebLLM's ModelRecord.model), so the page can read the model's mlc-chat-config.json. */
  model_url?: string;
}

/** A model the user adds by URL: appended to the worker's appConfig model_list (WebLLM's ModelRecord fields). */
export interface CustomModelRecord {
  /** Absolute weights URL; WebLLM appends "resolve/main/" unless a resolve/…/ part is present. */
  model: string;
  model_id: string;
  /** Absolute URL of the model library (wasm). */
  model_lib: string;
  vram_required_MB?: number;
  overrides?: { context_window_size?: number };
}

export interface EngineWorkerApi {
  capabilities(): Promise<GpuCapabilities>;
  /** WebLLM's prebuilt model list (plus scripted models in test builds); the page filters it (core/models.ts). */
  listModels(): Promise<ListedModel[]>;
  /** Which model ids have their weights in the browser cache (unknown ids: false); `custom` names added models. */
  cachedModels(ids: string[], custom?: CustomModelRecord[]): Promise<Record<string, boolean>>;
  /**
   * Loads the model (unloading any other), then runs the BOS probe with `probeToken` (one token for the family).
   * `custom`: a model the prebuilt list does not have, appended to the appConfig for this load.
   */
  load(
    modelId: string,
    probeToken: string,
    onProgress?: (p: LoadProgress) => void,
    custom?: CustomModelRecord,
  ): Promise<LoadedModel>;
  complete(req: CompletionRequest, onDelta?: (d: string) => void): Promise<CompletionResult>;
  /** Grammar-constrained JSON through the model's chat API (not streamed); interrupt() stops it too. */
  completeJson(req: JsonRequest): Promise<CompletionResult>;
  /** Ends the running completion (it resolves with finishReason 'abort'); a no-op when none is running. */
  interrupt(): Promise<void>;
  unload(): Promise<void>;
  /**
   * Deletes the model's weights, wasm and config from the browser cache (WebLLM's deleteModelAllInfoInCache);
   * `custom` names an added model, which the prebuilt list does not know.
   */
  deleteCachedModel(modelId: string, custom?: CustomModelRecord): Promise<void>;
  /**
   * Liveness check (the page's watchdog calls it while a call is pending); answers at once with the worker's clock.
   * WebLLM awaits the GPU at every decode step, so a generating worker still answers between tokens.
   */
  ping(): Promise<number>;
}
