/**
 * The engine worker's logic, without the Worker: load (with progress and the BOS probe), complete, interrupt,
 * unload. workers/engine.worker.ts wires it to web-llm and comlink; unit tests drive it directly.
 * Errors leave as plain Errors whose name is the original (WebLLM) name, because comlink keeps only name and message.
 */
import { releaseProxy } from 'comlink';
import { probeAddsBos, type CompletionRequest, type CompletionResult, type JsonRequest } from '../core/engine';
import { EngineError } from '../core/errors';
import { explainLoadFailure } from './load-failure';
import { WebLLMTextEngine, type MLCEngineLike } from './webllm-adapter';
import {
  parseProgress,
  type CustomModelRecord,
  type EngineWorkerApi,
  type GpuCapabilities,
  type ListedModel,
  type LoadedModel,
} from './worker-api';

export interface EngineWorkerDeps {
  capabilities(): Promise<GpuCapabilities>;
  listModels(): ListedModel[] | Promise<ListedModel[]>;
  /** Whether the model's weights are in the browser cache; may throw for unknown ids (reported as false). */
  isCached(modelId: string, custom?: CustomModelRecord): Promise<boolean>;
  /** The model's context window in tokens. */
  contextWindow(modelId: string, custom?: CustomModelRecord): number;
  /** Removes the model from the browser cache; absent: deleting is not supported (rejects). */
  deleteCached?(modelId: string, custom?: CustomModelRecord): Promise<void>;
}

function namedError(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

/** A plain Error with the most specific name we know: the WebLLM error behind an EngineError, if any. */
export function toWireError(err: unknown): Error {
  const source = err instanceof EngineError && err.cause !== undefined ? err.cause : err;
  if (source instanceof Error) return namedError(source.name, source.message);
  if (typeof source === 'string') return new Error(source);
  if (source && typeof source === 'object') {
    const o = source as { name?: unknown; message?: unknown };
    return namedError(typeof o.name === 'string' ? o.name : 'Error', typeof o.message === 'string' ? o.message : String(source));
  }
  return new Error(String(source));
}

async function wire<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw toWireError(err);
  }
}

