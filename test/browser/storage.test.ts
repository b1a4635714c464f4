import { deleteDB } from 'idb';
import { afterEach, describe, expect, test } from 'vitest';
import type { MagpieRecord, RunCounters } from '../../src/core/record';
import type { RunStore } from '../../src/core/runner';
import {
  DB_VERSION,
  DuplicateRecordError,
  MagpieStore,
  RunNotFoundError,
  StorageClosedError,
  StorageError,
  StorageFullError,
  StorageVersionError,
  estimateStorage,
  requestPersistence,
  toStorageError,
} from '../../src/storage/db';
import { makeRecord, makeRejection, makeRun } from '../support/factories';

const dbNames: string[] = [];
const stores: MagpieStore[] = [];

function freshName(): string {
  const name = `magpie-test-${crypto.randomUUID()}`;
  dbNames.push(name);
  return name;
}

async function openStore(name = freshName()): Promise<MagpieStore> {
  const store = await MagpieStore.open(name);
  stores.push(store);
  return store;
}

afterEach(async () => {
  for (const s of stores.splice(0)) s.close();
  for (const name of dbNames.splice(0)) await deleteDB(name);
});

/** Opens a database with the raw API (no idb), as an older or newer app would. */
function rawOpen(name: string, version?: number, onUpgrade?: (db: IDBDatabase) => void): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = version === undefined ? indexedDB.open(name) : indexedDB.open(name, version);
    req.onupgradeneeded = () => onUpgrade?.(req.result);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('open failed'));
  });
}

function rawRequest<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('request failed'));
  });
}

