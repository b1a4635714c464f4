/**
 * The page's one bridge to the engine worker: a TextEngine plus load/unload/capabilities passthroughs.
 * Cancellation goes through AbortSignal; if the worker dies, pending calls reject with a classified error and the
 * next call starts a fresh worker. A worker can also die without any event (the browser kills it, the GPU process
 * crashes): while a call is pending a watchdog pings it, and enough unanswered pings count as its death.
 */
import { proxy, wrap, type Remote } from 'comlink';
import type {
  CompleteJsonOptions,
  CompleteOptions,
  CompletionRequest,
  CompletionResult,
  JsonRequest,
  TextEngine,
} from '../core/engine';
import { classifyEngineError, EngineError } from '../core/errors';
import { validateCompletionRequest, validateJsonRequest } from '../core/engine';
import { engineErrorFrom } from './webllm-adapter';
import type {
  CustomModelRecord,
  EngineWorkerApi,
  GpuCapabilities,
  ListedModel,
  LoadedModel,
  LoadProgress,
} from './worker-api';

export interface WatchdogTimings {
  /** Pause before each liveness ping while a call is pending. */
  intervalMs: number;
  /** How long one ping may stay unanswered. */
  timeoutMs: number;
  /** Unanswered pings in a row that count the worker as gone. */
  maxMissed: number;
}

/** About 30 s of silence: far longer than any synchronous stretch of a live worker (WebLLM yields every token). */
export const DEFAULT_WATCHDOG: WatchdogTimings = { intervalMs: 5_000, timeoutMs: 5_000, maxMissed: 3 };

export interface EngineClientOptions {
  /** Creates the worker; tests pass their own to reach the Worker object. */
  createWorker?: () => Worker;
  /** Liveness pings while a call is pending (default DEFAULT_WATCHDOG); null turns the watchdog off. */
  watchdog?: WatchdogTimings | null;
}

function defaultWorker(): Worker {
  return new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module', name: 'magpie-engine' });
}

interface Connection {
  worker: Worker;
  api: Remote<EngineWorkerApi>;
  /** Rejecters of calls still waiting on this worker. */
  pending: Set<(err: EngineError) => void>;
  /** The watchdog loop is running for this worker. */
  watched: boolean;
}

