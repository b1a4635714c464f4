/**
 * Many tabs, one runner per run. A tab generates for a run only while it holds the Web Lock "magpie-run:<id>";
 * the browser frees the lock when that tab closes or crashes, so a run whose stored status says "running" is
 * orphaned exactly when nobody holds its lock. Tabs tell each other about status, counters and new records on the
 * BroadcastChannel "magpie-web", so a tab that is not generating still shows live progress.
 *
 * Takeover is automatic: a tab watching a run that another tab generates queues a lock request; the browser grants
 * it to exactly one waiting tab when the runner goes away, and that tab resumes the run if its stored status still
 * says it was running (a run the user paused stays paused). Automatic because the user left the run running and is
 * still looking at it in another tab; a page opened later shows a one-click banner instead (see session.ts).
 */
import type { MagpieRecord, Run, RunCounters } from '../core/record';

export const COORDINATION_CHANNEL = 'magpie-web';
export const RUN_LOCK_PREFIX = 'magpie-run:';

export type CoordinationMessage =
  /** A run was created or its status or counters changed. */
  | { type: 'run'; run: Run }
  | { type: 'record'; runId: string; record: MagpieRecord; counters: RunCounters }
  | { type: 'deleted'; runId: string };

/** A message as received: who sent it (the sending coordinator's tabId). */
export type ReceivedMessage = CoordinationMessage & { from: string };

/** The right to generate for one run, until released. */
export interface RunLease {
  readonly runId: string;
  /** Frees the lock; safe to call twice. */
  release(): void;
}

/** The parts of the Web Locks API used here (navigator.locks). */
export interface LocksLike {
  request(name: string, options: LockOptions, callback: (lock: Lock | null) => Promise<unknown>): Promise<unknown>;
  query?(): Promise<LockManagerSnapshot>;
}

/** The parts of BroadcastChannel used here. */
export interface ChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface RunCoordinatorOptions {
  /** Default navigator.locks; null: no Web Locks (old browsers), every tab acts as the only tab. */
  locks?: LocksLike | null;
  /** Default a BroadcastChannel named COORDINATION_CHANNEL; null: no cross-tab messages. */
  channel?: ChannelLike | null;
  tabId?: string;
}

function isReceivedMessage(data: unknown): data is ReceivedMessage {
  if (!data || typeof data !== 'object') return false;
  const d = data as { type?: unknown; from?: unknown };
  return typeof d.from === 'string' && (d.type === 'run' || d.type === 'record' || d.type === 'deleted');
}

function defaultLocks(): LocksLike | null {
  const locks = globalThis.navigator?.locks;
  return locks && typeof locks.request === 'function' ? locks : null;
}

function defaultChannel(): ChannelLike | null {
  return typeof BroadcastChannel === 'function' ? new BroadcastChannel(COORDINATION_CHANNEL) : null;
}

export class RunCoordinator {
  readonly tabId: string;
  private readonly locks: LocksLike | null;
  private readonly channel: ChannelLike | null;
  private readonly listeners = new Set<(message: ReceivedMessage) => void>();
  /** Leases this coordinator holds, so a run is never acquired twice by the same tab either. */
  private readonly held = new Map<string, RunLease>();
  private closed = false;

  constructor(options: RunCoordinatorOptions = {}) {
    this.tabId = options.tabId ?? crypto.randomUUID();
    this.locks = options.locks === undefined ? defaultLocks() : options.locks;
    this.channel = options.channel === undefined ? defaultChannel() : options.channel;
    this.channel?.addEventListener('message', (event) => {
      const data: unknown = event.data;
      if (!isReceivedMessage(data) || data.from === this.tabId) return;
      for (const l of this.listeners) l(data);
    });
  }

  /** Whether runs are protected across tabs (Web Locks exist). */
  get crossTab(): boolean {
    return this.locks !== null;
  }

  /** Takes the run's lock if no tab holds it; null when another tab (or this one) already does. */
  tryAcquire(runId: string): Promise<RunLease | null> {
    return this.acquire(runId, { ifAvailable: true });
  }

  /**
   * Waits until the run's lock is free, then holds it. Resolves null when `signal` aborts first. Several tabs may
   * wait; the browser grants the lock to one at a time.
   */
  waitFor(runId: string, signal?: AbortSignal): Promise<RunLease | null> {
    return this.acquire(runId, signal ? { signal } : {});
  }

  /** Whether any tab (this one included) holds the run's lock right now; false without Web Locks support for query. */
  async isHeld(runId: string): Promise<boolean> {
    if (this.held.has(runId)) return true;
    if (!this.locks?.query) return false;
    const snapshot = await this.locks.query();
    return (snapshot.held ?? []).some((l) => l.name === RUN_LOCK_PREFIX + runId);
  }

  /** Whether this tab holds the run's lock. */
  holds(runId: string): boolean {
    return this.held.has(runId);
  }

  publish(message: CoordinationMessage): void {
    if (this.closed) return;
    try {
      this.channel?.postMessage({ ...message, from: this.tabId });
    } catch {
      // A message that cannot be cloned or a closed channel must never break generation; other tabs just lag.
    }
  }

  subscribe(listener: (message: ReceivedMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Releases every lease and stops listening (the page is going away, or a test ends). */
  close(): void {
    this.closed = true;
    for (const lease of [...this.held.values()]) lease.release();
    this.listeners.clear();
    this.channel?.close();
  }

  private acquire(runId: string, options: LockOptions): Promise<RunLease | null> {
    if (this.held.has(runId) || this.closed) return Promise.resolve(null);
    if (!this.locks) return Promise.resolve(this.lease(runId, () => undefined));
    const locks = this.locks;
    return new Promise<RunLease | null>((resolve, reject) => {
      let free: () => void = () => undefined;
      const released = new Promise<void>((r) => (free = r));
      locks
        .request(RUN_LOCK_PREFIX + runId, options, async (lock) => {
          // ifAvailable and the lock is taken: the callback runs with null.
          if (!lock || this.closed || this.held.has(runId)) {
            resolve(null);
            return;
          }
          resolve(this.lease(runId, free));
          // The lock is held for as long as this callback's promise is pending.
          await released;
        })
        .catch((err: unknown) => {
          if (err instanceof DOMException && err.name === 'AbortError') resolve(null);
          else reject(err instanceof Error ? err : new Error(String(err)));
        });
    });
  }

  private lease(runId: string, free: () => void): RunLease {
    let done = false;
    const lease: RunLease = {
      runId,
      release: () => {
        if (done) return;
        done = true;
        if (this.held.get(runId) === lease) this.held.delete(runId);
        free();
      },
    };
    this.held.set(runId, lease);
    return lease;
  }
}
