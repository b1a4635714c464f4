/**
 * The run loop: produce instruction → response records until the run has `count` accepted records.
 *
 * Work is numbered in attempts 1, 2, 3, …; attempt k's seeds derive from (run seed, k), so its result does not depend
 * on when or where it ran. Up to `concurrency` attempts are in flight (a server engine batches them); finished attempts
 * are committed strictly in attempt order, each record (or rejection) in its own transaction before it is counted.
 * So the stored state is always "attempts 1..counters.attempts are done", records get seq 1..N in attempt order, and a
 * crash loses at most the attempts in flight, which a resumed run redoes with the same seeds.
 */
import type { TextEngine } from './engine';
import { classifyEngineError, type ClassifiedError } from './errors';
import { generateInstruction, generateResponse } from './magpie';
import type {
  MagpieRecord,
  RejectedInstruction,
  RejectionReason,
  Run,
  RunCounters,
  RunStatus,
  StepInfo,
} from './record';
import { deriveSeed } from './seed';
import type { ChatTemplate } from './templates/types';

/** Storage as the runner needs it (src/storage implements it over IndexedDB, the CLI over a JSONL file). */
export interface RunStore {
  /** Adds the record and writes the run's counters in one transaction; resolves once it is durable. */
  commitRecord(record: MagpieRecord, counters: RunCounters): Promise<void>;
  commitRejection(rejection: RejectedInstruction, counters: RunCounters): Promise<void>;
  updateRun(id: string, patch: Partial<Omit<Run, 'id'>>): Promise<Run>;
}

/** Step names: 'instruction' and 'response' for single-turn; later turns use e.g. 'instruction_2'. */
export type GenerationStep = string;

export interface RunEvents {
  onStepStart?(step: GenerationStep, attempt: number): void;
  onDelta?(step: GenerationStep, delta: string, attempt: number): void;
  /** The engine restarted a step from scratch (e.g. a retried server request): drop the text streamed so far. */
  onStepRestart?(step: GenerationStep, attempt: number): void;
  onRecord?(record: MagpieRecord, counters: RunCounters): void;
  onRejected?(rejection: RejectedInstruction, counters: RunCounters): void;
  /** Completion tokens of a finished step, for the tokens/s meter. */
  onTokens?(completionTokens: number): void;
}

/** What one attempt needs: its number, its seeds, the stop signal and where to stream text. */
export interface AttemptContext {
  attempt: number;
  seedFor(step: GenerationStep): number | null;
  signal: AbortSignal;
  events: RunEvents;
  now: () => number;
}

/** The record an attempt produced, before the runner numbers and stamps it. */
export type ProducedRecord = Omit<MagpieRecord, 'uuid' | 'runId' | 'seq' | 'createdAt' | 'attempt'>;

export type AttemptOutcome =
  | { kind: 'record'; record: ProducedRecord; completionTokens: number }
  | { kind: 'rejected'; reason: RejectionReason; text: string; step: StepInfo; completionTokens: number }
  | { kind: 'aborted' };

/** Produces one attempt's record. The default makes a single-turn Magpie pair; generation modes plug in their own. */
export type AttemptProducer = (ctx: AttemptContext) => Promise<AttemptOutcome>;

export interface RunOptions {
  run: Run;
  engine: TextEngine;
  template: ChatTemplate;
  store: RunStore;
  signal?: AbortSignal;
  events?: RunEvents;
  now?: () => number;
  newId?: () => string;
  /** Attempts in flight at once (1 for WebLLM, which decodes one sequence at a time). */
  concurrency?: number;
  /** Replaces the single-turn pair (multi-turn, preference pairs, imported instructions…). */
  produce?: AttemptProducer;
  /** Give up after this many rejected instructions in a row (a wrong template makes every query empty). */
  maxConsecutiveRejections?: number;
  /**
   * Failures that pause the run instead of failing it (a lost GPU, a full disk): the caller can fix the cause and
   * resume. Gets the raw error (e.g. a StorageFullError) and its classification.
   */
  shouldPause?: (error: unknown, classified: ClassifiedError) => boolean;
}