/** Whether `answer` settles (either way: a rejection is an answer too) within `ms`. */
function answersWithin(answer: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const done = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    answer.then(done, done);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const ABORTED_RESULT: CompletionResult = { text: '', finishReason: 'abort', usage: { promptTokens: 0, completionTokens: 0 } };

export class EngineClient implements TextEngine {
  private connection: Connection | undefined;
  private loaded: LoadedModel | undefined;
  private readonly createWorker: () => Worker;
  private readonly watchdog: WatchdogTimings | null;

  constructor(options: EngineClientOptions = {}) {
    this.createWorker = options.createWorker ?? defaultWorker;
    this.watchdog = options.watchdog === undefined ? DEFAULT_WATCHDOG : options.watchdog;
  }

  /** The model the current worker holds, as reported by the last successful load. */
  get loadedModel(): LoadedModel | undefined {
    return this.loaded;
  }

  capabilities(): Promise<GpuCapabilities> {
    return this.call((api) => api.capabilities());
  }

  listModels(): Promise<ListedModel[]> {
    return this.call((api) => api.listModels());
  }

  cachedModels(ids: string[], custom?: CustomModelRecord[]): Promise<Record<string, boolean>> {
    return this.call((api) => (custom === undefined ? api.cachedModels(ids) : api.cachedModels(ids, custom)));
  }

  async load(
    modelId: string,
    probeToken: string,
    onProgress?: (p: LoadProgress) => void,
    custom?: CustomModelRecord,
  ): Promise<LoadedModel> {
    this.loaded = undefined;
    const progress = onProgress ? proxy(onProgress) : undefined;
    const model = await this.call((api) =>
      custom === undefined ? api.load(modelId, probeToken, progress) : api.load(modelId, probeToken, progress, custom),
    );
    this.loaded = model;
    return model;
  }

  /** Frees the model's space in the browser cache; the next load downloads it again. */
  deleteCachedModel(modelId: string, custom?: CustomModelRecord): Promise<void> {
    return this.call((api) => (custom === undefined ? api.deleteCachedModel(modelId) : api.deleteCachedModel(modelId, custom)));
  }

  async unload(): Promise<void> {
    this.loaded = undefined;
    if (!this.connection) return;
    await this.call((api) => api.unload());
  }

  async complete(request: CompletionRequest, options: CompleteOptions = {}): Promise<CompletionResult> {
    validateCompletionRequest(request);
    const { onDelta } = options;
    return this.interruptible(options.signal, (api) => api.complete(request, onDelta ? proxy(onDelta) : undefined));
  }

  /** Grammar-constrained JSON from the worker's model (see TextEngine.completeJson); same abort contract as complete(). */
  async completeJson(request: JsonRequest, options: CompleteJsonOptions = {}): Promise<CompletionResult> {
    validateJsonRequest(request);
    return this.interruptible(options.signal, (api) => api.completeJson(request));
  }

  /** A generation call that an AbortSignal interrupts in the worker; engine losses forget the loaded model. */
  private async interruptible(
    signal: AbortSignal | undefined,
    start: (api: Connection['api']) => Promise<CompletionResult>,
  ): Promise<CompletionResult> {
    if (signal?.aborted) return { ...ABORTED_RESULT, usage: { ...ABORTED_RESULT.usage } };
    const connection = this.connect();
    const onAbort = (): void => {
      // Messages keep their order, so the worker sees this after the call it interrupts.
      connection.api.interrupt().catch(() => undefined);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await this.track(connection, start(connection.api));
      // Same contract as the in-worker adapter: an aborted call reports 'abort' even if the engine just finished.
      return signal?.aborted ? { ...result, finishReason: 'abort' } : result;
    } catch (err) {
      const e = err instanceof EngineError ? err : engineErrorFrom(err);
      if (e.kind === 'device-lost' || e.kind === 'model-not-loaded') this.loaded = undefined;
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Interrupts the running completion, if any. */
  async interrupt(): Promise<void> {
    if (this.connection) await this.connection.api.interrupt();
  }

  /**
   * Stops the worker now; pending calls reject ('aborted', or `reason` classified, e.g. to stand for a crash) and
   * the next call starts a fresh worker.
   */
  terminate(reason?: unknown): void {
    this.drop(
      reason === undefined
        ? new EngineError(classifyEngineError({ kind: 'aborted', message: 'The engine worker was stopped.' }))
        : engineErrorFrom(reason),
    );
  }

  private connect(): Connection {
    if (this.connection) return this.connection;
    const worker = this.createWorker();
    const connection: Connection = { worker, api: wrap<EngineWorkerApi>(worker), pending: new Set(), watched: false };
    const onDeath = (event: Event): void => {
      if (this.connection !== connection) return;
      event.preventDefault();
      const message =
        event instanceof ErrorEvent && event.message ? event.message : 'The engine worker stopped unexpectedly.';
      this.drop(engineErrorFrom(message));
    };
    worker.addEventListener('error', onDeath);
    worker.addEventListener('messageerror', onDeath);
    this.connection = connection;
    return connection;
  }

  private drop(reason: EngineError): void {
    const connection = this.connection;
    if (!connection) return;
    this.connection = undefined;
    this.loaded = undefined;
    connection.worker.terminate();
    for (const reject of connection.pending) reject(reason);
    connection.pending.clear();
  }

  private call<T>(work: (api: Remote<EngineWorkerApi>) => Promise<T>): Promise<T> {
    const connection = this.connect();
    return this.track(connection, work(connection.api)).catch((err: unknown) => {
      throw err instanceof EngineError ? err : engineErrorFrom(err);
    });
  }

  /** Settles with the worker's answer, or rejects when the worker dies (or stops answering) first. */
  private track<T>(connection: Connection, answer: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const rejectOnDeath = (err: EngineError): void => reject(err);
      connection.pending.add(rejectOnDeath);
      answer.then(resolve, reject).finally(() => connection.pending.delete(rejectOnDeath));
      void this.watch(connection);
    });
  }

  /**
   * While calls are pending: ping the worker after every interval; after `maxMissed` pings in a row go unanswered,
   * drop it (pending calls reject 'engine-unresponsive', an engine loss) so the next call starts a fresh worker.
   * comlink answers a ping between the awaits of a running call, so only a dead or frozen worker stays silent.
   */
  private async watch(connection: Connection): Promise<void> {
    const timings = this.watchdog;
    if (!timings || connection.watched) return;
    connection.watched = true;
    const live = (): boolean => this.connection === connection && connection.pending.size > 0;
    try {
      let missed = 0;
      while (live()) {
        await sleep(timings.intervalMs);
        if (!live()) break;
        // A worker without ping() (an older build) rejects the call: that answer proves it alive too.
        missed = (await answersWithin(connection.api.ping(), timings.timeoutMs)) ? 0 : missed + 1;
        if (missed >= timings.maxMissed && live()) {
          const silentS = Math.round((missed * (timings.intervalMs + timings.timeoutMs)) / 1000);
          this.drop(
            new EngineError(
              classifyEngineError({
                kind: 'engine-unresponsive',
                message: `The engine stopped responding: its worker answered none of ${missed} liveness checks (about ${silentS} s).`,
              }),
            ),
          );
        }
      }
    } finally {
      connection.watched = false;
    }
  }
}