/** Yields to the event loop (a macrotask), so any IndexedDB transaction left open across it auto-commits. */
function macrotask(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

function counters(accepted: number, extra: Partial<RunCounters> = {}): RunCounters {
  return { accepted, rejectedEmpty: 0, rejectedLength: 0, attempts: accepted, completionTokens: accepted * 24, ...extra };
}

function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('schema', () => {
  test('a fresh database gets the current version, the three stores and their indexes', async () => {
    const name = freshName();
    (await openStore(name)).close();
    const db = await rawOpen(name);
    try {
      expect(db.version).toBe(DB_VERSION);
      expect([...db.objectStoreNames].sort()).toEqual(['records', 'rejections', 'runs']);
      const tx = db.transaction(['runs', 'records', 'rejections'], 'readonly');
      const runs = tx.objectStore('runs');
      const records = tx.objectStore('records');
      const rejections = tx.objectStore('rejections');
      expect(runs.keyPath).toBe('id');
      expect(runs.index('by-updatedAt').keyPath).toBe('updatedAt');
      expect(records.keyPath).toBe('uuid');
      expect(records.index('by-run-seq').keyPath).toEqual(['runId', 'seq']);
      expect(records.index('by-run-seq').unique).toBe(true);
      expect(records.index('by-run').keyPath).toBe('runId');
      expect(rejections.autoIncrement).toBe(true);
      expect(rejections.index('by-run').keyPath).toBe('runId');
    } finally {
      db.close();
    }
  });
});

describe('runs', () => {
  test('create, get, list (most recently updated first) and update', async () => {
    const store = await openStore();
    const a = makeRun({ label: 'a', updatedAt: 1_000 });
    const b = makeRun({ label: 'b', updatedAt: 3_000 });
    const c = makeRun({ label: 'c', updatedAt: 2_000 });
    for (const r of [a, b, c]) await store.createRun(r);

    expect(await store.getRun(b.id)).toEqual(b);
    expect(await store.getRun(crypto.randomUUID())).toBeUndefined();
    expect((await store.listRuns()).map((r) => r.label)).toEqual(['b', 'c', 'a']);

    const before = Date.now();
    const updated = await store.updateRun(a.id, { status: 'running', label: 'a2' });
    expect(updated).toMatchObject({ id: a.id, status: 'running', label: 'a2', modelId: a.modelId });
    expect(updated.updatedAt).toBeGreaterThanOrEqual(before);
    expect(await store.getRun(a.id)).toEqual(updated);
    expect((await store.listRuns()).map((r) => r.label)).toEqual(['a2', 'b', 'c']);
  });

  test('updateRun of a missing run rejects and creates nothing', async () => {
    const store = await openStore();
    const id = crypto.randomUUID();
    await expect(store.updateRun(id, { status: 'done' })).rejects.toBeInstanceOf(RunNotFoundError);
    expect(await store.getRun(id)).toBeUndefined();
  });

  test('createRun refuses an id that already exists and keeps the original', async () => {
    const store = await openStore();
    const run = makeRun({ label: 'original' });
    await store.createRun(run);
    await expect(store.createRun({ ...run, label: 'impostor' })).rejects.toBeInstanceOf(StorageError);
    expect((await store.getRun(run.id))?.label).toBe('original');
  });
});

describe('commits', () => {
  test('commitRecord stores the record and the run counters together', async () => {
    const store = await openStore();
    const asRunStore: RunStore = store; // The runner's storage contract.
    const run = makeRun({ updatedAt: 1_000 });
    await store.createRun(run);
    const record = makeRecord(run, 1);

    await asRunStore.commitRecord(record, counters(1));

    const stored = await store.getRun(run.id);
    expect(stored?.counters).toEqual(counters(1));
    expect(stored?.updatedAt).toBeGreaterThan(1_000);
    expect(await store.getRecords(run.id, { offset: 0, limit: 10 })).toEqual([record]);
  });

  test('a duplicate seq (or uuid) rejects and leaves records and counters unchanged', async () => {
    const store = await openStore();
    const run = makeRun();
    await store.createRun(run);
    const first = makeRecord(run, 1);
    await store.commitRecord(first, counters(1));

    const sameSeq = makeRecord(run, 1, { instruction: 'a different instruction' });
    const err = await store.commitRecord(sameSeq, counters(2)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DuplicateRecordError);
    expect(err).toMatchObject({ runId: run.id, seq: 1 });

    await expect(store.commitRecord({ ...first, seq: 2 }, counters(3))).rejects.toBeInstanceOf(DuplicateRecordError);

    expect((await store.getRun(run.id))?.counters).toEqual(counters(1));
    expect(await store.countRecords(run.id)).toBe(1);
    expect(await store.getRecords(run.id, { offset: 0, limit: 10 })).toEqual([first]);
  });

  test('the same seq in another run is not a duplicate', async () => {
    const store = await openStore();
    const a = makeRun();
    const b = makeRun();
    await store.createRun(a);
    await store.createRun(b);
    await store.commitRecord(makeRecord(a, 1), counters(1));
    await store.commitRecord(makeRecord(b, 1), counters(1));
    expect(await store.countRecords(a.id)).toBe(1);
    expect(await store.countRecords(b.id)).toBe(1);
  });

  test('commitRecord for a missing run rejects and writes nothing', async () => {
    const store = await openStore();
    const ghost = makeRun();
    await expect(store.commitRecord(makeRecord(ghost, 1), counters(1))).rejects.toBeInstanceOf(RunNotFoundError);
    expect(await store.countRecords(ghost.id)).toBe(0);
    expect(await store.getRun(ghost.id)).toBeUndefined();
  });

  test('commitRejection stores the rejection and the counters; listRejections keeps order and limit', async () => {
    const store = await openStore();
    const run = makeRun();
    await store.createRun(run);
    const r1 = makeRejection(run, 1, { reason: 'empty', text: '' });
    const r2 = makeRejection(run, 2, { reason: 'length', text: 'Write a very long' });
    const r3 = makeRejection(run, 3, { reason: 'empty', text: ' ' });
    await store.commitRejection(r1, counters(0, { rejectedEmpty: 1, attempts: 1 }));
    await store.commitRejection(r2, counters(0, { rejectedEmpty: 1, rejectedLength: 1, attempts: 2 }));
    await store.commitRejection(r3, counters(0, { rejectedEmpty: 2, rejectedLength: 1, attempts: 3 }));

    expect((await store.getRun(run.id))?.counters).toEqual(counters(0, { rejectedEmpty: 2, rejectedLength: 1, attempts: 3 }));
    expect(await store.listRejections(run.id)).toEqual([r1, r2, r3]);
    expect(await store.listRejections(run.id, 2)).toEqual([r1, r2]);
    expect(await store.listRejections(crypto.randomUUID())).toEqual([]);
  });

  test('commitRejection for a missing run rejects and writes nothing', async () => {
    const store = await openStore();
    const ghost = makeRun();
    await expect(store.commitRejection(makeRejection(ghost, 1), counters(0, { attempts: 1 }))).rejects.toBeInstanceOf(
      RunNotFoundError,
    );
    expect(await store.listRejections(ghost.id)).toEqual([]);
  });
});

describe('reading records', () => {
  test('iterateRecords yields 1000+ records in seq order across batches, with awaits between items', async () => {
    const store = await openStore();
    const run = makeRun();
    const other = makeRun();
    await store.createRun(run);
    await store.createRun(other);
    const total = 1_234;
    const seqs = shuffled(Array.from({ length: total }, (_, i) => i + 1));
    await Promise.all(seqs.map((seq) => store.commitRecord(makeRecord(run, seq), counters(seq))));
    await Promise.all([1, 2, 3].map((seq) => store.commitRecord(makeRecord(other, seq), counters(seq))));

    const seen: number[] = [];
    let otherSeq = 10;
    for await (const record of store.iterateRecords(run.id)) {
      expect(record.runId).toBe(run.id);
      seen.push(record.seq);
      await macrotask();
      if (record.seq % 250 === 0) {
        // A write to the same store mid-iteration would wait forever (or fail) if a read transaction were held open.
        await store.commitRecord(makeRecord(other, otherSeq++), counters(otherSeq));
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(await store.countRecords(other.id)).toBe(3 + 4);
  });

  test('iterateRecords picks up records committed beyond the last yielded seq, and yields nothing for an empty run', async () => {
    const store = await openStore();
    const run = makeRun();
    await store.createRun(run);
    for (let seq = 1; seq <= 10; seq++) await store.commitRecord(makeRecord(run, seq), counters(seq));

    const seen: number[] = [];
    for await (const record of store.iterateRecords(run.id, { batchSize: 4 })) {
      seen.push(record.seq);
      if (record.seq === 3) await store.commitRecord(makeRecord(run, 11), counters(11));
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);

    const empty: MagpieRecord[] = [];
    for await (const record of store.iterateRecords(crypto.randomUUID())) empty.push(record);
    expect(empty).toEqual([]);
  });

  test('getRecords pages in seq order, and newest first with order desc', async () => {
    const store = await openStore();
    const run = makeRun();
    const neighbour = makeRun();
    await store.createRun(run);
    await store.createRun(neighbour);
    for (const seq of shuffled(Array.from({ length: 25 }, (_, i) => i + 1))) {
      await store.commitRecord(makeRecord(run, seq), counters(seq));
    }
    await store.commitRecord(makeRecord(neighbour, 1), counters(1));
    const seqsOf = (rs: MagpieRecord[]): number[] => rs.map((r) => r.seq);

    expect(await store.countRecords(run.id)).toBe(25);
    expect(seqsOf(await store.getRecords(run.id, { offset: 0, limit: 5 }))).toEqual([1, 2, 3, 4, 5]);
    expect(seqsOf(await store.getRecords(run.id, { offset: 10, limit: 5 }))).toEqual([11, 12, 13, 14, 15]);
    expect(seqsOf(await store.getRecords(run.id, { offset: 22, limit: 5 }))).toEqual([23, 24, 25]);
    expect(seqsOf(await store.getRecords(run.id, { offset: 0, limit: 3, order: 'desc' }))).toEqual([25, 24, 23]);
    expect(seqsOf(await store.getRecords(run.id, { offset: 20, limit: 10, order: 'desc' }))).toEqual([5, 4, 3, 2, 1]);
    expect(await store.getRecords(run.id, { offset: 25, limit: 5 })).toEqual([]);
    expect(await store.getRecords(run.id, { offset: 0, limit: 0 })).toEqual([]);
    await expect(store.getRecords(run.id, { offset: -1, limit: 5 })).rejects.toBeInstanceOf(RangeError);
  });
});

describe('deleteRun', () => {
  test('removes the run, its records and its rejections, and nothing of other runs', async () => {
    const store = await openStore();
    const doomed = makeRun();
    const kept = makeRun();
    for (const run of [doomed, kept]) {
      await store.createRun(run);
      for (let seq = 1; seq <= 30; seq++) await store.commitRecord(makeRecord(run, seq), counters(seq));
      await store.commitRejection(makeRejection(run, 31), counters(30, { rejectedEmpty: 1, attempts: 31 }));
    }

    await store.deleteRun(doomed.id);

    expect(await store.getRun(doomed.id)).toBeUndefined();
    expect(await store.countRecords(doomed.id)).toBe(0);
    expect(await store.listRejections(doomed.id)).toEqual([]);
    expect((await store.getRun(kept.id))?.counters.accepted).toBe(30);
    expect(await store.countRecords(kept.id)).toBe(30);
    expect(await store.listRejections(kept.id)).toHaveLength(1);
    expect((await store.listRuns()).map((r) => r.id)).toEqual([kept.id]);

    // A deleted run's seqs are free again (its index entries are gone too).
    await store.createRun(doomed);
    await store.commitRecord(makeRecord(doomed, 1), counters(1));
    expect(await store.countRecords(doomed.id)).toBe(1);
  });
});

describe('lifetime', () => {
  test('data survives close() and reopen; a closed store rejects with StorageClosedError', async () => {
    const name = freshName();
    const first = await openStore(name);
    const run = makeRun();
    await first.createRun(run);
    const record = makeRecord(run, 1);
    await first.commitRecord(record, counters(1));
    await first.commitRejection(makeRejection(run, 2), counters(1, { rejectedLength: 1, attempts: 2 }));
    first.close();
    first.close();
    expect(first.closed).toBe(true);
    await expect(first.getRun(run.id)).rejects.toBeInstanceOf(StorageClosedError);

    const second = await openStore(name);
    expect((await second.getRun(run.id))?.counters).toEqual(counters(1, { rejectedLength: 1, attempts: 2 }));
    expect(await second.getRecords(run.id, { offset: 0, limit: 5 })).toEqual([record]);
    expect(await second.listRejections(run.id)).toHaveLength(1);
  });

  test('a database from a newer app version raises StorageVersionError and is left intact', async () => {
    const name = freshName();
    const newer = DB_VERSION + 1;
    const run = makeRun();
    const raw = await rawOpen(name, newer, (db) => {
      db.createObjectStore('runs', { keyPath: 'id' });
      db.createObjectStore('future-store');
    });
    await rawRequest(raw.transaction('runs', 'readwrite').objectStore('runs').put(run));
    raw.close();

    const err = await MagpieStore.open(name).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageVersionError);
    expect((err as Error).message).toMatch(/newer version/);

    const after = await rawOpen(name);
    try {
      expect(after.version).toBe(newer);
      expect([...after.objectStoreNames].sort()).toEqual(['future-store', 'runs']);
      expect(await rawRequest(after.transaction('runs').objectStore('runs').get(run.id))).toEqual(run);
    } finally {
      after.close();
    }
  });

  test('a newer version opening elsewhere closes this connection instead of being blocked', async () => {
    const name = freshName();
    let notified = 0;
    const store = await MagpieStore.open(name, { onVersionChange: () => notified++ });
    stores.push(store);
    const run = makeRun();
    await store.createRun(run);

    const newer = await rawOpen(name, DB_VERSION + 1);
    try {
      expect(newer.version).toBe(DB_VERSION + 1);
      expect(notified).toBe(1);
      expect(store.closed).toBe(true);
      await expect(store.getRun(run.id)).rejects.toBeInstanceOf(StorageClosedError);
    } finally {
      newer.close();
    }
  });
});

describe('errors and browser storage', () => {
  test('toStorageError maps quota and version failures to user-facing errors', () => {
    const full = toStorageError(new DOMException('Quota exceeded', 'QuotaExceededError'));
    expect(full).toBeInstanceOf(StorageFullError);
    expect(full.message).toMatch(/full/);
    expect(full.cause).toBeInstanceOf(DOMException);

    expect(toStorageError(new DOMException('v', 'VersionError'))).toBeInstanceOf(StorageVersionError);

    const other = toStorageError(new DOMException('disk on fire', 'UnknownError'));
    expect(other).toBeInstanceOf(StorageError);
    expect(other).not.toBeInstanceOf(StorageFullError);
    expect(other.message).toContain('disk on fire');

    const own = new RunNotFoundError('x');
    expect(toStorageError(own)).toBe(own);
  });

  test('estimateStorage reports usage within a positive quota; requestPersistence agrees with persisted()', async () => {
    const estimate = await estimateStorage();
    expect(estimate).toBeDefined();
    expect(estimate?.quota).toBeGreaterThan(0);
    expect(estimate?.usage).toBeGreaterThanOrEqual(0);
    expect(estimate?.usage).toBeLessThanOrEqual(estimate?.quota ?? 0);

    const granted = await requestPersistence();
    expect(granted).toBe(await navigator.storage.persisted());
  });
});
