/** Plausible Run / MagpieRecord / RejectedInstruction objects for tests; override any field. */
import { emptyCounters, type MagpieRecord, type RejectedInstruction, type Run, type StepInfo } from '../../src/core/record';

const PRE_QUERY = '<|start_header_id|>user<|end_header_id|>\n\n';

export function makeStep(overrides: Partial<StepInfo> = {}): StepInfo {
  return {
    prompt: `<|begin_of_text|>${PRE_QUERY}`,
    temperature: 1,
    topP: 1,
    maxTokens: 512,
    stop: ['<|eot_id|>'],
    seed: null,
    finishReason: 'stop',
    promptTokens: 5,
    completionTokens: 12,
    durationMs: 250,
    ...overrides,
  };
}

export function makeRun(overrides: Partial<Run> = {}): Run {
  const now = Date.now();
  return {
    id: crypto.randomUUID(),
    label: 'test-run',
    createdAt: now,
    updatedAt: now,
    status: 'queued',
    modelId: 'Llama-3-8B-Instruct-q4f16_1-MLC',
    engine: 'webllm',
    templateId: 'llama-3',
    engineAddsBos: false,
    settings: {
      count: 10,
      seed: 42,
      instruction: { temperature: 1, topP: 1, maxTokens: 512 },
      response: { temperature: 0, topP: 1, maxTokens: 1024 },
    },
    counters: emptyCounters(),
    ...overrides,
  };
}

export function makeRecord(run: Run, seq: number, overrides: Partial<MagpieRecord> = {}): MagpieRecord {
  return {
    uuid: crypto.randomUUID(),
    runId: run.id,
    seq,
    modelId: run.modelId,
    engine: run.engine,
    templateId: run.templateId,
    preQueryTemplate: PRE_QUERY,
    instruction: `Instruction number ${seq}?`,
    response: `Response number ${seq}.`,
    instructionStep: makeStep(),
    responseStep: makeStep({ temperature: 0, maxTokens: 1024 }),
    createdAt: Date.now(),
    ...overrides,
  };
}

export function makeRejection(run: Run, attempt: number, overrides: Partial<RejectedInstruction> = {}): RejectedInstruction {
  return {
    runId: run.id,
    attempt,
    reason: 'empty',
    text: '',
    step: makeStep(),
    createdAt: Date.now(),
    ...overrides,
  };
}
