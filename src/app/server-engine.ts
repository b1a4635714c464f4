/**
 * The page's "OpenAI-compatible server" engine choice: server settings, the consent step before anything is sent to
 * a server, listing models, the BOS probe, and handing a ready engine to the session. The API key lives in memory
 * unless the user ticks "remember"; consent is kept per origin for the browser session (sessionStorage).
 */
import { probeAddsBos, type TextEngine } from '../core/engine';
import { classifyEngineError, type ClassifiedError } from '../core/errors';
import { getTemplate, templateIdForModel } from '../core/templates/registry';
import { EnginePool } from '../engine/engine-pool';
import { normaliseBaseUrl, OpenAICompatibleEngine, type OpenAIEngineOptions } from '../engine/openai-engine';

/** What the session needs to run with a server instead of the in-browser model. */
export interface RemoteEngine {
  engine: TextEngine;
  modelId: string;
  /** Measured with the BOS probe on every server of the pool. */
  addsBos: boolean;
  /** Upper bound for max tokens in the settings form; the server refuses what does not fit its context. */
  contextWindow: number;
  templateId: string;
  /** Normalised base URLs (recorded on the run; the API key never is). */
  baseUrls: string[];
  concurrency: number;
}

/** The session side of the hand-over (MagpieSession implements it). */
export interface RemoteEngineHost {
  useRemoteEngine(remote: RemoteEngine | null): void;
}

export type EngineKind = 'webgpu' | 'server';

export type ServerStatus = 'idle' | 'consent' | 'connecting' | 'probing' | 'ready' | 'error';

export interface ServerEngineState {
  kind: EngineKind;
  baseUrlsText: string;
  apiKey: string;
  rememberKey: boolean;
  concurrencyText: string;
  concurrencyError: string | null;
  /** '' = the family detected from the model id. */
  templateOverride: string;
  /** Models every listed server serves (GET /v1/models). */
  models: string[];
  modelId: string;
  /** The base URLs of the current connection (normalised). */
  baseUrls: string[];
  status: ServerStatus;
  /** Origins waiting for the user's yes/no (status 'consent'). */
  consentOrigins: string[];
  error: ClassifiedError | null;
  addsBos: boolean | null;
  /** A short non-error message (e.g. "nothing was sent"). */
  note: string | null;
}

export const DEFAULT_SERVER_CONCURRENCY = 8;
export const MAX_SERVER_CONCURRENCY = 256;
/** Servers serve contexts from 2k to 128k+; the form's bound is generous and the server has the last word. */
export const SERVER_CONTEXT_BOUND = 131_072;

const KEYS = {
  kind: 'magpie-web.engine-kind',
  baseUrls: 'magpie-web.server-base-urls',
  concurrency: 'magpie-web.server-concurrency',
  model: 'magpie-web.server-model',
  template: 'magpie-web.server-template',
  apiKey: 'magpie-web.server-api-key',
  consent: 'magpie-web.server-consent',
} as const;

/** The Web Storage calls used here (localStorage / sessionStorage, or a Map in tests). */
export type KeyValueStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

export interface ServerEngineOptions {
  /** Non-secret settings, and the API key only when the user opts in. */
  local?: KeyValueStorage | null;
  /** Origins the user agreed to send prompts to, for this browser session. */
  session?: KeyValueStorage | null;
  createEngine?: (options: OpenAIEngineOptions) => OpenAICompatibleEngine;
}

function safeStorage(get: () => Storage): KeyValueStorage | null {
  try {
    return get();
  } catch {
    // Storage can be blocked (privacy settings); the panel still works, it just forgets on reload.
    return null;
  }
}

