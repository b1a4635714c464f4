/**
 * The app's one controller: glues the engine (worker), the IndexedDB store, the run loop and the rate meter, and
 * exposes an immutable state snapshot with subscribe/notify. No DOM rendering here; the UI only reads `state` and
 * calls the methods.
 */
import type { TextEngine } from '../core/engine';
import { classifyEngineError, type ClassifiedError } from '../core/errors';
import type { ExportFormat } from '../core/export';
import { buildModelOptions, defaultModelId, type ModelOption } from '../core/models';
import { emptyCounters, type MagpieRecord, type Run, type RunSettings } from '../core/record';
import { runMagpie, type GenerationStep, type RunOutcome } from '../core/runner';
import { DEFAULT_LOSS_POLICY, LossWindow, assertTransition, isActiveStatus, isEngineLoss, isResumable, type LossPolicy } from '../core/run-state';
import { RateMeter, type RunStats } from '../core/stats';
import { getTemplate, templateIdForModel } from '../core/templates/registry';
import { modeProducer, withManualJudgement } from '../core/modes/producer';
import { cleanSystemPromptDraft, systemPromptDraftRequest } from '../core/modes/system-prompts';
import { buildRecipe, describeRecipeErrors, recipeTemplate, validateForTemplate, type ModeSettings, type Recipe } from '../core/recipe';
import type { ChatTemplate, FamilyTemplate } from '../core/templates/types';
import { buildCustomTemplate, type CustomTemplateSpec } from '../core/custom-template';
import { samePrompts } from '../core/template-compat';
import {
  browserCustomModelStore,
  templateForCustomModel,
  toWorkerRecord,
  type CustomModel,
  type CustomModelStore,
} from './custom-models';
import { defaultChoice, familyVariants, registryTemplate, withQuirk, type QuirkKey, type TemplateChoice } from './template-choice';
import {
  SCRIPTED_MODEL_PREFIX,
  type CustomModelRecord,
  type EngineWorkerApi,
  type GpuCapabilities,
  type ListedModel,
  type LoadedModel,
  type LoadProgress,
} from '../engine/worker-api';
import type { MagpieStore } from '../storage/db';
import { downloadRun } from '../ui/download';
import type { RemoteEngine } from './server-engine';
import { RunCoordinator, type ReceivedMessage, type RunLease } from './run-coordination';
import {
  WakeLockKeeper,
  askNotificationPermission,
  loadPreferences,
  notify,
  readStorageReport,
  savePreferences,
  type RunPreferences,
  type StorageReport,
} from './run-environment';

/** What the session needs from the engine client (EngineClient implements it); the rest is optional. */
export type SessionEngine = TextEngine &
  Pick<EngineWorkerApi, 'capabilities' | 'listModels' | 'cachedModels' | 'load'> &
  Partial<Pick<EngineWorkerApi, 'deleteCachedModel'>>;

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
  | 'updateRecord'
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
  /** Runs another tab is generating right now (it holds the run's lock); this tab shows their progress. */
  elsewhere: ReadonlySet<string>;
  /** Space used and available, for data and for cached models; null until measured or when unknown. */
  storage: StorageReport | null;
  /** Wake lock and end-of-run notification choices. */
  prefs: RunPreferences;
  /** List hidden models too (base, math, code, vision, reasoning distills). */
  showAllModels: boolean;
  /** Models the user added (by URL, or prebuilt ones the registry does not know), saved in localStorage. */
  customModels: CustomModel[];
  /** The template variant and quirks the next run of the selected model uses; null when it has no template. */
  templateChoice: TemplateChoice | null;
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
    elsewhere: new Set(),
    storage: null,
    prefs: { wakeLock: false, notifyOnEnd: false },
    showAllModels: false,
    customModels: [],
    templateChoice: null,
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
  /** Cross-tab locks and messages (default: navigator.locks and BroadcastChannel 'magpie-web'). */
  coordinator?: RunCoordinator;
  /** When repeated engine losses pause a run instead of reloading the model again. */
  lossPolicy?: LossPolicy;
  /** Test builds: extra (e.g. fault-injecting scripted) model ids to offer in the picker. */
  extraModelIds?: readonly string[];
  /** Where custom models are saved (default: localStorage). */
  customModels?: CustomModelStore;
}

