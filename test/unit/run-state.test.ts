import { describe, expect, test } from 'vitest';
import type { CompletionRequest } from '../../src/core/engine';
import { classifyEngineError } from '../../src/core/errors';
import { buildModelOptions } from '../../src/core/models';
import type { RunStatus } from '../../src/core/record';
import {
  IllegalRunTransitionError,
  LossWindow,
  RUN_TRANSITIONS,
  assertTransition,
  canTransition,
  isActiveStatus,
  isEngineLoss,
  isResumable,
  normalizeRunStatus,
  recoveryOffers,
  type LiveRunStatus,
} from '../../src/core/run-state';
import { runMagpie } from '../../src/core/runner';
import { getTemplate } from '../../src/core/templates/registry';
import { QueueEngine } from '../support/echo-engine';
import { MemoryStore } from '../support/memory-store';
import { testRun } from '../support/runs';

const ALL: LiveRunStatus[] = ['queued', 'loading', 'running', 'paused', 'done', 'failed'];

describe('run state table', () => {
  test('the documented path queued → loading → running ⇄ paused → done is legal', () => {
    const path: LiveRunStatus[] = ['queued', 'loading', 'running', 'paused', 'running', 'paused', 'loading', 'running', 'done'];
    for (let i = 1; i < path.length; i++) {
      expect(assertTransition(path[i - 1] as LiveRunStatus, path[i] as LiveRunStatus)).toBe(path[i]);
    }
  });

  test('done is final: every transition out of it throws', () => {
    for (const to of ALL) {
      expect(() => assertTransition('done', to)).toThrow(IllegalRunTransitionError);
      expect(canTransition('done', to)).toBe(false);
    }
  });

  test('illegal transitions throw with both states named', () => {
    const illegal: Array<[LiveRunStatus, LiveRunStatus]> = [
      ['queued', 'done'],
      ['loading', 'done'],
      ['paused', 'done'],
      ['running', 'queued'],
      ['paused', 'queued'],
      ['failed', 'done'],
      ['failed', 'paused'],
      ['running', 'running'],
    ];
    for (const [from, to] of illegal) {
      expect(() => assertTransition(from, to)).toThrow(`"${from}" to "${to}"`);
    }
  });

  test('the table names only known states, and canTransition agrees with it for every pair', () => {
    for (const from of ALL) {
      for (const to of ALL) {
        expect(canTransition(from, to)).toBe(RUN_TRANSITIONS[from].includes(to));
      }
    }
  });

  test('version-1 statuses read as their new names: created → queued, stopped → paused', () => {
    expect(normalizeRunStatus('created')).toBe('queued');
    expect(normalizeRunStatus('stopped')).toBe('paused');
    expect(canTransition('stopped', 'loading')).toBe(true);
    expect(canTransition('created', 'running')).toBe(true);
    expect(() => assertTransition('stopped', 'done')).toThrow(IllegalRunTransitionError);
  });

  test('active and resumable statuses', () => {
    const active = ALL.filter((s) => isActiveStatus(s));
    expect(active).toEqual(['loading', 'running']);
    const run = testRun();
    const resumable = (status: RunStatus, accepted = 0) =>
      isResumable({ ...run, status, counters: { ...run.counters, accepted } });
    expect(resumable('paused')).toBe(true);
    expect(resumable('stopped')).toBe(true);
    expect(resumable('failed')).toBe(true);
    expect(resumable('running')).toBe(false);
    expect(resumable('done')).toBe(false);
    expect(resumable('paused', run.settings.count)).toBe(false);
  });
});

