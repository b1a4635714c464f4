/**
 * The only module that touches IndexedDB. Runs, their records and their rejected instructions live in one
 * database ("magpie-web"); every write that changes a run's counters happens in the same transaction as the
 * record or rejection it counts, so a crash never leaves counters and data disagreeing.
 */
import { openDB, type DBSchema, type IDBPDatabase, type IDBPObjectStore, type IDBPTransaction, type StoreNames } from 'idb';
import type { MagpieRecord, RejectedInstruction, Run, RunCounters } from '../core/record';
import { normalizeRunStatus } from '../core/run-state';

export const DEFAULT_DB_NAME = 'magpie-web';

interface MagpieDB extends DBSchema {
  runs: {
    key: string;
    value: Run;
    indexes: { 'by-updatedAt': number };
  };
  records: {
    key: string;
    value: MagpieRecord;
    indexes: { 'by-run-seq': [string, number]; 'by-run': string };
  };
  rejections: {
    key: number;
    value: RejectedInstruction;
    indexes: { 'by-run': string };
  };
}

type UpgradeTx = IDBPTransaction<MagpieDB, StoreNames<MagpieDB>[], 'versionchange'>;
type UpgradeStep = (db: IDBPDatabase<MagpieDB>, tx: UpgradeTx) => void;

/**
 * Schema history: step i upgrades a database from version i to version i + 1. Append new steps; never edit a
 * shipped one, because users' databases were built by it. (A list instead of a falling-through switch, which
 * `noFallthroughCasesInSwitch` forbids.)
 */
const UPGRADES: readonly UpgradeStep[] = [
  // 0 → 1: the original stores.
  (db) => {
    const runs = db.createObjectStore('runs', { keyPath: 'id' });
    runs.createIndex('by-updatedAt', 'updatedAt');
    const records = db.createObjectStore('records', { keyPath: 'uuid' });
    records.createIndex('by-run-seq', ['runId', 'seq'], { unique: true });
    records.createIndex('by-run', 'runId');
    const rejections = db.createObjectStore('rejections', { autoIncrement: true });
    rejections.createIndex('by-run', 'runId');
  },
  // 1 → 2: the run state machine (queued → loading → running ⇄ paused → done | failed) renames two statuses.
  (_db, tx) => {
    const runs = tx.objectStore('runs');
    // Only IndexedDB requests are awaited, so the versionchange transaction stays open until the last put.
    void (async () => {
      for (let cursor = await runs.openCursor(); cursor; cursor = await cursor.continue()) {
        const status = normalizeRunStatus(cursor.value.status);
        if (status !== cursor.value.status) await cursor.update({ ...cursor.value, status });
      }
    })();
  },
];

/** The schema version this build of the app writes. */
export const DB_VERSION = UPGRADES.length;

// ---------------------------------------------------------------------------------------------------------------
// Errors: each message is written for the user.

export class StorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}

export class StorageFullError extends StorageError {
  constructor(options?: { cause?: unknown }) {
    super(
      'The browser refused to store more data: the storage quota for this site is full. Export and delete old runs, free disk space, or allow persistent storage, then continue.',
      options,
    );
    this.name = 'StorageFullError';
  }
}

export class StorageVersionError extends StorageError {
  constructor(options?: { cause?: unknown }) {
    super(
      'The saved data was written by a newer version of Magpie Web than this page. Reload the page (or clear the browser cache) to get the latest version; your data has not been changed.',
      options,
    );
    this.name = 'StorageVersionError';
  }
}

export class StorageClosedError extends StorageError {
  constructor() {
    super('The database connection is closed (the app was updated in another tab, or the storage was cleared). Reload the page.');
    this.name = 'StorageClosedError';
  }
}

export class RunNotFoundError extends StorageError {
  readonly runId: string;
  constructor(runId: string) {
    super(`Run ${runId} does not exist (it may have been deleted).`);
    this.name = 'RunNotFoundError';
    this.runId = runId;
  }
}

export class DuplicateRecordError extends StorageError {
  readonly runId: string;
  readonly seq: number;
  constructor(runId: string, seq: number, options?: { cause?: unknown }) {
    super(`Run ${runId} already has a record at position ${seq} (or one with the same uuid); nothing was written.`, options);
    this.name = 'DuplicateRecordError';
    this.runId = runId;
    this.seq = seq;
  }
}