export class MagpieSession {
  private current: SessionState = initialState();
  private readonly listeners = new Set<Listener>();
  private flushQueued = false;
  private abort: AbortController | null = null;
  /** An OpenAI-compatible server in use instead of the in-browser model (server-engine.ts hands it over). */
  private remote: RemoteEngine | null = null;
  /** The in-browser model's load state, kept while a server is in use. */
  private webgpuLoad: LoadState | null = null;
  private meter: RateMeter | null = null;
  private selectToken = 0;
  private readonly schedule: (flush: () => void) => void;
  private readonly now: () => number;
  private readonly coordinator: RunCoordinator;
  private readonly lossPolicy: LossPolicy;
  private readonly extraModelIds: readonly string[];
  private readonly wakeLock = new WakeLockKeeper();
  /** Lock requests of runs other tabs generate: granted to this tab when the runner tab goes away. */
  private readonly watching = new Map<string, AbortController>();
  /** The worker's model list and the GPU's f16 support, kept to rebuild the picker ("show all", custom models). */
  private listed: ListedModel[] = [];
  private shaderF16 = false;
  private readonly customStore: CustomModelStore;

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
    this.coordinator = options.coordinator ?? new RunCoordinator();
    this.lossPolicy = options.lossPolicy ?? DEFAULT_LOSS_POLICY;
    this.extraModelIds = options.extraModelIds ?? [];
    this.customStore = options.customModels ?? browserCustomModelStore();
    this.current = { ...this.current, prefs: loadPreferences() };
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
    this.coordinator.subscribe((message) => void this.onTabMessage(message));
    await Promise.all([this.initRuns(), this.initEngine()]);
    this.patch({ ready: true });
    void this.refreshStorage();
  }

  private async initRuns(): Promise<void> {
    try {
      const runs = await this.store.listRuns();
      // A run left loading/running is orphaned only if no tab holds its lock; otherwise this tab watches it.
      for (const run of runs) if (isActiveStatus(run.status)) await this.adoptOrWatch(run.id);
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
      this.shaderF16 = shaderF16;
      this.listed = this.withExtraModels(await this.engine.listModels());
      const customModels = this.customStore.list();
      const models = buildModelOptions(this.listed, shaderF16, { showAll: this.current.showAllModels });
      const selected = defaultModelId(models, shaderF16) ?? models[0]?.id ?? '';
      this.patch({ models, customModels });
      this.selectModel(selected);
      await this.refreshCached();
    } catch (err) {
      this.patch({ notice: `Could not list models: ${messageOf(err)}` });
    }
  }

  // --- model ----------------------------------------------------------------------------------------------------

  selectModel(modelId: string): void {
    const template = this.templateFor(modelId);
    // A new model starts from its family's reference defaults; the same model keeps the user's choice.
    const keep = this.current.templateChoice?.modelId === modelId;
    const templateChoice = keep ? this.current.templateChoice : template ? defaultChoice(modelId, template) : null;
    this.patch({ selectedModelId: modelId, templateChoice });
  }

  /** Lists hidden models too (or not); the selection stays when it is still listed. */
  setShowAllModels(showAll: boolean): void {
    const models = buildModelOptions(this.listed, this.shaderF16, { showAll });
    this.patch({ models, showAllModels: showAll });
    const selected = this.current.selectedModelId;
    const listed = models.some((m) => m.id === selected) || this.customModelFor(selected) !== undefined;
    if (!listed) this.selectModel(defaultModelId(models, this.shaderF16) ?? models[0]?.id ?? '');
    void this.refreshCached();
  }

  /** Which listed and custom models have their weights in the browser cache. */
  private async refreshCached(): Promise<void> {
    const custom = this.current.customModels;
    const ids = [...new Set([...this.current.models.map((m) => m.id), ...custom.map((c) => c.modelId)])];
    const records = custom.map(toWorkerRecord).filter((r): r is CustomModelRecord => r !== undefined);
    try {
      const answer = await (records.length > 0 ? this.engine.cachedModels(ids, records) : this.engine.cachedModels(ids));
      this.patch({ cachedModelIds: cachedIds(answer) });
    } catch (err) {
      this.patch({ notice: `Could not read the model cache: ${messageOf(err)}` });
    }
  }

  /** The template variant (official or reference pre-query) for the selected model's next run. */
  setTemplateVariant(templateId: string): void {
    const choice = this.current.templateChoice;
    if (!choice || this.customModelFor(choice.modelId) || !registryTemplate(templateId)) return;
    this.patch({ templateChoice: { ...choice, templateId } });
  }

  /** Turns one of the family's quirks on or off for the selected model's next run. */
  setQuirk(key: QuirkKey, on: boolean): void {
    const choice = this.current.templateChoice;
    const template = choice ? this.choiceTemplate(choice) : undefined;
    if (!choice || !template) return;
    this.patch({ templateChoice: withQuirk(choice, key, on, template) });
  }

  /** The template a choice stands for (a custom model's own, or the registry variant). */
  choiceTemplate(choice: TemplateChoice): FamilyTemplate | undefined {
    const custom = this.customModelFor(choice.modelId);
    if (custom) return this.templateFor(custom.modelId);
    return registryTemplate(choice.templateId);
  }

  customModelFor(modelId: string): CustomModel | undefined {
    return this.current.customModels.find((m) => m.modelId === modelId);
  }

  /** Prebuilt models with no template here: they can be added as custom models with a derived template. */
  unknownPrebuiltModels(): ListedModel[] {
    return this.listed.filter(
      (m) => !m.model_id.startsWith(SCRIPTED_MODEL_PREFIX) && templateIdForModel(m.model_id) === undefined,
    );
  }

  /** Every model id the picker knows (prebuilt, scripted and custom), so a new custom name cannot shadow one. */
  knownModelIds(): string[] {
    return [...this.listed.map((m) => m.model_id), ...this.current.customModels.map((m) => m.modelId)];
  }

  /** Saves a custom model (replacing one with the same id) and selects it. */
  addCustomModel(model: CustomModel): void {
    try {
      const customModels = this.customStore.save(model);
      this.patch({ customModels });
    } catch (err) {
      this.patch({ notice: `Could not save the custom model: ${messageOf(err)}` });
      return;
    }
    if (this.current.templateChoice?.modelId === model.modelId) this.patch({ templateChoice: null });
    this.selectModel(model.modelId);
    void this.refreshCached();
  }

  removeCustomModel(modelId: string): void {
    const load = this.current.load;
    if (this.current.activeRunId && load.status === 'ready' && load.model.modelId === modelId) return;
    try {
      this.patch({ customModels: this.customStore.remove(modelId) });
    } catch (err) {
      this.patch({ notice: `Could not remove the custom model: ${messageOf(err)}` });
      return;
    }
    if (this.current.selectedModelId === modelId) {
      const models = this.current.models;
      this.selectModel(defaultModelId(models, this.shaderF16) ?? models[0]?.id ?? '');
    }
  }

  /**
   * Use a server (or, with null, the in-browser model again). A ready server counts as the loaded model, so
   * starting and resuming runs work the same way for both engines.
   */
  useRemoteEngine(remote: RemoteEngine | null): void {
    if (this.current.activeRunId) return;
    if (remote) {
      if (!this.remote) this.webgpuLoad = this.current.load;
      this.remote = remote;
      this.patch({ load: { status: 'ready', model: { modelId: remote.modelId, addsBos: remote.addsBos, contextWindow: remote.contextWindow } } });
    } else if (this.remote) {
      this.remote = null;
      this.patch({ load: this.webgpuLoad ?? { status: 'idle' } });
      this.webgpuLoad = null;
    }
  }

  templateFor(modelId: string): FamilyTemplate | undefined {
    if (this.remote && this.remote.modelId === modelId) return getTemplate(this.remote.templateId);
    const custom = this.customModelFor(modelId);
    if (custom) {
      try {
        return templateForCustomModel(custom);
      } catch {
        return undefined;
      }
    }
    const option = this.current.models.find((m) => m.id === modelId);
    // Scripted test models carry a real model name after the prefix (and fault options after '?').
    const name = modelId.startsWith(SCRIPTED_MODEL_PREFIX) ? modelId.slice(SCRIPTED_MODEL_PREFIX.length).split('?')[0] ?? '' : modelId;
    const id = option?.templateId ?? templateIdForModel(name);
    return id === undefined ? undefined : getTemplate(id);
  }

  async loadModel(modelId: string = this.current.selectedModelId): Promise<void> {
    if (this.current.activeRunId) return;
    await this.loadModelNow(modelId);
  }

  /** Loads without the "no run active" guard (a resuming or recovering run loads its own model); true when ready. */
  private async loadModelNow(modelId: string): Promise<boolean> {
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
      return false;
    }
    this.patch({ load: { status: 'loading', modelId, progress: null }, selectedModelId: modelId }, true);
    try {
      const onProgress = (progress: LoadProgress): void => {
        const load = this.current.load;
        if (load.status !== 'loading') return;
        this.patch({ load: { status: 'loading', modelId, progress } }, load.progress?.phase !== progress.phase);
      };
      const custom = this.customModelFor(modelId);
      const record = custom ? toWorkerRecord(custom) : undefined;
      const model = record
        ? await this.engine.load(modelId, template.probeToken, onProgress, record)
        : await this.engine.load(modelId, template.probeToken, onProgress);
      const cached = new Set(this.current.cachedModelIds);
      cached.add(modelId);
      this.patch({ load: { status: 'ready', model }, cachedModelIds: cached });
      return true;
    } catch (err) {
      this.patch({ load: { status: 'error', modelId, error: classifyEngineError(err) } });
      return false;
    }
  }

  // --- runs -----------------------------------------------------------------------------------------------------

  /**
   * Creates a run for the loaded model and runs it. With `modes` (or an imported recipe, `from`) the run stores its
   * recipe and every record is made by the mode's producer.
   */
  async startRun(settings: RunSettings, modes?: ModeSettings, from?: Recipe): Promise<void> {
    const load = this.current.load;
    if (load.status !== 'ready' || this.current.activeRunId) return;
    if (from && from.model !== load.model.modelId) {
      this.patch({ notice: `This recipe was made with ${from.model}; load that model to start an identical run.` });
      return;
    }
    // The user's template variant and quirks apply when they were chosen for the model that is loaded.
    const choice = this.current.templateChoice?.modelId === load.model.modelId ? this.current.templateChoice : null;
    // An imported recipe keeps its template (a custom model's own, or the registry's with its date), so the prompts
    // are byte-identical to the original run's.
    const customTemplate = from ? from.template.custom : this.customModelFor(load.model.modelId)?.template;
    let template: FamilyTemplate | undefined;
    try {
      template = from ? recipeTemplate(from) : ((choice ? this.choiceTemplate(choice) : undefined) ?? this.templateFor(load.model.modelId));
    } catch (err) {
      this.patch({ notice: `Cannot start: ${messageOf(err)}` });
      return;
    }
    if (!template) return;
    const quirks = from ? from.quirks : (choice?.quirks ?? template.quirks);
    const t = this.now();
    const run: Run = {
      id: crypto.randomUUID(),
      label: runLabel(load.model.modelId, new Date(t)),
      createdAt: t,
      updatedAt: t,
      status: 'queued',
      modelId: load.model.modelId,
      engine: this.remote ? 'openai-compatible' : load.model.modelId.startsWith(SCRIPTED_MODEL_PREFIX) ? 'scripted' : 'webllm',
      ...(this.remote ? { server: { baseUrls: [...this.remote.baseUrls] } } : {}),
      templateId: template.id,
      engineAddsBos: load.model.addsBos,
      settings,
      counters: emptyCounters(),
      ...(quirks ? { quirks } : {}),
      ...(customTemplate ? { customTemplate } : {}),
    };
    if (from) run.recipe = { ...from, engine: run.engine };
    else if (modes) {
      run.recipe = buildRecipe({
        model: run.modelId,
        engine: run.engine,
        template,
        settings,
        modes,
        ...(quirks ? { quirks } : {}),
        ...(customTemplate ? { customTemplate } : {}),
      });
    }
    if (run.recipe) {
      const problems = validateForTemplate(run.recipe, template);
      if (problems.length > 0) {
        this.patch({ notice: `Cannot start: ${describeRecipeErrors(problems)}` });
        return;
      }
    }
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
    const serverRun = run.engine === 'openai-compatible';
    if (serverRun && (!this.remote || this.remote.modelId !== run.modelId)) {
      return `Connect to a server that serves ${run.modelId} to resume this run.`;
    }
    if (!serverRun && this.remote) return `Switch to “This browser (WebGPU)” and load ${run.modelId} to resume this run.`;
    if (this.current.elsewhere.has(run.id)) return 'Another tab is generating this run; its progress shows here.';
    if (load.status === 'loading') return 'Wait until the model has loaded.';
    // An in-browser run loads its own model when resumed (one click after a reload or crash).
    return null;
  }

  /** Runs a stopped (or failed) run again from its stored counters. */
  async resumeRun(runId: string, lease?: RunLease): Promise<void> {
    const stored = await this.store.getRun(runId).catch(() => undefined);
    if (!stored || this.resumeBlocker(stored) !== null || !isResumable(stored)) {
      lease?.release();
      return;
    }
    const held = lease ?? (await this.coordinator.tryAcquire(runId));
    if (!held) {
      this.patch({ notice: 'Another tab is generating this run; its progress shows here.' });
      return;
    }
    try {
      if (await this.ensureRunModel(stored)) await this.resumeHeld(stored);
    } finally {
      held.release();
    }
  }

  /** resumeRun's work once this tab holds the run's lock and the run's model is loaded. */
  private async resumeHeld(stored: Run): Promise<void> {
    const runId = stored.id;
    const load = this.current.load;
    if (load.status !== 'ready') return;
    const template = this.runTemplate(stored);
    let run = stored;
    if (stored.engineAddsBos !== load.model.addsBos) {
      // The BOS probe is re-measured at each load; prompts must follow what this engine does now.
      run = await this.store.updateRun(runId, { engineAddsBos: load.model.addsBos });
    }
    const baseUrls = this.remote?.baseUrls;
    if (baseUrls && baseUrls.join('\n') !== (run.server?.baseUrls ?? []).join('\n')) {
      // Servers can move between sessions; the run records the ones it used last.
      run = await this.store.updateRun(runId, { server: { baseUrls: [...baseUrls] } });
    }
    if (this.current.selectedRunId !== runId) await this.selectRun(runId);
    await this.execute(run, template);
  }

  /** Pauses the active run: the attempt in flight is dropped and redone on resume with the same seeds. */
  stop(): void {
    this.abort?.abort();
  }

  private async execute(run: Run, template: ChatTemplate): Promise<void> {
    // One runner per run: a new run's lock is free; a resumed run's lock is already held by resumeRun.
    const ownLease = this.coordinator.holds(run.id) ? null : await this.coordinator.tryAcquire(run.id);
    if (!ownLease && !this.coordinator.holds(run.id)) {
      this.patch({ notice: 'Another tab is generating this run; its progress shows here.' });
      return;
    }
    try {
      await this.executeHeld(run, template);
    } finally {
      ownLease?.release();
    }
  }

  private async executeHeld(run: Run, template: ChatTemplate): Promise<void> {
    assertTransition((await this.store.getRun(run.id).catch(() => undefined))?.status ?? run.status, 'running');
    if (this.current.prefs.wakeLock) void this.wakeLock.hold();
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
    const engine = this.remote?.engine ?? this.engine;
    const losses = new LossWindow(this.lossPolicy);
    let current = run;
    let outcome: RunOutcome;
    /** Set when the last pause came from a full disk (which also classifies as a recoverable 'unknown'). */
    let storageFull = false;
    for (;;) {
      outcome = await runMagpie({
        run: current,
        // A lost engine or a full disk pauses the run; the loop below reloads the model, the user frees space.
        shouldPause: (err, c) => {
          storageFull = isStorageFull(err);
          return storageFull || (!this.remote && isEngineLoss(c));
        },
        engine,
        template,
        ...(run.recipe ? { produce: modeProducer({ run: current, recipe: run.recipe, engine, template }) } : {}),
        // A server batches concurrent requests; the in-browser model decodes one sequence at a time.
        concurrency: this.remote?.concurrency ?? 1,
        store: this.store,
        signal: abort.signal,
        now: this.now,
        events: {
          onStepStart: (step, attempt) => this.patch({ live: { runId: run.id, step, attempt, text: '' } }, true),
          onDelta: (step, delta, attempt) => {
            const live = this.current.live;
            if (live && live.step === step && live.attempt === attempt) this.patch({ live: { ...live, text: live.text + delta } });
          },
          onTokens: (n) => {
            meter.addTokens(n);
            this.patch({ stats: meter.stats(remaining(accepted)) });
          },
          onRecord: (record, counters) => {
            this.coordinator.publish({ type: 'record', runId: run.id, record, counters });
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
      const next = storageFull ? null : await this.recoverEngine(current, outcome, losses, abort.signal);
      if (!next) break;
      current = next;
    }
    this.abort = null;
    this.meter = null;
    this.wakeLock.release();
    await this.settlePause(run.id, outcome, abort.signal.aborted, losses, storageFull);
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
    if (outcome.error && ['device-lost', 'engine-unresponsive', 'model-not-loaded'].includes(outcome.error.kind)) {
      patch.load = { status: 'error', modelId: run.modelId, error: outcome.error };
    }
    this.patch(patch);
    this.announceEnd(fresh);
    void this.refreshStorage();
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
    // Only the tab generating for a run speaks for it; the others show what it says.
    if (this.coordinator.holds(run.id)) this.coordinator.publish({ type: 'run', run });
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
    if (this.current.elsewhere.has(runId)) {
      this.patch({ notice: 'Another tab is generating this run: pause it there before deleting it.' });
      return;
    }
    try {
      await this.store.deleteRun(runId);
    } catch (err) {
      this.patch({ notice: `Could not delete the run: ${messageOf(err)}` });
      return;
    }
    this.coordinator.publish({ type: 'deleted', runId });
    void this.refreshStorage();
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

  /**
   * "Describe your dataset": the loaded model drafts a system prompt from a short description (rendered with the
   * family's own template and sent as a raw completion). Returns the draft for the user to edit.
   */
  async draftSystemPrompt(description: string): Promise<string> {
    const load = this.current.load;
    if (load.status !== 'ready') throw new Error('Load a model first.');
    if (this.current.activeRunId) throw new Error('Wait for the run to finish: the model is busy.');
    const template = this.templateFor(load.model.modelId);
    if (!template) throw new Error(`No chat template is known for ${load.model.modelId}.`);
    const engine = this.remote?.engine ?? this.engine;
    const result = await engine.complete(systemPromptDraftRequest(template, description, load.model.addsBos));
    const draft = cleanSystemPromptDraft(result.text);
    if (draft === '') throw new Error('The model returned an empty draft; try a more detailed description.');
    return draft;
  }

  /** Saves a hand-made preference judgement on a record of the selected run. */
  async markPreference(uuid: string, chosen: number, rejected: number): Promise<void> {
    const record = this.current.records.find((r) => r.uuid === uuid);
    if (!record) return;
    try {
      const next = withManualJudgement(record, chosen, rejected);
      await this.store.updateRecord(next);
      this.patch({ records: this.current.records.map((r) => (r.uuid === uuid ? next : r)) });
    } catch (err) {
      this.patch({ notice: `Could not save the choice: ${messageOf(err)}` });
    }
  }

  dismissNotice(): void {
    this.patch({ notice: null });
  }

  // --- durability: locks, takeover, recovery, storage, wake lock (run-coordination.ts, run-environment.ts) -------

  /** Writes a status change the state table allows (throws IllegalRunTransitionError otherwise). */
  private async setRunStatus(runId: string, to: Run['status'], extra: Partial<Omit<Run, 'id'>> = {}): Promise<Run> {
    const stored = await this.store.getRun(runId);
    if (!stored) throw new Error(`Run ${runId} does not exist.`);
    const status = stored.status === to ? to : assertTransition(stored.status, to);
    const run = await this.store.updateRun(runId, { ...extra, status });
    this.replaceRun(run);
    return run;
  }

  /** Start-up check of a run stored as loading/running: orphaned if its lock is free, else another tab runs it. */
  private async adoptOrWatch(runId: string): Promise<void> {
    const lease = await this.coordinator.tryAcquire(runId);
    if (!lease) {
      this.watch(runId);
      return;
    }
    try {
      await this.markInterrupted(runId);
    } finally {
      lease.release();
    }
  }

  /** Under the run's lock: a run still marked loading/running lost its tab; it waits for one click on Resume. */
  private async markInterrupted(runId: string): Promise<Run | undefined> {
    const stored = await this.store.getRun(runId);
    if (!stored || !isActiveStatus(stored.status)) return stored;
    return this.store.updateRun(runId, {
      status: 'paused',
      pause: {
        reason: 'interrupted',
        message: `The tab generating this run was closed or reloaded. ${stored.counters.accepted} of ${stored.settings.count} records are saved; Resume continues from there.`,
        at: this.now(),
      },
    });
  }

  /** Queues for the run's lock; when the runner tab goes away mid-run, this tab takes over automatically. */
  private watch(runId: string): void {
    if (this.watching.has(runId) || this.coordinator.holds(runId)) return;
    const controller = new AbortController();
    this.watching.set(runId, controller);
    this.setElsewhere(runId, true);
    void this.coordinator.waitFor(runId, controller.signal).then(async (lease) => {
      if (this.watching.get(runId) === controller) this.watching.delete(runId);
      this.setElsewhere(runId, false);
      if (!lease) return;
      try {
        const run = await this.markInterrupted(runId);
        if (run) this.replaceRun(run);
        // Take over only a run that was still going and only when this tab is free; otherwise the banner offers it.
        if (run?.pause?.reason === 'interrupted' && run.status === 'paused' && !this.current.activeRunId && this.current.load.status !== 'loading') {
          await this.resumeRun(runId, lease);
          return;
        }
      } catch (err) {
        this.patch({ notice: `Could not take over the run: ${messageOf(err)}` });
      }
      lease.release();
    });
  }

  private setElsewhere(runId: string, on: boolean): void {
    if (this.current.elsewhere.has(runId) === on) return;
    const next = new Set(this.current.elsewhere);
    if (on) next.add(runId);
    else next.delete(runId);
    this.patch({ elsewhere: next });
  }

  private async onTabMessage(message: ReceivedMessage): Promise<void> {
    if (message.type === 'deleted') {
      this.patch({ runs: this.current.runs.filter((r) => r.id !== message.runId) });
      if (this.current.selectedRunId === message.runId) await this.selectRun(this.current.runs[0]?.id ?? null);
      return;
    }
    if (message.type === 'run') {
      const { run } = message;
      if (this.coordinator.holds(run.id)) return;
      this.replaceRun(run);
      if (isActiveStatus(run.status)) this.watch(run.id);
      else this.setElsewhere(run.id, false);
      return;
    }
    const { runId, record, counters } = message;
    const known = this.current.runs.find((r) => r.id === runId);
    if (known) this.replaceRun({ ...known, counters });
    if (this.current.selectedRunId === runId && !this.current.records.some((r) => r.uuid === record.uuid)) {
      const shown = this.current.records;
      const records = [record, ...shown].slice(0, Math.max(RECORDS_PAGE_SIZE, shown.length));
      this.patch({ records, recordsTotal: this.current.recordsTotal + 1 });
    }
  }

  /** Before a resumed in-browser run: load its model (status 'loading'); false when the load failed. */
  private async ensureRunModel(run: Run): Promise<boolean> {
    const load = this.current.load;
    if (this.remote || run.engine === 'openai-compatible') return true;
    if (load.status === 'ready' && load.model.modelId === run.modelId) return true;
    this.patch({ activeRunId: run.id, runError: null, live: { runId: run.id, step: null, attempt: run.counters.attempts + 1, text: '' } });
    try {
      await this.setRunStatus(run.id, 'loading');
      if (await this.loadModelNow(run.modelId)) return true;
      const error = this.current.load.status === 'error' ? this.current.load.error : undefined;
      await this.setRunStatus(run.id, 'paused', {
        pause: { reason: 'engine-lost', message: `Could not load ${run.modelId}: ${error?.message ?? 'unknown error'}`, at: this.now() },
      });
      return false;
    } finally {
      this.patch({ activeRunId: null, live: null });
    }
  }

  /**
   * After the runner paused on an engine loss: reload the model (the client starts a new worker if the old one
   * died) and return the stored run to continue from, or null to stay paused (user stop, or too many losses).
   */
  private async recoverEngine(run: Run, outcome: RunOutcome, losses: LossWindow, signal: AbortSignal): Promise<Run | null> {
    if (outcome.status !== 'paused' || !outcome.error || !isEngineLoss(outcome.error) || this.remote) return null;
    for (;;) {
      if (signal.aborted || losses.record(this.now())) return null;
      await this.setRunStatus(run.id, 'loading');
      this.patch({ live: { runId: run.id, step: null, attempt: run.counters.attempts + 1, text: '' } }, true);
      const loaded = await this.loadModelNow(run.modelId);
      if (signal.aborted) return null;
      if (loaded) {
        const fresh = await this.store.getRun(run.id);
        return fresh ?? null;
      }
    }
  }

  /** Records why a run that ended paused is paused, so the banner can say what happened and what to do. */
  private async settlePause(runId: string, outcome: RunOutcome, userStopped: boolean, losses: LossWindow, storageFull: boolean): Promise<void> {
    const stored = await this.store.getRun(runId).catch(() => undefined);
    if (!stored || (stored.status !== 'paused' && stored.status !== 'loading')) return;
    const error = outcome.error;
    let pause: NonNullable<Run['pause']>;
    if (error && storageFull) {
      pause = { reason: 'storage-full', message: error.message, at: this.now() };
    } else if (error && !userStopped && outcome.status === 'paused' && isEngineLoss(error)) {
      const n = losses.count(this.now());
      pause = {
        reason: 'engine-lost',
        message: `The GPU or the engine failed ${n} time${n === 1 ? '' : 's'} in a row (${error.message}). Continue with a smaller model or a 1k-context variant, or try again.`,
        at: this.now(),
      };
    } else {
      pause = { reason: 'user', message: 'Paused. Resume continues from the last saved record.', at: this.now() };
    }
    await this.setRunStatus(runId, 'paused', { pause }).catch((err: unknown) => {
      this.patch({ notice: `Could not save the run's state: ${messageOf(err)}` });
    });
  }

  private announceEnd(run: Run): void {
    if (!this.current.prefs.notifyOnEnd) return;
    if (run.status === 'paused' && run.pause?.reason === 'user') return;
    const what = run.status === 'done' ? 'finished' : run.status === 'failed' ? 'failed' : 'paused';
    notify(`magpie-web: run ${what}`, `${run.label}: ${run.counters.accepted} of ${run.settings.count} records.${run.pause ? ` ${run.pause.message}` : ''}`);
  }

  /**
   * The template `run` would go on with on `modelId`, or why it cannot: the model's template (a custom model's own,
   * or the registry family's variant matching the run's) must write the run's prompts byte for byte, so one run's
   * records never mix prompt formats and its recipe still describes them. A different family means a new run.
   */
  continuation(run: Run, modelId: string): { ok: true; templateId: string; customTemplate?: CustomTemplateSpec } | { ok: false; reason: string } {
    const custom = this.customModelFor(modelId);
    const own = this.templateFor(modelId);
    if (!own) return { ok: false, reason: `No chat template is known for ${modelId}.` };
    let current: FamilyTemplate;
    try {
      current = this.runTemplate(run);
    } catch (err) {
      return { ok: false, reason: messageOf(err) };
    }
    const systems = [...(run.recipe?.system?.prompts.map((p) => p.prompt) ?? [])];
    if (run.recipe?.mode.kind === 'multi-turn' && run.recipe.mode.followUpSystem !== null) systems.push(run.recipe.mode.followUpSystem);
    // Candidates are built exactly as resumeHeld will build them (same date), so what is compared is what runs.
    const candidates: Array<{ templateId: string; customTemplate?: CustomTemplateSpec }> = custom
      ? [{ templateId: own.id, customTemplate: custom.template }]
      : familyVariants(own.id).map((info) => ({ templateId: info.id }));
    for (const c of candidates) {
      let t: FamilyTemplate;
      try {
        t = this.runTemplate({ ...run, templateId: c.templateId, customTemplate: c.customTemplate });
      } catch {
        continue;
      }
      if (samePrompts(current, t, systems)) return { ok: true, ...c };
    }
    return {
      ok: false,
      reason: `${modelId} uses a different chat template (${own.label}) than this run (${current.label}), and one run's records must share one template. Start a new run with ${modelId} instead.`,
    };
  }

  /** The template a stored run renders with: its own custom template, or the registry's with the recipe's date. */
  private runTemplate(run: Pick<Run, 'customTemplate' | 'templateId' | 'recipe'>): FamilyTemplate {
    const dateString = run.recipe?.template.dateString;
    // A dated template (Llama-3.1/3.2) must keep the run's date, or a resumed run would prompt differently.
    // A custom model's template is rebuilt from the run's own copy, not from the (editable) saved model.
    return run.customTemplate
      ? buildCustomTemplate(run.customTemplate)
      : getTemplate(run.templateId, dateString === undefined ? {} : { dateString });
  }

  /**
   * Continues a run paused by repeated engine losses with another model (e.g. smaller, or a 1k context), when that
   * model's template writes the same prompts (see continuation); otherwise says why in the notice and changes nothing.
   */
  async continueWithModel(runId: string, modelId: string): Promise<void> {
    const stored = await this.store.getRun(runId).catch(() => undefined);
    if (!stored || !isResumable(stored) || this.current.activeRunId) return;
    const next = this.continuation(stored, modelId);
    if (!next.ok) {
      this.patch({ notice: `Cannot continue this run with ${modelId}: ${next.reason}` });
      return;
    }
    // Records keep the model and template that made them; the run's template data follows the new model's.
    const run = await this.store.updateRun(runId, {
      modelId,
      templateId: next.templateId,
      customTemplate: next.customTemplate,
      engine: modelId.startsWith(SCRIPTED_MODEL_PREFIX) ? 'scripted' : 'webllm',
    });
    this.replaceRun(run);
    this.selectModel(modelId);
    await this.resumeRun(runId);
  }

  async refreshStorage(): Promise<void> {
    const storage = (await readStorageReport()) ?? null;
    this.patch({ storage });
  }

  /** Deletes a model's files from the browser cache (to free space); the model downloads again when next loaded. */
  async deleteCachedModel(modelId: string): Promise<void> {
    if (!this.engine.deleteCachedModel) return;
    const load = this.current.load;
    if (this.current.activeRunId && load.status === 'ready' && load.model.modelId === modelId) return;
    // An added model is unknown to WebLLM's prebuilt list: its record tells the worker where its files came from.
    const custom = this.customModelFor(modelId);
    const record = custom ? toWorkerRecord(custom) : undefined;
    try {
      await (record ? this.engine.deleteCachedModel(modelId, record) : this.engine.deleteCachedModel(modelId));
      const cached = new Set(this.current.cachedModelIds);
      cached.delete(modelId);
      this.patch({ cachedModelIds: cached });
    } catch (err) {
      this.patch({ notice: `Could not delete the cached model: ${messageOf(err)}` });
    }
    await this.refreshStorage();
  }

  /** Wake lock and notification choices; ticking notifications asks for permission (and unticks if refused). */
  async setPreference(key: keyof RunPreferences, value: boolean): Promise<void> {
    let granted = value;
    if (key === 'notifyOnEnd' && value) granted = await askNotificationPermission();
    const prefs = { ...this.current.prefs, [key]: granted };
    savePreferences(prefs);
    this.patch({ prefs });
    if (key === 'wakeLock' && this.current.activeRunId) {
      if (granted) void this.wakeLock.hold();
      else this.wakeLock.release();
    }
    if (key === 'notifyOnEnd' && value && !granted) this.patch({ notice: 'Notifications are blocked for this site; the run status stays on the page.' });
  }

  /** Test builds list fault-injecting scripted models too; scripted models borrow the real model's VRAM figure. */
  private withExtraModels(listed: ListedModel[]): ListedModel[] {
    const all = [...listed, ...this.extraModelIds.filter((id) => !listed.some((m) => m.model_id === id)).map((id): ListedModel => ({ model_id: id }))];
    const real = new Map(listed.filter((m) => !m.model_id.startsWith(SCRIPTED_MODEL_PREFIX)).map((m) => [m.model_id, m]));
    return all.map((m) => {
      if (!m.model_id.startsWith(SCRIPTED_MODEL_PREFIX) || m.vram_required_MB !== undefined) return m;
      const twin = real.get(m.model_id.slice(SCRIPTED_MODEL_PREFIX.length).split('?')[0] ?? '');
      return twin?.vram_required_MB === undefined ? m : { ...m, vram_required_MB: twin.vram_required_MB };
    });
  }
}

function isStorageFull(err: unknown): boolean {
  const name = err && typeof err === 'object' && 'name' in err ? (err as { name: unknown }).name : undefined;
  return name === 'StorageFullError' || name === 'QuotaExceededError';
}