/** Base URLs typed one per line (blank lines and surrounding spaces ignored). */
export function splitBaseUrls(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

export function parseConcurrency(text: string): number | string {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return 'Concurrency must be a whole number.';
  const n = Number(t);
  if (n < 1 || n > MAX_SERVER_CONCURRENCY) return `Concurrency must be between 1 and ${MAX_SERVER_CONCURRENCY}.`;
  return n;
}

type Listener = (state: ServerEngineState) => void;

export class ServerEngineController {
  private current: ServerEngineState;
  private readonly listeners = new Set<Listener>();
  private readonly local: KeyValueStorage | null;
  private readonly sessionStore: KeyValueStorage | null;
  private readonly createEngine: (options: OpenAIEngineOptions) => OpenAICompatibleEngine;
  private consentAnswer: ((yes: boolean) => void) | null = null;
  /** Bumped by every change that makes an in-progress connect or probe stale. */
  private generation = 0;
  private engines: OpenAICompatibleEngine[] = [];

  constructor(
    private readonly host: RemoteEngineHost,
    options: ServerEngineOptions = {},
  ) {
    this.local = options.local !== undefined ? options.local : safeStorage(() => localStorage);
    this.sessionStore = options.session !== undefined ? options.session : safeStorage(() => sessionStorage);
    this.createEngine = options.createEngine ?? ((o) => new OpenAICompatibleEngine(o));
    const read = (key: string): string | null => {
      try {
        return this.local?.getItem(key) ?? null;
      } catch {
        return null;
      }
    };
    const storedKey = read(KEYS.apiKey);
    this.current = {
      kind: read(KEYS.kind) === 'server' ? 'server' : 'webgpu',
      baseUrlsText: read(KEYS.baseUrls) ?? '',
      apiKey: storedKey ?? '',
      rememberKey: storedKey !== null,
      concurrencyText: read(KEYS.concurrency) ?? String(DEFAULT_SERVER_CONCURRENCY),
      concurrencyError: null,
      templateOverride: read(KEYS.template) ?? '',
      models: [],
      modelId: read(KEYS.model) ?? '',
      baseUrls: [],
      status: 'idle',
      consentOrigins: [],
      error: null,
      addsBos: null,
      note: null,
    };
  }

  get state(): ServerEngineState {
    return this.current;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private patch(p: Partial<ServerEngineState>): void {
    this.current = { ...this.current, ...p };
    for (const l of this.listeners) l(this.current);
  }

  private remember(key: string, value: string | null): void {
    try {
      if (value === null) this.local?.removeItem(key);
      else this.local?.setItem(key, value);
    } catch {
      // Quota or privacy mode: the setting just is not kept across reloads.
    }
  }

  /** The template family the run will use: the user's choice, else the one detected from the model id. */
  templateId(modelId: string = this.current.modelId): string | undefined {
    return this.current.templateOverride || templateIdForModel(modelId);
  }

  // --- settings -------------------------------------------------------------------------------------------------

  setKind(kind: EngineKind): void {
    this.remember(KEYS.kind, kind);
    this.patch({ kind });
    this.handOver();
  }

  /** New addresses or a new key need a new connection (and, for a new origin, new consent). */
  setBaseUrls(text: string): void {
    this.remember(KEYS.baseUrls, text);
    this.disconnect({ baseUrlsText: text });
  }

  setApiKey(apiKey: string): void {
    if (this.current.rememberKey) this.remember(KEYS.apiKey, apiKey);
    this.disconnect({ apiKey });
  }

  setRememberKey(rememberKey: boolean): void {
    this.remember(KEYS.apiKey, rememberKey ? this.current.apiKey : null);
    this.patch({ rememberKey });
  }

  setConcurrency(text: string): void {
    const parsed = parseConcurrency(text);
    if (typeof parsed === 'number') this.remember(KEYS.concurrency, text.trim());
    this.patch({ concurrencyText: text, concurrencyError: typeof parsed === 'string' ? parsed : null });
    this.handOver();
  }

  setTemplateOverride(templateId: string): void {
    this.remember(KEYS.template, templateId || null);
    this.patch({ templateOverride: templateId });
    // The probe token depends on the family.
    if (this.current.models.length > 0) void this.probe();
  }

  selectModel(modelId: string): void {
    this.remember(KEYS.model, modelId);
    this.patch({ modelId });
    if (this.current.models.length > 0) void this.probe();
  }

  private disconnect(p: Partial<ServerEngineState>): void {
    this.generation++;
    this.engines = [];
    this.consentAnswer?.(false);
    this.patch({ ...p, status: 'idle', models: [], baseUrls: [], addsBos: null, error: null, note: null, consentOrigins: [] });
    this.handOver();
  }

  // --- consent --------------------------------------------------------------------------------------------------

  private consentedOrigins(): Set<string> {
    try {
      const raw = this.sessionStore?.getItem(KEYS.consent);
      const parsed: unknown = raw ? JSON.parse(raw) : [];
      return new Set(Array.isArray(parsed) ? parsed.filter((o): o is string => typeof o === 'string') : []);
    } catch {
      return new Set();
    }
  }

  /** Resolves true once the user agreed to every origin (asking only for the ones not agreed to in this session). */
  private async askConsent(origins: readonly string[]): Promise<boolean> {
    const agreed = this.consentedOrigins();
    const missing = origins.filter((o) => !agreed.has(o));
    if (missing.length === 0) return true;
    const yes = await new Promise<boolean>((resolve) => {
      this.consentAnswer = resolve;
      this.patch({ status: 'consent', consentOrigins: missing });
    });
    this.consentAnswer = null;
    if (yes) {
      for (const o of missing) agreed.add(o);
      try {
        this.sessionStore?.setItem(KEYS.consent, JSON.stringify([...agreed]));
      } catch {
        // Not kept: the user is asked again after a reload.
      }
    }
    return yes;
  }

  /** The dialog's buttons. */
  answerConsent(yes: boolean): void {
    this.consentAnswer?.(yes);
  }

  // --- connect and probe ----------------------------------------------------------------------------------------

  /** Lists the servers' models (after consent) and probes the chosen one. */
  async connect(): Promise<void> {
    const generation = ++this.generation;
    const lines = splitBaseUrls(this.current.baseUrlsText);
    const fail = (error: ClassifiedError) => {
      if (generation === this.generation) this.patch({ status: 'error', error, models: [], addsBos: null });
    };
    if (lines.length === 0) {
      return fail({ kind: 'invalid-request', message: 'No server address.', advice: 'Enter the server’s base URL, e.g. http://localhost:8000.', recoverable: false });
    }
    let baseUrls: string[];
    try {
      baseUrls = [...new Set(lines.map((l) => normaliseBaseUrl(l)))];
    } catch (err) {
      return fail(classifyEngineError(err));
    }
    const origins = [...new Set(baseUrls.map((u) => new URL(u).origin))];
    this.patch({ error: null, note: null, addsBos: null });
    const yes = await this.askConsent(origins);
    if (generation !== this.generation) return;
    if (!yes) {
      this.patch({ status: 'idle', consentOrigins: [], note: 'Not connected: nothing was sent to the server.' });
      return;
    }
    this.patch({ status: 'connecting', consentOrigins: [], baseUrls });
    // One engine per server just for listing; the model is not known yet.
    const listers = baseUrls.map((baseUrl) => this.makeEngine(baseUrl, ''));
    let lists: string[][];
    try {
      lists = await Promise.all(listers.map((e) => e.listModels()));
    } catch (err) {
      return fail(classifyEngineError(err));
    }
    if (generation !== this.generation) return;
    const [first = [], ...others] = lists;
    const models = first.filter((id) => others.every((list) => list.includes(id)));
    if (models.length === 0) {
      return fail({
        kind: 'unknown-model',
        message: baseUrls.length > 1 ? 'The servers have no model in common.' : 'The server lists no models.',
        advice: 'Start the server with a model loaded (several servers must serve the same model).',
        recoverable: false,
      });
    }
    const modelId = models.includes(this.current.modelId) ? this.current.modelId : (models[0] ?? '');
    this.patch({ models, modelId });
    await this.probe();
  }

  private makeEngine(baseUrl: string, model: string): OpenAICompatibleEngine {
    const apiKey = this.current.apiKey.trim();
    return this.createEngine({ baseUrl, model, ...(apiKey ? { apiKey } : {}) });
  }

  /** The 1-token BOS probe on every server for the chosen model and family; then the engine is handed over. */
  async probe(): Promise<void> {
    const generation = ++this.generation;
    const { modelId, baseUrls } = this.current;
    const templateId = this.templateId(modelId);
    this.engines = [];
    this.handOver();
    if (templateId === undefined) {
      this.patch({
        status: 'error',
        addsBos: null,
        error: {
          kind: 'model-not-found',
          message: `No chat template family is known for “${modelId}”.`,
          advice: 'Pick the model’s chat template family below.',
          recoverable: false,
        },
      });
      return;
    }
    this.patch({ status: 'probing', error: null, addsBos: null });
    const probeToken = getTemplate(templateId).probeToken;
    const engines = baseUrls.map((u) => this.makeEngine(u, modelId));
    let answers: boolean[];
    try {
      answers = await Promise.all(engines.map((e) => probeAddsBos(e, probeToken)));
    } catch (err) {
      if (generation === this.generation) this.patch({ status: 'error', error: classifyEngineError(err) });
      return;
    }
    if (generation !== this.generation) return;
    const addsBos = answers[0] ?? false;
    if (answers.some((a) => a !== addsBos)) {
      this.patch({
        status: 'error',
        error: {
          kind: 'invalid-request',
          message: 'The servers disagree on whether they add the begin-of-sequence token.',
          advice: 'Use servers started the same way (same engine and options) together.',
          recoverable: false,
        },
      });
      return;
    }
    this.engines = engines;
    this.patch({ status: 'ready', addsBos });
    this.handOver();
  }

  /** Gives the session the server engine when everything is ready, and takes it back otherwise. */
  private handOver(): void {
    const s = this.current;
    const concurrency = parseConcurrency(s.concurrencyText);
    const templateId = this.templateId();
    if (s.kind !== 'server' || s.status !== 'ready' || this.engines.length === 0 || typeof concurrency !== 'number' || !templateId) {
      this.host.useRemoteEngine(null);
      return;
    }
    const first = this.engines[0];
    const engine: TextEngine =
      this.engines.length === 1 && first ? first : new EnginePool(this.engines, { names: s.baseUrls });
    this.host.useRemoteEngine({
      engine,
      modelId: s.modelId,
      addsBos: s.addsBos ?? false,
      contextWindow: SERVER_CONTEXT_BOUND,
      templateId,
      baseUrls: [...s.baseUrls],
      concurrency,
    });
  }
}