function errorName(err: unknown): string {
  if (err && typeof err === 'object' && 'name' in err && typeof err.name === 'string') return err.name;
  return '';
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Turns a raw IndexedDB failure into a StorageError with a message for the user; StorageErrors pass through. */
export function toStorageError(err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  switch (errorName(err)) {
    case 'QuotaExceededError':
      return new StorageFullError({ cause: err });
    case 'VersionError':
      return new StorageVersionError({ cause: err });
    default:
      return new StorageError(`The browser database failed: ${errorMessage(err)}`, { cause: err });
  }
}

function abortQuietly(tx: { abort(): void }): void {
  try {
    tx.abort();
  } catch {
    // Already committed or aborted: nothing left to undo.
  }
}

/** Rows written by older versions may carry renamed statuses; every run read goes through here. */
function readRun(run: Run): Run {
  const status = normalizeRunStatus(run.status);
  return status === run.status ? run : { ...run, status };
}

/** Test builds only: slow or failing record commits, so end-to-end tests can reload mid-commit or fill the disk. */
export interface CommitTestHooks {
  /** Keep each record's transaction open this long before it commits. */
  delayMs?: number;
  /** Every record commit fails with a QuotaExceededError DOMException (cleared by deleting a run). */
  quotaFull?: boolean;
  /** Called with true when a held commit starts and false when its hold ends. */
  onHold?: (holding: boolean) => void;
}

export const commitTestHooks: CommitTestHooks = {};

type RunsStoreInTx = IDBPObjectStore<MagpieDB, ('runs' | 'records' | 'rejections')[], 'runs', 'readwrite'>;

async function holdCommitForTest(runs: RunsStoreInTx, runId: string): Promise<void> {
  if (commitTestHooks.quotaFull) throw new DOMException('Simulated: the quota for this origin is used up.', 'QuotaExceededError');
  const delay = commitTestHooks.delayMs ?? 0;
  if (delay <= 0) return;
  commitTestHooks.onHold?.(true);
  try {
    // A transaction commits as soon as it has no pending request, so keep one in flight until the delay is over.
    const end = Date.now() + delay;
    while (Date.now() < end) await runs.get(runId);
  } finally {
    commitTestHooks.onHold?.(false);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Browser storage helpers (no database needed).

/** Asks the browser not to evict this site's data under storage pressure. Resolves false when refused or unsupported. */
export async function requestPersistence(): Promise<boolean> {
  const storage = globalThis.navigator?.storage;
  if (!storage || typeof storage.persist !== 'function') return false;
  try {
    if (typeof storage.persisted === 'function' && (await storage.persisted())) return true;
    return await storage.persist();
  } catch {
    return false;
  }
}

/** Usage and quota in bytes for this origin, or undefined when the browser does not tell. */
export async function estimateStorage(): Promise<{ usage: number; quota: number } | undefined> {
  const storage = globalThis.navigator?.storage;
  if (!storage || typeof storage.estimate !== 'function') return undefined;
  try {
    const e = await storage.estimate();
    return { usage: e.usage ?? 0, quota: e.quota ?? 0 };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------

export interface OpenStoreOptions {
  /** Our connection was closed because a newer app version (another tab) upgrades the database, or the browser ended it. */
  onVersionChange?: () => void;
  /** Our upgrade waits for an older tab to close its connection. */
  onBlocked?: () => void;
}

export interface RecordPage {
  offset: number;
  limit: number;
  /** 'asc' (default): seq 1, 2, …; 'desc': newest record first. */
  order?: 'asc' | 'desc';
}

const ITERATE_BATCH = 200;

function runSeqRange(runId: string, afterSeq?: number): IDBKeyRange {
  return afterSeq === undefined
    ? IDBKeyRange.bound([runId, -Infinity], [runId, Infinity])
    : IDBKeyRange.bound([runId, afterSeq], [runId, Infinity], true, false);
}

function assertCount(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer, got ${n}`);
}

export class MagpieStore {
  private db: IDBPDatabase<MagpieDB> | null;
  readonly name: string;

  private constructor(db: IDBPDatabase<MagpieDB>, name: string) {
    this.db = db;
    this.name = name;
  }

  static async open(name: string = DEFAULT_DB_NAME, options: OpenStoreOptions = {}): Promise<MagpieStore> {
    // Filled once the connection exists; the callbacks below fire later, on other tabs' actions.
    const opened: { store?: MagpieStore } = {};
    const lost = (): void => {
      opened.store?.dropConnection();
      options.onVersionChange?.();
    };
    let db: IDBPDatabase<MagpieDB>;
    try {
      db = await openDB<MagpieDB>(name, DB_VERSION, {
        upgrade(database, oldVersion, newVersion, tx) {
          const target = newVersion ?? DB_VERSION;
          for (let v = oldVersion; v < target; v++) UPGRADES[v]?.(database, tx);
        },
        blocked() {
          options.onBlocked?.();
        },
        blocking() {
          // Close so the newer tab's upgrade can run instead of hanging; this tab must reload.
          lost();
        },
        terminated() {
          lost();
        },
      });
    } catch (err) {
      throw toStorageError(err);
    }
    opened.store = new MagpieStore(db, name);
    return opened.store;
  }

  /** Closes the connection; further calls reject with StorageClosedError. Safe to call twice. */
  close(): void {
    this.dropConnection();
  }

  get closed(): boolean {
    return this.db === null;
  }

  private dropConnection(): void {
    this.db?.close();
    this.db = null;
  }

  private connection(): IDBPDatabase<MagpieDB> {
    if (!this.db) throw new StorageClosedError();
    return this.db;
  }

  /** Runs `fn`, translating IndexedDB failures into StorageErrors. */
  private async guard<T>(fn: (db: IDBPDatabase<MagpieDB>) => Promise<T>): Promise<T> {
    try {
      return await fn(this.connection());
    } catch (err) {
      throw toStorageError(err);
    }
  }

  // --- runs ------------------------------------------------------------------------------------------------------

  async createRun(run: Run): Promise<void> {
    await this.guard(async (db) => {
      await db.add('runs', run);
    });
  }

  async getRun(id: string): Promise<Run | undefined> {
    const run = await this.guard((db) => db.get('runs', id));
    return run && readRun(run);
  }

  /** All runs, most recently updated first. */
  async listRuns(): Promise<Run[]> {
    const runs = await this.guard((db) => db.getAllFromIndex('runs', 'by-updatedAt'));
    return runs.reverse().map(readRun);
  }

  /** Applies `patch` to the stored run, stamps updatedAt with the current time, and returns the stored result. */
  async updateRun(id: string, patch: Partial<Omit<Run, 'id'>>): Promise<Run> {
    return this.guard(async (db) => {
      const tx = db.transaction('runs', 'readwrite');
      const done = tx.done;
      done.catch(() => undefined); // Observed below; this stops an abort from surfacing as an unhandled rejection.
      try {
        const current = await tx.store.get(id);
        if (!current) throw new RunNotFoundError(id);
        const next: Run = { ...current, ...patch, id, updatedAt: Date.now() };
        await tx.store.put(next);
        await done;
        return next;
      } catch (err) {
        abortQuietly(tx);
        await done.catch(() => undefined);
        throw err;
      }
    });
  }

  /**
   * Replaces a stored record (same uuid, run and seq) — used to save a hand-made preference judgement. The record
   * must exist: this never adds one, so counters stay right.
   */
  async updateRecord(record: MagpieRecord): Promise<void> {
    await this.guard(async (db) => {
      const tx = db.transaction('records', 'readwrite');
      const done = tx.done;
      done.catch(() => undefined);
      try {
        const current = await tx.store.get(record.uuid);
        if (!current || current.runId !== record.runId || current.seq !== record.seq) {
          throw new StorageError(`Record ${record.uuid} is not stored; it cannot be updated.`);
        }
        await tx.store.put(record);
        await done;
      } catch (err) {
        abortQuietly(tx);
        await done.catch(() => undefined);
        throw err;
      }
    });
  }

  /** Deletes the run, its records and its rejections in one transaction. Deleting a missing run is not an error. */
  async deleteRun(id: string): Promise<void> {
    await this.guard(async (db) => {
      const tx = db.transaction(['runs', 'records', 'rejections'], 'readwrite');
      const done = tx.done;
      done.catch(() => undefined);
      try {
        const records = tx.objectStore('records');
        const rejections = tx.objectStore('rejections');
        const [recordKeys, rejectionKeys] = await Promise.all([
          records.index('by-run').getAllKeys(id),
          rejections.index('by-run').getAllKeys(id),
        ]);
        await Promise.all([
          tx.objectStore('runs').delete(id),
          ...recordKeys.map((k) => records.delete(k)),
          ...rejectionKeys.map((k) => rejections.delete(k)),
        ]);
        await done;
        // Deleting a run is how a user frees space: the simulated full disk of the e2e tests ends here too.
        if (__MAGPIE_TEST_BUILD__) commitTestHooks.quotaFull = false;
      } catch (err) {
        abortQuietly(tx);
        await done.catch(() => undefined);
        throw err;
      }
    });
  }

  // --- commits ---------------------------------------------------------------------------------------------------

  /**
   * Stores an accepted record and the run's new counters atomically. Resolves once the transaction has committed;
   * rejects, writing nothing, when the run is missing or the run already has a record at this seq (or this uuid).
   */
  async commitRecord(record: MagpieRecord, counters: RunCounters): Promise<void> {
    await this.commitWithCounters(record.runId, counters, 'records', async (tx) => {
      try {
        await tx.objectStore('records').add(record);
      } catch (err) {
        throw errorName(err) === 'ConstraintError' ? new DuplicateRecordError(record.runId, record.seq, { cause: err }) : err;
      }
    });
  }

  /** Stores a rejected instruction and the run's new counters atomically; rejects, writing nothing, if the run is missing. */
  async commitRejection(rejection: RejectedInstruction, counters: RunCounters): Promise<void> {
    await this.commitWithCounters(rejection.runId, counters, 'rejections', async (tx) => {
      await tx.objectStore('rejections').add(rejection);
    });
  }

  private async commitWithCounters(
    runId: string,
    counters: RunCounters,
    storeName: 'records' | 'rejections',
    add: (tx: IDBPTransaction<MagpieDB, ('runs' | 'records' | 'rejections')[], 'readwrite'>) => Promise<void>,
  ): Promise<void> {
    await this.guard(async (db) => {
      const tx = db.transaction(['runs', storeName], 'readwrite');
      const done = tx.done;
      done.catch(() => undefined);
      try {
        const runs = tx.objectStore('runs');
        const run = await runs.get(runId);
        if (!run) throw new RunNotFoundError(runId);
        await Promise.all([add(tx), runs.put({ ...run, counters: { ...counters }, updatedAt: Date.now() })]);
        if (__MAGPIE_TEST_BUILD__ && storeName === 'records') await holdCommitForTest(runs, runId);
        await done;
      } catch (err) {
        abortQuietly(tx);
        // Reject only once the abort has rolled everything back.
        await done.catch(() => undefined);
        throw err;
      }
    });
  }

  // --- reading records -------------------------------------------------------------------------------------------

  async countRecords(runId: string): Promise<number> {
    return this.guard((db) => db.countFromIndex('records', 'by-run', runId));
  }

  /** One page of a run's records ordered by seq, for the records list. */
  async getRecords(runId: string, page: RecordPage): Promise<MagpieRecord[]> {
    assertCount('offset', page.offset);
    assertCount('limit', page.limit);
    if (page.limit === 0) return [];
    return this.guard(async (db) => {
      const tx = db.transaction('records', 'readonly');
      const done = tx.done;
      done.catch(() => undefined); // A failed request is reported by the await that made it.
      const index = tx.store.index('by-run-seq');
      let cursor = await index.openCursor(runSeqRange(runId), page.order === 'desc' ? 'prev' : 'next');
      if (cursor && page.offset > 0) cursor = await cursor.advance(page.offset);
      const out: MagpieRecord[] = [];
      while (cursor && out.length < page.limit) {
        out.push(cursor.value);
        cursor = await cursor.continue();
      }
      await done;
      return out;
    });
  }

  /**
   * Yields a run's records in seq order, reading `batchSize` at a time, so exports of large runs never hold the
   * whole run in memory. Records committed while iterating are picked up if their seq is beyond the last yielded.
   */
  async *iterateRecords(runId: string, options: { batchSize?: number } = {}): AsyncGenerator<MagpieRecord, void, undefined> {
    const batchSize = options.batchSize ?? ITERATE_BATCH;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    let afterSeq: number | undefined;
    for (;;) {
      // Each batch is its own short transaction: an IndexedDB transaction auto-commits as soon as we await anything
      // that is not one of its requests, so one cannot stay open across the consumer's awaits between yields.
      const range = runSeqRange(runId, afterSeq);
      const batch = await this.guard((db) => db.getAllFromIndex('records', 'by-run-seq', range, batchSize));
      for (const record of batch) yield record;
      const last = batch.at(-1);
      if (!last || batch.length < batchSize) return;
      afterSeq = last.seq;
    }
  }

  /** A run's rejected instructions in the order they were stored (oldest first), at most `limit`. */
  async listRejections(runId: string, limit?: number): Promise<RejectedInstruction[]> {
    if (limit !== undefined) assertCount('limit', limit);
    if (limit === 0) return [];
    return this.guard((db) => db.getAllFromIndex('rejections', 'by-run', runId, limit));
  }

  // --- browser storage -------------------------------------------------------------------------------------------

  /** Same as the module function; here so code holding a store needs no second import. */
  requestPersistence(): Promise<boolean> {
    return requestPersistence();
  }

  estimateStorage(): Promise<{ usage: number; quota: number } | undefined> {
    return estimateStorage();
  }
}
