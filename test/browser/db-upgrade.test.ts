import { deleteDB } from 'idb';
import { afterEach, expect, test } from 'vitest';
import { DB_VERSION, MagpieStore, StorageFullError, StorageVersionError, commitTestHooks } from '../../src/storage/db';
import { makeRecord, makeRun } from '../support/factories';

const names: string[] = [];
const stores: MagpieStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) s.close();
  for (const n of names.splice(0)) await deleteDB(n);
});

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('request failed'));
  });
}

/** A database exactly as version 1 of the app built it (its upgrade step 0), holding the given rows. */
async function createV1(name: string, rows: { runs: unknown[]; records: unknown[] }): Promise<void> {
  const open = indexedDB.open(name, 1);
  open.onupgradeneeded = () => {
    const db = open.result;
    const runs = db.createObjectStore('runs', { keyPath: 'id' });
    runs.createIndex('by-updatedAt', 'updatedAt');
    const records = db.createObjectStore('records', { keyPath: 'uuid' });
    records.createIndex('by-run-seq', ['runId', 'seq'], { unique: true });
    records.createIndex('by-run', 'runId');
    const rejections = db.createObjectStore('rejections', { autoIncrement: true });
    rejections.createIndex('by-run', 'runId');
  };
  const db = await request(open);
  const tx = db.transaction(['runs', 'records'], 'readwrite');
  for (const r of rows.runs) tx.objectStore('runs').put(r);
  for (const r of rows.records) tx.objectStore('records').put(r);
  await new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('write failed'));
  });
  db.close();
}

async function rawRuns(name: string): Promise<Array<{ id: string; status: string }>> {
  const db = await request(indexedDB.open(name));
  const runs = (await request(db.transaction('runs').objectStore('runs').getAll())) as Array<{ id: string; status: string }>;
  db.close();
  return runs;
}

test('upgrading a version-1 database renames stopped → paused and created → queued, keeping every record', async () => {
  const name = `magpie-upgrade-${crypto.randomUUID()}`;
  names.push(name);
  const stopped = makeRun({ id: 'stopped-run', status: 'stopped', counters: { accepted: 2, rejectedEmpty: 0, rejectedLength: 0, attempts: 2, completionTokens: 9 } });
  const created = makeRun({ id: 'created-run', status: 'created' });
  const running = makeRun({ id: 'running-run', status: 'running' });
  const done = makeRun({ id: 'done-run', status: 'done' });
  await createV1(name, { runs: [stopped, created, running, done], records: [makeRecord(stopped, 1), makeRecord(stopped, 2)] });

  expect(DB_VERSION).toBeGreaterThanOrEqual(2);
  const store = await MagpieStore.open(name);
  stores.push(store);
  const byId = Object.fromEntries((await store.listRuns()).map((r) => [r.id, r.status]));
  expect(byId).toEqual({ 'stopped-run': 'paused', 'created-run': 'queued', 'running-run': 'running', 'done-run': 'done' });
  expect(await store.countRecords('stopped-run')).toBe(2);
  expect((await store.getRun('stopped-run'))?.counters.accepted).toBe(2);
  store.close();
  // Written back, not only mapped on read.
  const raw = Object.fromEntries((await rawRuns(name)).map((r) => [r.id, r.status]));
  expect(raw['stopped-run']).toBe('paused');
  expect(raw['created-run']).toBe('queued');
});

test('an old row that slipped past the upgrade is still read with its new status name', async () => {
  const name = `magpie-upgrade-${crypto.randomUUID()}`;
  names.push(name);
  const store = await MagpieStore.open(name);
  stores.push(store);
  await store.createRun(makeRun({ id: 'legacy', status: 'stopped' }));
  expect((await store.getRun('legacy'))?.status).toBe('paused');
  expect((await store.listRuns())[0]?.status).toBe('paused');
});

test('a database from a newer version is refused with StorageVersionError and left untouched', async () => {
  const name = `magpie-upgrade-${crypto.randomUUID()}`;
  names.push(name);
  const open = indexedDB.open(name, DB_VERSION + 5);
  open.onupgradeneeded = () => open.result.createObjectStore('runs', { keyPath: 'id' }).put({ id: 'future', status: 'warp' });
  (await request(open)).close();
  await expect(MagpieStore.open(name)).rejects.toBeInstanceOf(StorageVersionError);
  const db = await request(indexedDB.open(name));
  expect(db.version).toBe(DB_VERSION + 5);
  expect(await request(db.transaction('runs').objectStore('runs').getAll())).toEqual([{ id: 'future', status: 'warp' }]);
  db.close();
});

test('a quota failure inside the commit transaction rolls back record and counters; deleting a run frees the space', async () => {
  const name = `magpie-upgrade-${crypto.randomUUID()}`;
  names.push(name);
  const store = await MagpieStore.open(name);
  stores.push(store);
  const run = makeRun({ id: 'full' });
  const spare = makeRun({ id: 'spare' });
  await store.createRun(run);
  await store.createRun(spare);
  await store.commitRecord(makeRecord(run, 1), { ...run.counters, accepted: 1, attempts: 1 });
  commitTestHooks.quotaFull = true;
  try {
    await expect(store.commitRecord(makeRecord(run, 2), { ...run.counters, accepted: 2, attempts: 2 })).rejects.toBeInstanceOf(StorageFullError);
    expect(await store.countRecords('full')).toBe(1);
    expect((await store.getRun('full'))?.counters.accepted).toBe(1);
    await store.deleteRun('spare');
    expect(commitTestHooks.quotaFull).toBe(false);
    await store.commitRecord(makeRecord(run, 2), { ...run.counters, accepted: 2, attempts: 2 });
    expect(await store.countRecords('full')).toBe(2);
  } finally {
    commitTestHooks.quotaFull = false;
  }
});

test('a held commit keeps its transaction open for the delay and then commits', async () => {
  const name = `magpie-upgrade-${crypto.randomUUID()}`;
  names.push(name);
  const store = await MagpieStore.open(name);
  stores.push(store);
  const run = makeRun({ id: 'slow' });
  await store.createRun(run);
  const holds: boolean[] = [];
  commitTestHooks.delayMs = 120;
  commitTestHooks.onHold = (h) => holds.push(h);
  try {
    const t0 = performance.now();
    await store.commitRecord(makeRecord(run, 1), { ...run.counters, accepted: 1, attempts: 1 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(110);
    expect(holds).toEqual([true, false]);
    expect(await store.countRecords('slow')).toBe(1);
  } finally {
    commitTestHooks.delayMs = 0;
    delete commitTestHooks.onHold;
  }
});
