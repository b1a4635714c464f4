/**
 * One TextEngine over several servers (one engine per base URL): each completion goes to the least-busy healthy
 * engine, and a server that keeps failing is rested for a cooldown while its requests go elsewhere. Prompts and
 * seeds do not depend on the server, so a record is the same whichever server (of the same model) wrote it.
 */
import type {
  CompleteJsonOptions,
  CompleteOptions,
  CompletionRequest,
  CompletionResult,
  JsonRequest,
  TextEngine,
} from '../core/engine';
import { classifyEngineError, type EngineErrorKind } from '../core/errors';

export interface EnginePoolOptions {
  /** Labels for stats (e.g. the base URLs); default "engine 1", "engine 2", …. */
  names?: readonly string[];
  /** How long a failed engine gets no new requests while others are healthy. Default 30000. */
  cooldownMs?: number;
  /** Injectable clock (ms). */
  now?: () => number;
}

export interface PoolMemberStats {
  name: string;
  /** Completions running on this engine now. */
  inFlight: number;
  completed: number;
  /** Completions that failed here with a server-side error (after the engine's own retries). */
  failed: number;
  healthy: boolean;
}

/** Errors an engine gives after its own retries ran out and that another server may not have. */
const FAILOVER_KINDS: ReadonlySet<EngineErrorKind> = new Set<EngineErrorKind>([
  'network',
  'cors',
  'server-error',
  'timeout',
  'rate-limited',
]);

interface Member {
  name: string;
  engine: TextEngine;
  inFlight: number;
  completed: number;
  failed: number;
  unhealthyUntil: number;
}

export class EnginePool implements TextEngine {
  private readonly members: Member[];
  private readonly cooldownMs: number;
  private readonly now: () => number;
  /** Where the round-robin tie-break starts next. */
  private cursor = 0;
  /**
   * Constrained JSON, routed like complete(); present only when every member offers it, so a pool never sends a
   * JSON request to a member that cannot answer it (callers then use raw completions).
   */
  readonly completeJson?: (request: JsonRequest, options?: CompleteJsonOptions) => Promise<CompletionResult>;

  constructor(engines: readonly TextEngine[], options: EnginePoolOptions = {}) {
    if (engines.length === 0) throw new Error('An engine pool needs at least one engine.');
    this.members = engines.map((engine, i) => ({
      name: options.names?.[i] ?? `engine ${i + 1}`,
      engine,
      inFlight: 0,
      completed: 0,
      failed: 0,
      unhealthyUntil: 0,
    }));
    this.cooldownMs = options.cooldownMs ?? 30_000;
    this.now = options.now ?? Date.now;
    const json = engines.map((e) => e.completeJson?.bind(e));
    if (json.every((f) => f !== undefined)) {
      this.completeJson = (request, opts = {}) =>
        this.route(opts.signal, undefined, (index, inner) => {
          const call = json[index];
          if (call === undefined) throw new Error('pool member without completeJson');
          return call(request, inner.signal !== undefined ? { signal: inner.signal } : {});
        });
    }
  }

  get size(): number {
    return this.members.length;
  }

  /** A snapshot per engine, in the order given to the constructor. */
  inFlight(): PoolMemberStats[] {
    const t = this.now();
    return this.members.map((m) => ({
      name: m.name,
      inFlight: m.inFlight,
      completed: m.completed,
      failed: m.failed,
      healthy: m.unhealthyUntil <= t,
    }));
  }

  async complete(request: CompletionRequest, options: CompleteOptions = {}): Promise<CompletionResult> {
    return this.route(options.signal, options, (index, inner) => {
      const member = this.members[index];
      if (member === undefined) throw new Error(`no pool member ${index}`);
      return member.engine.complete(request, inner);
    });
  }

  /** Sends one call to the best member, failing over to the others on server-side errors. */
  private async route(
    signal: AbortSignal | undefined,
    options: Pick<CompleteOptions, 'onDelta' | 'onRestart'> | undefined,
    send: (index: number, inner: CompleteOptions) => Promise<CompletionResult>,
  ): Promise<CompletionResult> {
    const onDelta = options?.onDelta;
    const onRestart = options?.onRestart;
    const tried = new Set<number>();
    let lastError: unknown;
    for (;;) {
      const index = this.pick(tried, tried.size === 0);
      if (index === undefined) throw lastError;
      tried.add(index);
      const member = this.members[index];
      if (member === undefined) throw lastError;

      // Deltas delivered since the caller last started over; a failover must tell it to start over again.
      let delivered = false;
      const inner: CompleteOptions = {
        onDelta: (delta) => {
          delivered = true;
          onDelta?.(delta);
        },
        onRestart: () => {
          delivered = false;
          onRestart?.();
        },
      };
      if (signal !== undefined) inner.signal = signal;

      member.inFlight++;
      try {
        const result = await send(index, inner);
        member.completed++;
        member.unhealthyUntil = 0;
        return result;
      } catch (err) {
        if (!FAILOVER_KINDS.has(classifyEngineError(err).kind)) throw err;
        member.failed++;
        member.unhealthyUntil = this.now() + this.cooldownMs;
        lastError = err;
        if (signal?.aborted) return { text: '', finishReason: 'abort', usage: { promptTokens: 0, completionTokens: 0 } };
        if (delivered) onRestart?.();
      } finally {
        member.inFlight--;
      }
    }
  }

  /**
   * The least-busy healthy engine not tried yet, ties broken round-robin. For a first attempt with every engine
   * resting, the one that recovers first (work is never refused); a failover only goes to healthy engines.
   */
  private pick(tried: ReadonlySet<number>, firstAttempt: boolean): number | undefined {
    const t = this.now();
    const n = this.members.length;
    let best: number | undefined;
    let bestLoad = Infinity;
    for (let k = 0; k < n; k++) {
      const i = (this.cursor + k) % n;
      const m = this.members[i];
      if (m === undefined || tried.has(i) || m.unhealthyUntil > t) continue;
      if (m.inFlight < bestLoad) {
        best = i;
        bestLoad = m.inFlight;
      }
    }
    if (best === undefined && firstAttempt) {
      let soonest = Infinity;
      this.members.forEach((m, i) => {
        if (!tried.has(i) && m.unhealthyUntil < soonest) {
          soonest = m.unhealthyUntil;
          best = i;
        }
      });
    }
    if (best !== undefined) this.cursor = (best + 1) % n;
    return best;
  }
}
