/**
 * The app's one controller: glues the engine (worker), the IndexedDB store, the run loop and the rate meter, and
 * exposes an immutable state snapshot with subscribe/notify. No DOM rendering here; the UI only reads `state` and
 * calls the methods.
 */
import type { CompleteOptions, CompletionRequest, CompletionResult } from '../core/engine';
import { classifyEngineError, type ClassifiedError } from '../core/errors';
import type { ExportFormat } from '../core/export';
import { buildModelOptions, defaultModelId, type ModelOption } from '../core/models';
import { emptyCounters, type MagpieRecord, type Run, type RunSettings } from '../core/record';
import { runMagpie, type GenerationStep } from '../core/runner';
import { RateMeter, type RunStats } from '../core/stats';
import { getTemplate, templateIdForModel } from '../core/templates/registry';
import type { ChatTemplate } from '../core/templates/types';
import {
  SCRIPTED_MODEL_PREFIX,
  type GpuCapabilities,
  type ListedModel,
  type LoadedModel,
  type LoadProgress,
} from '../engine/worker-api';
import type { MagpieStore } from '../storage/db';
import { downloadRun } from '../ui/download';

/** What the session needs from the engine client (EngineClient implements it). */
export interface SessionEngine {
  capabilities(): Promise<GpuCapabilities>;
  listModels(): Promise<ListedModel[]>;
  cachedModels(ids: string[]): Promise<Record<string, boolean>>;
  load(modelId: string, probeToken: string, onProgress: (p: LoadProgress) => void): Promise<LoadedModel>;
  complete(request: CompletionRequest, options?: CompleteOptions): Promise<CompletionResult>;
}

/** What the session needs from storage (MagpieStore implements it). */
export type SessionStore = Pick<
  MagpieStore,
  | 'createRun'
  | 'getRun'
  | 'listRuns'
  | 'updateRun'
  | 'deleteRun'
  | 'commitRecord'
  | 'commitRejection'
  | 'countRecords'
  | 'getRecords'
  | 'iterateRecords'
  | 'requestPersistence'
>;

export type LoadState =
  | { status: 'idle' }
  | { status: 'loading'; modelId: string; progress: LoadProgress | null }
  | { status: 'ready'; model: LoadedModel }
  | { status: 'error'; modelId: string; error: ClassifiedError };

/** The generation in flight: which step, and only its current text (older text is dropped). */
export interface LiveGeneration {
  runId: string;
  step: GenerationStep | null;
  attempt: number;
  text: string;
}

export interface SessionState {
  /** null while the capability check runs. */
  gpu: GpuCapabilities | null;
  models: ModelOption[];
  cachedModelIds: ReadonlySet<string>;
  selectedModelId: string;
  load: LoadState;
  /** Most recently updated first. */
  runs: Run[];
  selectedRunId: string | null;
  /** Records of the selected run, newest first, as many pages as loaded. */
  records: MagpieRecord[];
  recordsTotal: number;
  activeRunId: string | null;
  live: LiveGeneration | null;
  stats: RunStats | null;
  /** The run `stats` belong to (kept after the run ends, so its final pace stays visible). */
  statsRunId: string | null;
  /** The last run's failure, with advice. */
  runError: ClassifiedError | null;
  /** Storage or other app-level problems, shown as a banner. */
  notice: string | null;
  ready: boolean;
}

export const RECORDS_PAGE_SIZE = 20;

function initialState(): SessionState {
  return {
    gpu: null,
    models: [],
    cachedModelIds: new Set(),
    selectedModelId: '',
    load: { status: 'idle' },
    runs: [],
    selectedRunId: null,
    records: [],
    recordsTotal: 0,
    activeRunId: null,
    live: null,
    stats: null,
    statsRunId: null,
    runError: null,
    notice: null,
    ready: false,
  };
}