export interface RunOutcome {
  status: RunStatus;
  counters: RunCounters;
  error?: ClassifiedError;
}

export const DEFAULT_MAX_CONSECUTIVE_REJECTIONS = 25;

/** The classic Magpie attempt: instruction from the pre-query template, then the response to it. */
export function pairProducer(run: Run, engine: TextEngine, template: ChatTemplate): AttemptProducer {
  return async (ctx) => {
    const stream = (step: GenerationStep) => (d: string) => ctx.events.onDelta?.(step, d, ctx.attempt);
    ctx.events.onStepStart?.('instruction', ctx.attempt);
    const inst = await generateInstruction(engine, template, run.settings.instruction, {
      engineAddsBos: run.engineAddsBos,
      seed: ctx.seedFor('instruction'),
      now: ctx.now,
      signal: ctx.signal,
      onDelta: stream('instruction'),
      ...(run.quirks ? { quirks: run.quirks } : {}),
    });
    if (inst.kind === 'aborted') return { kind: 'aborted' };
    ctx.events.onTokens?.(inst.step.completionTokens);
    if (inst.kind === 'rejected') {
      return { ...inst, completionTokens: inst.step.completionTokens };
    }
    ctx.events.onStepStart?.('response', ctx.attempt);
    const resp = await generateResponse(engine, template, inst.instruction, run.settings.response, {
      engineAddsBos: run.engineAddsBos,
      seed: ctx.seedFor('response'),
      now: ctx.now,
      signal: ctx.signal,
      onDelta: stream('response'),
    });
    // An interrupted pair is dropped whole; the attempt is not counted, so a resumed run redoes it with the same seed.
    if (resp.kind === 'aborted') return { kind: 'aborted' };
    ctx.events.onTokens?.(resp.step.completionTokens);
    return {
      kind: 'record',
      record: {
        modelId: run.modelId,
        engine: run.engine,
        templateId: template.id,
        preQueryTemplate: template.preQuery(),
        instruction: inst.instruction,
        response: resp.response,
        instructionStep: inst.step,
        responseStep: resp.step,
        ...(inst.sanitized ? { sanitized: inst.sanitized } : {}),
      },
      completionTokens: inst.step.completionTokens + resp.step.completionTokens,
    };
  };
}

class RunFailed extends Error {
  constructor(readonly classified: ClassifiedError) {
    super(classified.message);
  }
}