describe('engine losses', () => {
  test('device loss, unloaded model and a dead worker are losses; a run that fails on its own is not', () => {
    expect(isEngineLoss(classifyEngineError({ name: 'DeviceLostError', message: 'lost' }))).toBe(true);
    expect(isEngineLoss(classifyEngineError({ name: 'ModelNotLoadedError', message: 'x' }))).toBe(true);
    expect(isEngineLoss(classifyEngineError(new Error('Uncaught Error: worker crashed')))).toBe(true);
    expect(isEngineLoss(classifyEngineError({ name: 'ContextWindowSizeExceededError', message: 'x' }))).toBe(false);
    expect(isEngineLoss({ kind: 'unknown', message: '25 in a row', advice: '', recoverable: false })).toBe(false);
    expect(isEngineLoss(classifyEngineError({ name: 'AbortError', message: 'stop' }))).toBe(false);
  });

  test('the loss window pauses at the third loss within the window, not when losses are spread out', () => {
    const w = new LossWindow({ maxLosses: 3, windowMs: 1000 });
    expect(w.record(0)).toBe(false);
    expect(w.record(500)).toBe(false);
    expect(w.record(900)).toBe(true);

    const spread = new LossWindow({ maxLosses: 3, windowMs: 1000 });
    expect(spread.record(0)).toBe(false);
    expect(spread.record(800)).toBe(false);
    expect(spread.record(1500)).toBe(false); // the loss at 0 left the window
    expect(spread.count(1500)).toBe(2);
    expect(spread.record(1700)).toBe(true);
    expect(() => new LossWindow({ maxLosses: 0, windowMs: 1 })).toThrow(RangeError);
  });

  test('recovery offers the -1k variant and the next smaller model of the same kind', () => {
    const models = buildModelOptions(
      [
        { model_id: 'Llama-3-8B-Instruct-q4f32_1-MLC', vram_required_MB: 6101 },
        { model_id: 'Llama-3-8B-Instruct-q4f32_1-MLC-1k', vram_required_MB: 5296 },
        { model_id: 'Llama-3.2-3B-Instruct-q4f32_1-MLC', vram_required_MB: 2952 },
        { model_id: 'Llama-3.2-1B-Instruct-q4f32_1-MLC', vram_required_MB: 1129 },
        { model_id: 'scripted:Llama-3.2-1B-Instruct-q4f32_1-MLC', vram_required_MB: 1129 },
        { model_id: 'scripted:Llama-3.1-8B-Instruct-q4f32_1-MLC?failAfterTokens=3', vram_required_MB: 6101 },
      ],
      false,
    );
    const eight = recoveryOffers(models, 'Llama-3-8B-Instruct-q4f32_1-MLC');
    expect(eight.smallerContext?.id).toBe('Llama-3-8B-Instruct-q4f32_1-MLC-1k');
    expect(eight.smallerModel?.id).toBe('Llama-3.2-3B-Instruct-q4f32_1-MLC');
    const oneK = recoveryOffers(models, 'Llama-3-8B-Instruct-q4f32_1-MLC-1k');
    expect(oneK.smallerContext).toBeUndefined();
    expect(oneK.smallerModel?.id).toBe('Llama-3.2-3B-Instruct-q4f32_1-MLC');
    expect(recoveryOffers(models, 'Llama-3.2-1B-Instruct-q4f32_1-MLC')).toEqual({});
    // A scripted (test) model is only ever offered scripted replacements, never real weights.
    const scripted = recoveryOffers(models, 'scripted:Llama-3.1-8B-Instruct-q4f32_1-MLC?failAfterTokens=3');
    expect(scripted.smallerModel?.id).toBe('scripted:Llama-3.2-1B-Instruct-q4f32_1-MLC');
  });
});

describe('runMagpie shouldPause', () => {
  const llama3 = getTemplate('llama-3');
  const isInstruction = (r: CompletionRequest) => r.prompt.endsWith('<|start_header_id|>user<|end_header_id|>\n\n');

  test('a failure the caller can fix pauses the run (stored), keeping every committed record', async () => {
    const run = testRun();
    const store = new MemoryStore([run]);
    let calls = 0;
    const engine = new QueueEngine((req) => {
      calls += 1;
      if (calls === 5) return Object.assign(new Error('lost'), { name: 'DeviceLostError' });
      return isInstruction(req) ? { text: `Q${req.seed}` } : { text: 'A' };
    });
    const seen: unknown[] = [];
    const out = await runMagpie({
      run,
      engine,
      template: llama3,
      store,
      shouldPause: (err, c) => {
        seen.push(err);
        return isEngineLoss(c);
      },
    });
    expect(out.status).toBe('paused');
    expect(out.error?.kind).toBe('device-lost');
    expect((seen[0] as Error).name).toBe('DeviceLostError');
    expect(store.runs.get(run.id)).toMatchObject({ status: 'paused', counters: { accepted: 2, attempts: 2 } });
    expect(store.records.map((r) => r.seq)).toEqual([1, 2]);
  });

  test('a failed commit reaches shouldPause with the storage error itself; nothing is counted', async () => {
    const run = testRun();
    const store = new MemoryStore([run]);
    const full = Object.assign(new Error('quota'), { name: 'StorageFullError' });
    store.failNextCommit = full;
    const engine = new QueueEngine((req) => (isInstruction(req) ? { text: 'Q' } : { text: 'A' }));
    const out = await runMagpie({ run, engine, template: llama3, store, shouldPause: (err) => err === full });
    expect(out.status).toBe('paused');
    expect(store.records).toEqual([]);
    expect(store.runs.get(run.id)?.counters.accepted).toBe(0);
  });
});