/** "Llama-3.2-3B-Instruct-q4f32_1-MLC" → "Llama-3.2-3B": the model part of a run label. */
export function shortModelName(modelId: string): string {
  return modelId
    .replace(/^scripted:/, '')
    .replace(/-q\d\w*?-MLC.*$/, '')
    .replace(/-(Instruct|Chat|it)$/i, '');
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** e.g. "Llama-3.2-3B 2026-11-23 14:05" (local time). */
export function runLabel(modelId: string, at: Date): string {
  const date = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
  return `${shortModelName(modelId)} ${date} ${pad(at.getHours())}:${pad(at.getMinutes())}`;
}

function cachedIds(answer: Record<string, boolean>): Set<string> {
  return new Set(Object.entries(answer).filter(([, cached]) => cached).map(([id]) => id));
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

type Listener = (state: SessionState) => void;

export interface SessionOptions {
  /** Frame scheduler for notifications (requestAnimationFrame in the page). */
  schedule?: (flush: () => void) => void;
  now?: () => number;
}

export class MagpieSession {
  private current: SessionState = initialState();
  private readonly listeners = new Set<Listener>();
  private flushQueued = false;
  private abort: AbortController | null = null;
  private meter: RateMeter | null = null;
  private selectToken = 0;
  private readonly schedule: (flush: () => void) => void;
  private readonly now: () => number;

  constructor(
    private readonly engine: SessionEngine,
    private readonly store: SessionStore,
    options: SessionOptions = {},
  ) {
    this.schedule =
      options.schedule ??
      ((flush) => {
        if (typeof requestAnimationFrame === 'function' && typeof document !== 'undefined' && !document.hidden) {
          requestAnimationFrame(flush);
        } else {
          setTimeout(flush, 16);
        }
      });
    this.now = options.now ?? (() => Date.now());
  }

  get state(): SessionState {
    return this.current;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Applies a patch now and notifies at most once per frame, so a token stream costs one render per frame.
   * `urgent` notifies at once: discrete events (a new load phase, a new step) must each be seen, however fast.
   */
  private patch(p: Partial<SessionState>, urgent = false): void {
    this.current = { ...this.current, ...p };
    if (urgent) {
      for (const l of this.listeners) l(this.current);
      return;
    }
    if (this.flushQueued) return;
    this.flushQueued = true;
    this.schedule(() => {
      this.flushQueued = false;
      for (const l of this.listeners) l(this.current);
    });
  }

  // --- start-up -------------------------------------------------------------------------------------------------

  /** Reads stored runs (marking runs left "running" by a closed tab as stopped), the GPU and the model list. */
  async init(): Promise<void> {
    await Promise.all([this.initRuns(), this.initEngine()]);
    this.patch({ ready: true });
  }

  private async initRuns(): Promise<void> {
    try {
      const runs = await this.store.listRuns();
      for (const run of runs) {
        // No tab runs it any more (this tab just started): it was interrupted and can be resumed.
        if (run.status === 'running') await this.store.updateRun(run.id, { status: 'stopped' });
      }
      const fresh = await this.store.listRuns();
      this.patch({ runs: fresh });
      const first = fresh[0];
      if (first) await this.selectRun(first.id);
    } catch (err) {
      this.patch({ notice: `Could not read saved runs: ${messageOf(err)}` });
    }
  }

  private async initEngine(): Promise<void> {
    let shaderF16 = false;
    try {
      const gpu = await this.engine.capabilities();
      shaderF16 = gpu.adapter?.shaderF16 ?? false;
      this.patch({ gpu });
    } catch (err) {
      this.patch({ gpu: { webgpu: false, problem: classifyEngineError(err) } });
    }
    try {
      const models = buildModelOptions(await this.engine.listModels(), shaderF16);
      const selected = defaultModelId(models, shaderF16) ?? models[0]?.id ?? '';
      this.patch({ models, selectedModelId: selected });
      const ids = models.map((m) => m.id);
      this.patch({ cachedModelIds: cachedIds(await this.engine.cachedModels(ids)) });
    } catch (err) {
      this.patch({ notice: `Could not list models: ${messageOf(err)}` });
    }
  }

  // --- model ----------------------------------------------------------------------------------------------------

  selectModel(modelId: string): void {
    this.patch({ selectedModelId: modelId });
  }

  templateFor(modelId: string): ChatTemplate | undefined {
    const option = this.current.models.find((m) => m.id === modelId);
    // Scripted test models carry a real model name after the prefix (and fault options after '?').
    const name = modelId.startsWith(SCRIPTED_MODEL_PREFIX) ? modelId.slice(SCRIPTED_MODEL_PREFIX.length).split('?')[0] ?? '' : modelId;
    const id = option?.templateId ?? templateIdForModel(name);
    return id === undefined ? undefined : getTemplate(id);
  }

  async loadModel(modelId: string = this.current.selectedModelId): Promise<void> {
    if (this.current.activeRunId) return;
    const template = this.templateFor(modelId);
    if (!template) {
      this.patch({
        load: {
          status: 'error',
          modelId,
          error: {
            kind: 'model-not-found',
            message: `No chat template is known for ${modelId}.`,
            advice: 'Pick a model from the list.',
            recoverable: false,
          },
        },
      });
      return;
    }
    this.patch({ load: { status: 'loading', modelId, progress: null }, selectedModelId: modelId }, true);
    try {
      const model = await this.engine.load(modelId, template.probeToken, (progress) => {
        const load = this.current.load;
        if (load.status !== 'loading') return;
        this.patch({ load: { status: 'loading', modelId, progress } }, load.progress?.phase !== progress.phase);
      });
      const cached = new Set(this.current.cachedModelIds);
      cached.add(modelId);
      this.patch({ load: { status: 'ready', model }, cachedModelIds: cached });
    } catch (err) {
      this.patch({ load: { status: 'error', modelId, error: classifyEngineError(err) } });
    }
  }

  // --- runs -----------------------------------------------------------------------------------------------------

  /** Creates a run for the loaded model and runs it. */
  async startRun(settings: RunSettings): Promise<void> {
    const load = this.current.load;
    if (load.status !== 'ready' || this.current.activeRunId) return;
    const template = this.templateFor(load.model.modelId);
    if (!template) return;
    const t = this.now();
    const run: Run = {
      id: crypto.randomUUID(),
      label: runLabel(load.model.modelId, new Date(t)),
      createdAt: t,
      updatedAt: t,
      status: 'created',
      modelId: load.model.modelId,
      engine: load.model.modelId.startsWith(SCRIPTED_MODEL_PREFIX) ? 'scripted' : 'webllm',
      templateId: template.id,
      engineAddsBos: load.model.addsBos,
      settings,
      counters: emptyCounters(),
    };
    try {
      await this.store.createRun(run);
      // Ask once a user has data worth keeping; browsers may grant it silently or ignore it.
      void this.store.requestPersistence().catch(() => false);
    } catch (err) {
      this.patch({ notice: `Could not save the run: ${messageOf(err)}` });
      return;
    }
    this.patch({ runs: [run, ...this.current.runs] });
    await this.selectRun(run.id);
    await this.execute(run, template);
  }

  /** Why a stored run cannot be resumed now, or null when it can. */
  resumeBlocker(run: Run): string | null {
    if (run.status === 'done') return 'This run is complete.';
    if (this.current.activeRunId) return 'Another run is in progress.';
    const load = this.current.load;
    if (load.status !== 'ready' || load.model.modelId !== run.modelId) return `Load ${run.modelId} to resume this run.`;
    return null;
  }

  /** Runs a stopped (or failed) run again from its stored counters. */
  async resumeRun(runId: string): Promise<void> {
    const stored = await this.store.getRun(runId);
    if (!stored || this.resumeBlocker(stored) !== null) return;
    const load = this.current.load;
    if (load.status !== 'ready') return;
    const template = getTemplate(stored.templateId);
    let run = stored;
    if (stored.engineAddsBos !== load.model.addsBos) {
      // The BOS probe is re-measured at each load; prompts must follow what this engine does now.
      run = await this.store.updateRun(runId, { engineAddsBos: load.model.addsBos });
    }
    if (this.current.selectedRunId !== runId) await this.selectRun(runId);
    await this.execute(run, template);
  }

  stop(): void {
    this.abort?.abort();
  }

  private async execute(run: Run, template: ChatTemplate): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    const meter = new RateMeter(60_000, this.now);
    this.meter = meter;
    const remaining = (accepted: number) => Math.max(0, run.settings.count - accepted);
    let accepted = run.counters.accepted;
    this.patch({
      activeRunId: run.id,
      runError: null,
      live: { runId: run.id, step: null, attempt: run.counters.attempts + 1, text: '' },
      stats: meter.stats(remaining(accepted)),
      statsRunId: run.id,
    });
    this.replaceRun({ ...run, status: 'running' });
    const outcome = await runMagpie({
      run,
      engine: this.engine,
      template,
      store: this.store,
      signal: abort.signal,
      now: this.now,
      events: {
        onStepStart: (step, attempt) => this.patch({ live: { runId: run.id, step, attempt, text: '' } }, true),
        onDelta: (step, delta) => {
          const live = this.current.live;
          if (live && live.step === step) this.patch({ live: { ...live, text: live.text + delta } });
        },
        onTokens: (n) => {
          meter.addTokens(n);
          this.patch({ stats: meter.stats(remaining(accepted)) });
        },
        onRecord: (record, counters) => {
          accepted = counters.accepted;
          meter.addRecord();
          this.patch({ stats: meter.stats(remaining(accepted)) });
          this.replaceRun({ ...this.runById(run.id, run), counters });
          if (this.current.selectedRunId === run.id) {
            const shown = this.current.records;
            // Keep the list length stable once a page is full, so a long run does not grow the DOM without bound.
            const records = [record, ...shown].slice(0, Math.max(RECORDS_PAGE_SIZE, shown.length));
            this.patch({ records, recordsTotal: this.current.recordsTotal + 1 }, true);
          }
        },
        onRejected: (_rejection, counters) => this.replaceRun({ ...this.runById(run.id, run), counters }),
      },
    }).catch((err: unknown) => {
      // The runner records engine failures itself; this is a storage failure (e.g. quota) while finishing.
      return { status: 'failed' as const, counters: this.runById(run.id, run).counters, error: classifyEngineError(err) };
    });
    this.abort = null;
    this.meter = null;
    const fresh = (await this.store.getRun(run.id).catch(() => undefined)) ?? {
      ...this.runById(run.id, run),
      status: outcome.status,
      counters: outcome.counters,
    };
    this.replaceRun(fresh);
    const patch: Partial<SessionState> = {
      activeRunId: null,
      live: null,
      runError: outcome.error ?? null,
      stats: meter.stats(remaining(fresh.counters.accepted)),
    };
    // After a lost device the engine has unloaded itself: show the load error so the picker offers a reload.
    if (outcome.error && (outcome.error.kind === 'device-lost' || outcome.error.kind === 'model-not-loaded')) {
      patch.load = { status: 'error', modelId: run.modelId, error: outcome.error };
    }
    this.patch(patch);
  }

  /** Live stats for the running run (the UI calls this on a timer so the ETA keeps moving between records). */
  refreshStats(): void {
    const run = this.current.activeRunId ? this.runById(this.current.activeRunId) : undefined;
    if (this.meter && run) this.patch({ stats: this.meter.stats(Math.max(0, run.settings.count - run.counters.accepted)) });
  }

  private runById(id: string, fallback?: Run): Run {
    const found = this.current.runs.find((r) => r.id === id) ?? fallback;
    if (!found) throw new Error(`Unknown run ${id}`);
    return found;
  }

  private replaceRun(run: Run): void {
    const runs = this.current.runs.some((r) => r.id === run.id)
      ? this.current.runs.map((r) => (r.id === run.id ? run : r))
      : [run, ...this.current.runs];
    this.patch({ runs });
  }

  async selectRun(runId: string | null): Promise<void> {
    const token = ++this.selectToken;
    this.patch({ selectedRunId: runId, records: [], recordsTotal: 0 });
    if (runId === null) return;
    try {
      const [total, records] = await Promise.all([
        this.store.countRecords(runId),
        this.store.getRecords(runId, { offset: 0, limit: RECORDS_PAGE_SIZE, order: 'desc' }),
      ]);
      if (token !== this.selectToken) return;
      this.patch({ records, recordsTotal: total });
    } catch (err) {
      if (token === this.selectToken) this.patch({ notice: `Could not read records: ${messageOf(err)}` });
    }
  }

  /** Next page of the selected run's records (older ones). */
  async loadMoreRecords(): Promise<void> {
    const runId = this.current.selectedRunId;
    if (!runId) return;
    const token = this.selectToken;
    const offset = this.current.records.length;
    try {
      const page = await this.store.getRecords(runId, { offset, limit: RECORDS_PAGE_SIZE, order: 'desc' });
      if (token !== this.selectToken) return;
      const seen = new Set(this.current.records.map((r) => r.uuid));
      this.patch({ records: [...this.current.records, ...page.filter((r) => !seen.has(r.uuid))] });
    } catch (err) {
      this.patch({ notice: `Could not read records: ${messageOf(err)}` });
    }
  }

  async deleteRun(runId: string): Promise<void> {
    if (this.current.activeRunId === runId) return;
    try {
      await this.store.deleteRun(runId);
    } catch (err) {
      this.patch({ notice: `Could not delete the run: ${messageOf(err)}` });
      return;
    }
    this.patch({ runs: this.current.runs.filter((r) => r.id !== runId) });
    if (this.current.selectedRunId === runId) await this.selectRun(this.current.runs[0]?.id ?? null);
  }

  /** Streams the run's export to a file download; returns the file name. */
  async download(runId: string, format: ExportFormat): Promise<string | undefined> {
    try {
      const run = (await this.store.getRun(runId)) ?? this.runById(runId);
      return await downloadRun(this.store, run, format);
    } catch (err) {
      this.patch({ notice: `Export failed: ${messageOf(err)}` });
      return undefined;
    }
  }

  dismissNotice(): void {
    this.patch({ notice: null });
  }
}
