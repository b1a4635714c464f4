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
    expect(first.status).toBe('stopped');
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
    expect(out.status).toBe('stopped');
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
