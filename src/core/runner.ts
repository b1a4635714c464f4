/**
 * The run loop: generate instruction → response pairs until the run has `count` accepted records.
 * Every record (and every rejection) is committed to the store before it is counted, so a crash can lose at most
 * the record in flight, and a resumed run continues from the stored counters.
 */
import type { TextEngine } from './engine';
import { classifyEngineError, type ClassifiedError } from './errors';
import { generateInstruction, generateResponse } from './magpie';
import type { MagpieRecord, RejectedInstruction, Run, RunCounters, RunStatus } from './record';
import { deriveSeed } from './seed';
import type { ChatTemplate } from './templates/types';

/** Storage as the runner needs it (src/storage implements it over IndexedDB). */
export interface RunStore {
  /** Adds the record and writes the run's counters in one transaction; resolves once it is durable. */
  commitRecord(record: MagpieRecord, counters: RunCounters): Promise<void>;
  commitRejection(rejection: RejectedInstruction, counters: RunCounters): Promise<void>;
  updateRun(id: string, patch: Partial<Omit<Run, 'id'>>): Promise<Run>;
}

export type GenerationStep = 'instruction' | 'response';

export interface RunEvents {
  onStepStart?(step: GenerationStep, attempt: number): void;
  onDelta?(step: GenerationStep, delta: string): void;
  onRecord?(record: MagpieRecord, counters: RunCounters): void;
  onRejected?(rejection: RejectedInstruction, counters: RunCounters): void;
  /** Completion tokens of a finished step, for the tokens/s meter. */
  onTokens?(completionTokens: number): void;
}

export interface RunOptions {
  run: Run;
  engine: TextEngine;
  template: ChatTemplate;
  store: RunStore;
  signal?: AbortSignal;
  events?: RunEvents;
  now?: () => number;
  newId?: () => string;
  /** Give up after this many rejected instructions in a row (a wrong template makes every query empty). */
  maxConsecutiveRejections?: number;
}

export interface RunOutcome {
  status: RunStatus;
  counters: RunCounters;
  error?: ClassifiedError;
}

export const DEFAULT_MAX_CONSECUTIVE_REJECTIONS = 25;

export async function runMagpie(options: RunOptions): Promise<RunOutcome> {
  const { run, engine, template, store, signal, events = {} } = options;
  const now = options.now ?? (() => Date.now());
  const newId = options.newId ?? (() => crypto.randomUUID());
  const maxRejections = options.maxConsecutiveRejections ?? DEFAULT_MAX_CONSECUTIVE_REJECTIONS;
  const settings = run.settings;
  let counters: RunCounters = { ...run.counters };
  let rejectionsInARow = 0;

  const finish = async (status: RunStatus, error?: ClassifiedError): Promise<RunOutcome> => {
    await store.updateRun(run.id, error ? { status, counters, error: error.message } : { status, counters });
    return error ? { status, counters, error } : { status, counters };
  };

  await store.updateRun(run.id, { status: 'running' });
  try {
    while (counters.accepted < settings.count) {
      if (signal?.aborted) return await finish('stopped');
      const attempt = counters.attempts + 1;
      const seedFor = (step: GenerationStep) => (settings.seed === null ? null : deriveSeed(settings.seed, attempt, step));

      events.onStepStart?.('instruction', attempt);
      const inst = await generateInstruction(engine, template, settings.instruction, {
        engineAddsBos: run.engineAddsBos,
        seed: seedFor('instruction'),
        now,
        ...(signal ? { signal } : {}),
        onDelta: (d) => events.onDelta?.('instruction', d),
      });
      if (inst.kind === 'aborted') return await finish('stopped');
      events.onTokens?.(inst.step.completionTokens);

      if (inst.kind === 'rejected') {
        const next: RunCounters = {
          ...counters,
          attempts: attempt,
          rejectedEmpty: counters.rejectedEmpty + (inst.reason === 'empty' ? 1 : 0),
          rejectedLength: counters.rejectedLength + (inst.reason === 'length' ? 1 : 0),
          completionTokens: counters.completionTokens + inst.step.completionTokens,
        };
        const rejection: RejectedInstruction = {
          runId: run.id,
          attempt,
          reason: inst.reason,
          text: inst.text,
          step: inst.step,
          createdAt: now(),
        };
        await store.commitRejection(rejection, next);
        counters = next;
        events.onRejected?.(rejection, counters);
        rejectionsInARow += 1;
        if (rejectionsInARow >= maxRejections) {
          return await finish('failed', {
            kind: 'unknown',
            message: `${rejectionsInARow} instructions in a row were empty or cut by max tokens.`,
            advice:
              'The model is not writing usable queries with this template and these settings. Check the model/template pair, or raise the instruction max tokens.',
            recoverable: false,
          });
        }
        continue;
      }
      rejectionsInARow = 0;

      events.onStepStart?.('response', attempt);
      const resp = await generateResponse(engine, template, inst.instruction, settings.response, {
        engineAddsBos: run.engineAddsBos,
        seed: seedFor('response'),
        now,
        ...(signal ? { signal } : {}),
        onDelta: (d) => events.onDelta?.('response', d),
      });
      // An interrupted pair is dropped whole; the attempt is not counted, so a resumed run redoes it with the same seed.
      if (resp.kind === 'aborted') return await finish('stopped');
      events.onTokens?.(resp.step.completionTokens);

      const record: MagpieRecord = {
        uuid: newId(),
        runId: run.id,
        seq: counters.accepted + 1,
        modelId: run.modelId,
        engine: run.engine,
        templateId: template.id,
        preQueryTemplate: template.preQuery(),
        instruction: inst.instruction,
        response: resp.response,
        instructionStep: inst.step,
        responseStep: resp.step,
        createdAt: now(),
      };
      const next: RunCounters = {
        ...counters,
        attempts: attempt,
        accepted: counters.accepted + 1,
        completionTokens: counters.completionTokens + inst.step.completionTokens + resp.step.completionTokens,
      };
      await store.commitRecord(record, next);
      counters = next;
      events.onRecord?.(record, counters);
    }
    return await finish('done');
  } catch (err) {
    const error = classifyEngineError(err);
    if (error.kind === 'aborted') return await finish('stopped');
    return await finish('failed', error);
  }
}