export async function runMagpie(options: RunOptions): Promise<RunOutcome> {
  const { run, engine, template, store, events = {} } = options;
  const now = options.now ?? (() => Date.now());
  const newId = options.newId ?? (() => crypto.randomUUID());
  const maxRejections = options.maxConsecutiveRejections ?? DEFAULT_MAX_CONSECUTIVE_REJECTIONS;
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
  const produce = options.produce ?? pairProducer(run, engine, template);
  const settings = run.settings;

  // One internal controller: the caller's stop, or a failure of one attempt, stops all attempts in flight.
  const internal = new AbortController();
  const onOuterAbort = () => internal.abort();
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (options.signal?.aborted) internal.abort();

  let counters: RunCounters = { ...run.counters };
  let rejectionsInARow = 0;
  let nextAttempt = counters.attempts + 1;
  /** Finished attempts waiting for an earlier one, so commits stay in attempt order. */
  const finished = new Map<number, AttemptOutcome>();
  /** Attempts running, and finished-but-uncommitted accepted ones: together they bound what may still be accepted. */
  let inFlight = 0;
  let pendingAccepted = 0;
  let failure: ClassifiedError | undefined;
  /** The raw error behind `failure`, for `shouldPause`. */
  let failureCause: unknown;
  let stopped = false;
  let commitFailed = false;

  const finish = async (status: RunStatus, error?: ClassifiedError): Promise<RunOutcome> => {
    options.signal?.removeEventListener('abort', onOuterAbort);
    await store.updateRun(run.id, error ? { status, counters, error: error.message } : { status, counters });
    return error ? { status, counters, error } : { status, counters };
  };

  const commitInOrder = async (): Promise<void> => {
    for (;;) {
      const attempt = counters.attempts + 1;
      const outcome = finished.get(attempt);
      if (!outcome) return;
      finished.delete(attempt);
      if (outcome.kind === 'aborted') {
        // Everything from here on is redone by a resumed run.
        stopped = true;
        finished.clear();
        return;
      }
      if (outcome.kind === 'rejected') {
        const next: RunCounters = {
          ...counters,
          attempts: attempt,
          rejectedEmpty: counters.rejectedEmpty + (outcome.reason === 'empty' ? 1 : 0),
          rejectedLength: counters.rejectedLength + (outcome.reason === 'length' ? 1 : 0),
          completionTokens: counters.completionTokens + outcome.completionTokens,
        };
        // Mode-specific reasons (judge failures, no distinct pair) are counted apart from unusable instructions.
        if (outcome.reason !== 'empty' && outcome.reason !== 'length') next.rejectedOther = (counters.rejectedOther ?? 0) + 1;
        const rejection: RejectedInstruction = {
          runId: run.id,
          attempt,
          reason: outcome.reason,
          text: outcome.text,
          step: outcome.step,
          createdAt: now(),
        };
        await store.commitRejection(rejection, next);
        counters = next;
        events.onRejected?.(rejection, counters);
        rejectionsInARow += 1;
        if (rejectionsInARow >= maxRejections) {
          throw new RunFailed({
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
      pendingAccepted -= 1;
      const record: MagpieRecord = {
        ...outcome.record,
        uuid: newId(),
        runId: run.id,
        seq: counters.accepted + 1,
        attempt,
        createdAt: now(),
      };
      const next: RunCounters = {
        ...counters,
        attempts: attempt,
        accepted: counters.accepted + 1,
        completionTokens: counters.completionTokens + outcome.completionTokens,
      };
      await store.commitRecord(record, next);
      counters = next;
      events.onRecord?.(record, counters);
    }
  };

  await store.updateRun(run.id, { status: 'running' });

  // A serial queue for commits: attempts finish concurrently, but commits never interleave.
  let commits: Promise<void> = Promise.resolve();
  const wakeups: Array<() => void> = [];
  const wake = () => wakeups.splice(0).forEach((w) => w());

  const launch = (attempt: number) => {
    inFlight += 1;
    const ctx: AttemptContext = {
      attempt,
      seedFor: (step) => (settings.seed === null ? null : deriveSeed(settings.seed, attempt, step)),
      signal: internal.signal,
      events,
      now,
    };
    produce(ctx)
      .then(
        (outcome) => outcome,
        (err: unknown): AttemptOutcome => {
          if (!failure) {
            failure = classifyEngineError(err);
            failureCause = err;
          }
          internal.abort();
          return { kind: 'aborted' };
        },
      )
      .then((outcome) => {
        inFlight -= 1;
        if (outcome.kind === 'record') pendingAccepted += 1;
        finished.set(attempt, outcome);
        commits = commits.then(async () => {
          if (commitFailed) return;
          try {
            await commitInOrder();
          } catch (err) {
            commitFailed = true;
            if (!failure) {
              failure = err instanceof RunFailed ? err.classified : classifyEngineError(err);
              failureCause = err;
            }
            internal.abort();
          }
        });
        return commits;
      })
      .finally(wake);
  };

  try {
    for (;;) {
      const reachedTarget = counters.accepted >= settings.count;
      if (reachedTarget || failure || stopped || internal.signal.aborted) {
        if (inFlight === 0) break;
      } else {
        // Only launch what can still be needed: accepted + possibly-accepted work stays within the target.
        while (
          inFlight < concurrency &&
          counters.accepted + pendingAccepted + inFlight < settings.count &&
          !internal.signal.aborted
        ) {
          launch(nextAttempt);
          nextAttempt += 1;
        }
      }
      await new Promise<void>((resolve) => wakeups.push(resolve));
    }
    await commits;
  } catch (err) {
    if (!failure) {
      failure = classifyEngineError(err);
      failureCause = err;
    }
  }

  if (failure && failure.kind !== 'aborted') {
    return finish(options.shouldPause?.(failureCause, failure) ? 'paused' : 'failed', failure);
  }
  if (counters.accepted >= settings.count) return finish('done');
  return finish('paused');
}