export function createEngineWorkerApi(
  makeEngine: (modelId: string, custom?: CustomModelRecord) => MLCEngineLike | Promise<MLCEngineLike>,
  deps: EngineWorkerDeps,
): EngineWorkerApi {
  let engine: MLCEngineLike | undefined;
  let textEngine: WebLLMTextEngine | undefined;
  let latest: MLCEngineLike | undefined;
  let loadGeneration = 0;
  const running = new Set<AbortController>();

  const dropCurrent = async (): Promise<void> => {
    const old = engine;
    engine = undefined;
    textEngine = undefined;
    for (const c of running) c.abort();
    if (old) await old.unload().catch(() => undefined);
  };

  return {
    capabilities: () => wire(() => deps.capabilities()),

    listModels: () => wire(async () => deps.listModels()),

    cachedModels: (ids, custom = []) =>
      wire(async () => {
        const entries = await Promise.all(
          ids.map(async (id) => {
            const record = custom.find((c) => c.model_id === id);
            return [id, await deps.isCached(id, record).catch(() => false)] as const;
          }),
        );
        return Object.fromEntries(entries);
      }),

    load: (modelId, probeToken, onProgress, custom) =>
      wire(async () => {
        if (custom !== undefined && custom.model_id !== modelId) {
          throw namedError('ModelNotFoundError', `The custom model record is for ${custom.model_id}, not ${modelId}.`);
        }
        const generation = ++loadGeneration;
        const superseded = (): boolean => generation !== loadGeneration;
        await dropCurrent();
        const next = await makeEngine(modelId, custom);
        latest = next;
        const abandon = async (): Promise<never> => {
          // The real worker reuses one MLCEngine, which the newer load is using now: leave that one alone.
          if (next !== latest) await next.unload().catch(() => undefined);
          throw namedError('AbortError', `Loading ${modelId} was superseded by another load.`);
        };
        let progressSeen: Promise<void> | undefined;
        next.setInitProgressCallback((report) => {
          if (!superseded()) progressSeen = notify(onProgress, parseProgress(report)) ?? progressSeen;
        });
        try {
          await next.reload(modelId);
        } catch (err) {
          if (superseded()) return abandon();
          throw explainLoadFailure(err, modelId, custom);
        } finally {
          await progressSeen;
          release(onProgress);
        }
        // WebLLM's reload returns quietly when a later unload aborted it; treat that as superseded.
        if (superseded()) return abandon();
        // Owned from here, so a failing probe still leaves it for unload() to free.
        engine = next;
        const text = new WebLLMTextEngine(next);
        let addsBos: boolean;
        try {
          addsBos = await probeAddsBos(text, probeToken);
        } catch (err) {
          if (superseded()) return abandon();
          throw err;
        }
        if (superseded()) return abandon();
        textEngine = text;
        const model: LoadedModel = { modelId, addsBos, contextWindow: deps.contextWindow(modelId, custom) };
        return model;
      }),

    complete: (req: CompletionRequest, onDelta?: (d: string) => void): Promise<CompletionResult> => {
      // The controller exists before the first await, so an interrupt() posted right after complete() finds it.
      const controller = new AbortController();
      running.add(controller);
      return wire(async () => {
        try {
          if (!textEngine) {
            throw namedError('ModelNotLoadedError', 'No model is loaded in the engine worker. Load a model first.');
          }
          let deltasSeen: Promise<void> | undefined;
          const result = await textEngine.complete(req, {
            signal: controller.signal,
            onDelta: onDelta ? (d) => (deltasSeen = notify(onDelta, d) ?? deltasSeen) : undefined,
          });
          await deltasSeen;
          return result;
        } catch (err) {
          // WebLLM unloads itself when the GPU device is lost: forget the model so the page reloads it.
          const kind = err instanceof EngineError ? err.kind : undefined;
          if (kind === 'device-lost' || kind === 'model-not-loaded') {
            textEngine = undefined;
          }
          throw err;
        } finally {
          running.delete(controller);
          release(onDelta);
        }
      });
    },

    completeJson: (req: JsonRequest): Promise<CompletionResult> => {
      const controller = new AbortController();
      running.add(controller);
      return wire(async () => {
        try {
          if (!textEngine) {
            throw namedError('ModelNotLoadedError', 'No model is loaded in the engine worker. Load a model first.');
          }
          return await textEngine.completeJson(req, { signal: controller.signal });
        } catch (err) {
          const kind = err instanceof EngineError ? err.kind : undefined;
          if (kind === 'device-lost' || kind === 'model-not-loaded') textEngine = undefined;
          throw err;
        } finally {
          running.delete(controller);
        }
      });
    },

    interrupt: async () => {
      for (const c of running) c.abort();
    },

    ping: async () => Date.now(),

    unload: () =>
      wire(async () => {
        loadGeneration++;
        await dropCurrent();
      }),

    deleteCachedModel: (modelId, custom) =>
      wire(async () => {
        if (!deps.deleteCached) throw new Error('This engine cannot delete cached models.');
        if (custom !== undefined && custom.model_id !== modelId) {
          throw namedError('ModelNotFoundError', `The custom model record is for ${custom.model_id}, not ${modelId}.`);
        }
        await (custom === undefined ? deps.deleteCached(modelId) : deps.deleteCached(modelId, custom));
      }),
  };
}

/** Frees the message port behind a callback the page passed with comlink.proxy (one per call otherwise leaks). */
function release(callback: unknown): void {
  if (typeof callback !== 'function') return;
  const free: unknown = (callback as unknown as Record<symbol, unknown>)[releaseProxy];
  if (typeof free === 'function') (free as () => void)();
}

/**
 * Calls a callback that may be a comlink proxy without letting its failure escape. Returns the call's
 * acknowledgement when there is one: awaiting the last one guarantees the page has seen every call, since the
 * callback's port and the result's port are not ordered with each other.
 */
function notify<T>(callback: ((value: T) => unknown) | undefined, value: T): Promise<void> | undefined {
  if (!callback) return undefined;
  try {
    const r = callback(value);
    if (r instanceof Promise) return r.then(() => undefined, () => undefined);
  } catch {
    // A failing progress or delta listener must not break the generation.
  }
  return undefined;
}
