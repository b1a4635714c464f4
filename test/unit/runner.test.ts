import { describe, expect, test } from 'vitest';
import type { CompletionRequest } from '../../src/core/engine';
import { runMagpie } from '../../src/core/runner';
import { deriveSeed } from '../../src/core/seed';
import { getTemplate } from '../../src/core/templates/registry';
import { QueueEngine, type Scripted } from '../support/echo-engine';
import { MemoryStore } from '../support/memory-store';
import { testRun } from '../support/runs';

const llama3 = getTemplate('llama-3');
const isInstruction = (r: CompletionRequest) => r.prompt.endsWith('<|start_header_id|>user<|end_header_id|>\n\n');

/** Instructions "Q<seed>" and responses "A to Q<seed>", so outputs depend only on the per-call seed. */
function seededEngine(instructionOverride?: (n: number) => Scripted | undefined) {
  let nInstr = 0;
  return new QueueEngine((req) => {
    if (isInstruction(req)) {
      nInstr += 1;
      return instructionOverride?.(nInstr) ?? { text: `Q${req.seed}` };
    }
    const q = /user<\|end_header_id\|>\n\n(.*)<\|eot_id\|>/s.exec(req.prompt)?.[1];
    return { text: `A to ${q}` };
  });
}

describe('runMagpie', () => {
  test('produces exactly count records with seq 1..N, each committed with counters', async () => {
    const run = testRun();
    const store = new MemoryStore([run]);
    const counted: number[] = [];
    const out = await runMagpie({
      run,
      engine: seededEngine(),
      template: llama3,
      store,
      events: { onRecord: (_r, c) => counted.push(c.accepted) },
    });
    expect(out.status).toBe('done');
    expect(store.records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(counted).toEqual([1, 2, 3, 4, 5]);
    expect(store.runs.get(run.id)?.status).toBe('done');
    expect(store.runs.get(run.id)?.counters.accepted).toBe(5);
    const first = store.records[0]!;
    expect(first.instruction).toBe(`Q${deriveSeed(42, 1, 'instruction')}`);
    expect(first.response).toBe(`A to ${first.instruction}`);
    expect(first.preQueryTemplate).toBe('<|start_header_id|>user<|end_header_id|>\n\n');
    expect(first.instructionStep.seed).toBe(deriveSeed(42, 1, 'instruction'));
    expect(first.responseStep.seed).toBe(deriveSeed(42, 1, 'response'));
  });

  test('rejected instructions are stored and counted, not answered, and the target is still met', async () => {
    const run = testRun();
    const store = new MemoryStore([run]);
    const engine = seededEngine((n) =>
      n === 2 ? { text: '' } : n === 4 ? { text: 'cut off', finishReason: 'length' } : undefined,
    );
    const out = await runMagpie({ run, engine, template: llama3, store });
    expect(out.status).toBe('done');
    expect(out.counters).toMatchObject({ accepted: 5, rejectedEmpty: 1, rejectedLength: 1, attempts: 7 });
    expect(store.rejections.map((r) => [r.attempt, r.reason])).toEqual([
      [2, 'empty'],
      [4, 'length'],
    ]);
    // 7 instruction calls + 5 response calls: rejected instructions never reach the response step.
    expect(engine.requests.length).toBe(12);
  });

  test('a stopped run resumes to the same records an uninterrupted run makes', async () => {
    const full = testRun({ id: 'full' });
    const fullStore = new MemoryStore([full]);
    await runMagpie({ run: full, engine: seededEngine(), template: llama3, store: fullStore });

    const run = testRun({ id: 'resumed' });
    const store = new MemoryStore([run]);
    const controller = new AbortController();
    const first = await runMagpie({
      run,
      engine: seededEngine(),
      template: llama3,
      store,
      signal: controller.signal,
      events: { onRecord: (_r, c) => c.accepted === 2 && controller.abort() },
    });
    expect(first.status).toBe('paused');
    expect(store.records.length).toBe(2);
    const saved = store.runs.get(run.id)!;
    const second = await runMagpie({ run: saved, engine: seededEngine(), template: llama3, store });
    expect(second.status).toBe('done');
    expect(store.records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(store.records.map((r) => r.instruction)).toEqual(fullStore.records.map((r) => r.instruction));
  });

  test('an abort during the response drops the pair; nothing half-done is stored', async () => {
    const run = testRun();
    const store = new MemoryStore([run]);
    const engine = new QueueEngine((req) => (isInstruction(req) ? { text: 'Q' } : { text: 'partial', finishReason: 'abort' }));
    const out = await runMagpie({ run, engine, template: llama3, store });
    expect(out.status).toBe('paused');
    expect(store.records).toEqual([]);
    expect(out.counters.attempts).toBe(0);
  });

  test('an engine error fails the run with a classified error and keeps committed records', async () => {
    const run = testRun();
    const store = new MemoryStore([run]);
    let calls = 0;
    const engine = new QueueEngine((req) => {
      calls += 1;
      if (calls === 5) return Object.assign(new Error('GPU device was lost'), { name: 'DeviceLostError' });
      return isInstruction(req) ? { text: 'Q' } : { text: 'A' };
    });
    const out = await runMagpie({ run, engine, template: llama3, store });
    expect(out.status).toBe('failed');
    expect(out.error?.kind).toBe('device-lost');
    expect(store.records.length).toBe(2);
    expect(store.runs.get(run.id)).toMatchObject({ status: 'failed', error: 'GPU device was lost' });
  });

  test('a failed commit is not counted', async () => {
    const run = testRun();
    const store = new MemoryStore([run]);
    store.failNextCommit = new Error('QuotaExceededError');
    const out = await runMagpie({ run, engine: seededEngine(), template: llama3, store });
    expect(out.status).toBe('failed');
    expect(out.counters.accepted).toBe(0);
    expect(store.runs.get(run.id)?.counters.accepted).toBe(0);
  });

  test('gives up after too many rejections in a row', async () => {
    const run = testRun();
    const store = new MemoryStore([run]);
    const engine = new QueueEngine(() => ({ text: '' }));
    const out = await runMagpie({ run, engine, template: llama3, store, maxConsecutiveRejections: 4 });
    expect(out.status).toBe('failed');
    expect(out.counters.rejectedEmpty).toBe(4);
    expect(out.error?.advice).toMatch(/template/);
  });
});

describe('runMagpie with concurrency', () => {
  /** Like seededEngine, but each call takes a seed-dependent time, so attempts finish out of order. */
  function jitteryEngine(reject?: (seed: number) => boolean) {
    let inFlight = 0;
    let maxInFlight = 0;
    const engine = {
      get maxInFlight() {
        return maxInFlight;
      },
      calls: 0,
      async complete(req: CompletionRequest) {
        engine.calls += 1;
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, (req.seed ?? 0) % 7));
        inFlight -= 1;
        if (isInstruction(req)) {
          const empty = reject?.(req.seed ?? 0) ?? false;
          return { text: empty ? '' : `Q${req.seed}`, finishReason: 'stop' as const, usage: { promptTokens: 5, completionTokens: 3 } };
        }
        const q = /user<\|end_header_id\|>\n\n(.*)<\|eot_id\|>/s.exec(req.prompt)?.[1];
        return { text: `A to ${q}`, finishReason: 'stop' as const, usage: { promptTokens: 9, completionTokens: 4 } };
      },
    };
    return engine;
  }

  test('records commit in attempt order and equal a sequential run, with exactly count records', async () => {
    const seqRun = testRun({ id: 'seq', settings: { ...testRun().settings, count: 20 } });
    const seqStore = new MemoryStore([seqRun]);
    await runMagpie({ run: seqRun, engine: jitteryEngine(), template: llama3, store: seqStore });

    const run = testRun({ id: 'conc', settings: { ...testRun().settings, count: 20 } });
    const store = new MemoryStore([run]);
    const engine = jitteryEngine();
    const out = await runMagpie({ run, engine, template: llama3, store, concurrency: 6 });
    expect(out.status).toBe('done');
    expect(engine.maxInFlight).toBeGreaterThan(1);
    expect(engine.maxInFlight).toBeLessThanOrEqual(6);
    expect(store.records.map((r) => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(store.records.map((r) => r.attempt)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(store.records.map((r) => r.instruction)).toEqual(seqStore.records.map((r) => r.instruction));
    // Never more work than needed: 20 instructions + 20 responses.
    expect(engine.calls).toBe(40);
  });

  test('rejections under concurrency still meet the target exactly', async () => {
    const run = testRun({ settings: { ...testRun().settings, count: 15 } });
    const store = new MemoryStore([run]);
    const out = await runMagpie({
      run,
      engine: jitteryEngine((seed) => seed % 3 === 0),
      template: llama3,
      store,
      concurrency: 8,
    });
    expect(out.status).toBe('done');
    expect(store.records.length).toBe(15);
    expect(out.counters.accepted + out.counters.rejectedEmpty).toBe(out.counters.attempts);
    const attempts = [...store.records.map((r) => r.attempt), ...store.rejections.map((r) => r.attempt)].sort((a, b) => a! - b!);
    expect(attempts).toEqual(Array.from({ length: out.counters.attempts }, (_, i) => i + 1));
  });

  test('a stop keeps every committed attempt contiguous, and the resumed run completes identically', async () => {
    const full = testRun({ id: 'full', settings: { ...testRun().settings, count: 12 } });
    const fullStore = new MemoryStore([full]);
    await runMagpie({ run: full, engine: jitteryEngine(), template: llama3, store: fullStore, concurrency: 4 });

    const run = testRun({ id: 'cut', settings: { ...testRun().settings, count: 12 } });
    const store = new MemoryStore([run]);
    const controller = new AbortController();
    const first = await runMagpie({
      run,
      engine: jitteryEngine(),
      template: llama3,
      store,
      concurrency: 4,
      signal: controller.signal,
      events: { onRecord: (_r, c) => c.accepted === 5 && controller.abort() },
    });
    expect(first.status).toBe('paused');
    expect(store.records.map((r) => r.seq)).toEqual(Array.from({ length: first.counters.accepted }, (_, i) => i + 1));
    const again = await runMagpie({ run: store.runs.get(run.id)!, engine: jitteryEngine(), template: llama3, store, concurrency: 4 });
    expect(again.status).toBe('done');
    expect(store.records.map((r) => r.instruction)).toEqual(fullStore.records.map((r) => r.instruction));
  });

  test('an engine error in one attempt fails the run after committing the attempts before it', async () => {
    const run = testRun({ settings: { ...testRun().settings, count: 10 } });
    const store = new MemoryStore([run]);
    const base = jitteryEngine();
    const engine = {
      async complete(req: CompletionRequest) {
        if (req.seed === deriveSeed(42, 4, 'instruction')) throw Object.assign(new Error('lost'), { name: 'DeviceLostError' });
        return base.complete(req);
      },
    };
    const out = await runMagpie({ run, engine, template: llama3, store, concurrency: 3 });
    expect(out.status).toBe('failed');
    expect(out.error?.kind).toBe('device-lost');
    expect(store.records.map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect(out.counters.attempts).toBe(3);
  });
});
