/**
 * The run's persisted state machine, and the pure policies around it: which status changes are legal, when an
 * engine failure is a "loss" the app recovers from by reloading the model, when repeated losses pause the run,
 * and which smaller model or context to offer then.
 *
 *   queued → loading → running ⇄ paused → done | failed
 *
 * running → loading happens when the GPU device or the worker is lost mid-run and the model is reloaded.
 * failed → loading | running is an explicit retry by the user; done is final.
 */
import type { ClassifiedError } from './errors';
import type { ModelOption } from './models';
import type { Run, RunStatus } from './record';

/** The statuses this version writes ('created' / 'stopped' exist only in rows written by schema version 1). */
export type LiveRunStatus = Exclude<RunStatus, 'created' | 'stopped'>;

export const RUN_TRANSITIONS: Readonly<Record<LiveRunStatus, readonly LiveRunStatus[]>> = {
  queued: ['loading', 'running', 'paused', 'failed'],
  loading: ['running', 'paused', 'failed'],
  running: ['paused', 'loading', 'done', 'failed'],
  paused: ['loading', 'running', 'failed'],
  failed: ['loading', 'running'],
  done: [],
};

/** Old rows: 'created' was a run not started yet, 'stopped' a run the user (or a closed tab) interrupted. */
export function normalizeRunStatus(status: RunStatus): LiveRunStatus {
  if (status === 'created') return 'queued';
  if (status === 'stopped') return 'paused';
  return status;
}

export class IllegalRunTransitionError extends Error {
  constructor(
    readonly from: LiveRunStatus,
    readonly to: LiveRunStatus,
  ) {
    super(`A run cannot go from "${from}" to "${to}".`);
    this.name = 'IllegalRunTransitionError';
  }
}

export function canTransition(from: RunStatus, to: RunStatus): boolean {
  return RUN_TRANSITIONS[normalizeRunStatus(from)].includes(normalizeRunStatus(to));
}

/** Returns the (normalized) target status, or throws IllegalRunTransitionError. */
export function assertTransition(from: RunStatus, to: RunStatus): LiveRunStatus {
  const f = normalizeRunStatus(from);
  const t = normalizeRunStatus(to);
  if (!RUN_TRANSITIONS[f].includes(t)) throw new IllegalRunTransitionError(f, t);
  return t;
}

/** A tab is (or was, if it closed) generating for the run: only these statuses need the run's lock to exist. */
export function isActiveStatus(status: RunStatus): boolean {
  const s = normalizeRunStatus(status);
  return s === 'loading' || s === 'running';
}

/** The user can press Resume: the run is not finished and nobody is generating for it. */
export function isResumable(run: Pick<Run, 'status' | 'counters' | 'settings'>): boolean {
  const s = normalizeRunStatus(run.status);
  return (s === 'queued' || s === 'paused' || s === 'failed') && run.counters.accepted < run.settings.count;
}

// ---------------------------------------------------------------------------------------------------------------
// Engine losses

/**
 * A failure that reloading the model can fix: a lost GPU device, a model the engine unloaded, memory pressure, a
 * worker that stopped answering, or one that died (those arrive as 'unknown' but recoverable). A run that keeps failing for its own reasons
 * (e.g. 25 empty instructions in a row) is marked not recoverable and fails instead.
 */
export function isEngineLoss(error: ClassifiedError): boolean {
  if (error.kind === 'device-lost' || error.kind === 'engine-unresponsive' || error.kind === 'model-not-loaded' || error.kind === 'out-of-memory') {
    return true;
  }
  return error.kind === 'unknown' && error.recoverable;
}

export interface LossPolicy {
  /** This many losses within `windowMs` pause the run instead of reloading again. */
  maxLosses: number;
  windowMs: number;
}

export const DEFAULT_LOSS_POLICY: LossPolicy = { maxLosses: 3, windowMs: 10 * 60_000 };

/** Counts engine losses in a sliding time window. */
export class LossWindow {
  private readonly times: number[] = [];

  constructor(private readonly policy: LossPolicy = DEFAULT_LOSS_POLICY) {
    if (!Number.isInteger(policy.maxLosses) || policy.maxLosses < 1) throw new RangeError('maxLosses must be a positive integer');
    if (!(policy.windowMs > 0)) throw new RangeError('windowMs must be positive');
  }

  /** Records a loss at `at` (ms); returns true when the run should pause (too many losses in the window). */
  record(at: number): boolean {
    this.times.push(at);
    const since = at - this.policy.windowMs;
    while (this.times.length > 0 && (this.times[0] ?? at) <= since) this.times.shift();
    return this.times.length >= this.policy.maxLosses;
  }

  /** Losses inside the window ending at `at`. */
  count(at: number): number {
    return this.times.filter((t) => t > at - this.policy.windowMs).length;
  }
}

export interface RecoveryOffers {
  /** The same model with a 1k context window (less KV-cache memory), when listed. */
  smallerContext?: ModelOption;
  /** The next model down by VRAM among the listed ones of the same kind (real or scripted). */
  smallerModel?: ModelOption;
}

/** Stripped of test fault options ("?…"), which are not part of the model's identity. */
function baseId(id: string): string {
  const q = id.indexOf('?');
  return q === -1 ? id : id.slice(0, q);
}

/**
 * What to offer after repeated losses with `modelId`: a -1k variant and/or the next smaller model; `accepts` leaves
 * out models the run cannot go on with (e.g. a template that writes other prompts).
 */
export function recoveryOffers(
  models: readonly ModelOption[],
  modelId: string,
  accepts: (m: ModelOption) => boolean = () => true,
): RecoveryOffers {
  const current = models.find((m) => m.id === modelId);
  const offers: RecoveryOffers = {};
  const base = baseId(modelId);
  if (!base.endsWith('-1k')) {
    const oneK = models.find((m) => m.id === `${base}-1k`);
    if (oneK && accepts(oneK)) offers.smallerContext = oneK;
  }
  if (current && current.vramMB > 0) {
    const smaller = models
      .filter((m) => m.scripted === current.scripted && m.vramMB > 0 && m.vramMB < current.vramMB && !m.id.includes('?') && accepts(m))
      // Among smaller models prefer the largest; a 1k variant of the same size is already offered above.
      .sort((a, b) => b.vramMB - a.vramMB || Number(a.id.endsWith('-1k')) - Number(b.id.endsWith('-1k')))
      .find((m) => baseId(m.id) !== `${base}-1k`);
    if (smaller) offers.smallerModel = smaller;
  }
  return offers;
}
