import { afterEach, describe, expect, test } from 'vitest';
import { RUN_LOCK_PREFIX, RunCoordinator, type ReceivedMessage } from '../../src/app/run-coordination';
import { emptyCounters, type Run } from '../../src/core/record';

// Two coordinators in one page stand for two tabs: each has its own BroadcastChannel object (messages reach the
// other, never the sender) and shares the origin's Web Locks.
const made: RunCoordinator[] = [];
function tab(tabId: string): RunCoordinator {
  const c = new RunCoordinator({ tabId });
  made.push(c);
  return c;
}
afterEach(() => {
  for (const c of made.splice(0)) c.close();
});

function nextMessage(c: RunCoordinator): Promise<ReceivedMessage> {
  return new Promise((resolve) => {
    const off = c.subscribe((m) => {
      off();
      resolve(m);
    });
  });
}

const settle = (ms = 30) => new Promise((r) => setTimeout(r, ms));

function run(id: string): Run {
  return {
    id,
    label: 'r',
    createdAt: 0,
    updatedAt: 0,
    status: 'running',
    modelId: 'm',
    engine: 'scripted',
    templateId: 'llama-3',
    engineAddsBos: false,
    settings: { count: 3, seed: 1, instruction: { temperature: 1, topP: 1, maxTokens: 8 }, response: { temperature: 0, topP: 1, maxTokens: 8 } },
    counters: emptyCounters(),
  };
}

describe('RunCoordinator', () => {
  test('only one tab gets a run: the second tryAcquire is refused until the first releases', async () => {
    const a = tab('A');
    const b = tab('B');
    const id = crypto.randomUUID();
    const lease = await a.tryAcquire(id);
    expect(lease?.runId).toBe(id);
    expect(await b.tryAcquire(id)).toBeNull();
    // Not even the holder gets it twice.
    expect(await a.tryAcquire(id)).toBeNull();
    expect(await b.isHeld(id)).toBe(true);
    expect(a.holds(id)).toBe(true);
    expect(b.holds(id)).toBe(false);
    const snapshot = await navigator.locks.query();
    expect(snapshot.held?.filter((l) => l.name === RUN_LOCK_PREFIX + id)).toHaveLength(1);
    lease?.release();
    lease?.release(); // twice is harmless
    await settle();
    expect(await b.isHeld(id)).toBe(false);
    const second = await b.tryAcquire(id);
    expect(second).not.toBeNull();
    second?.release();
  });

  test('a waiting tab gets the lock when the holder goes away (closing releases its leases)', async () => {
    const a = tab('A');
    const b = tab('B');
    const id = crypto.randomUUID();
    await a.tryAcquire(id);
    let granted = false;
    const waiting = b.waitFor(id).then((l) => {
      granted = true;
      return l;
    });
    await settle();
    expect(granted).toBe(false);
    a.close(); // the runner tab closes
    const lease = await waiting;
    expect(lease?.runId).toBe(id);
    expect(b.holds(id)).toBe(true);
    lease?.release();
  });

  test('waiting can be abandoned: the abort resolves null and takes nothing', async () => {
    const a = tab('A');
    const b = tab('B');
    const id = crypto.randomUUID();
    const lease = await a.tryAcquire(id);
    const controller = new AbortController();
    const waiting = b.waitFor(id, controller.signal);
    controller.abort();
    expect(await waiting).toBeNull();
    lease?.release();
    await settle();
    expect(await a.isHeld(id)).toBe(false);
  });

  test('status, record and delete messages reach the other tab with the sender id, never the sender', async () => {
    const a = tab('A');
    const b = tab('B');
    let echoed = 0;
    a.subscribe(() => (echoed += 1));
    const gotRun = nextMessage(b);
    a.publish({ type: 'run', run: run('r1') });
    expect(await gotRun).toMatchObject({ type: 'run', from: 'A', run: { id: 'r1', status: 'running' } });
    const gotDelete = nextMessage(b);
    a.publish({ type: 'deleted', runId: 'r1' });
    expect(await gotDelete).toEqual({ type: 'deleted', runId: 'r1', from: 'A' });
    await settle();
    expect(echoed).toBe(0);
  });

  test('without Web Locks every run is granted to the one tab, once', async () => {
    const solo = new RunCoordinator({ locks: null, channel: null, tabId: 'solo' });
    made.push(solo);
    expect(solo.crossTab).toBe(false);
    const lease = await solo.tryAcquire('x');
    expect(lease).not.toBeNull();
    expect(await solo.tryAcquire('x')).toBeNull();
    lease?.release();
    expect(await solo.tryAcquire('x')).not.toBeNull();
  });
});
