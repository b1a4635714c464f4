/**
 * Export formats, one JSON object per line. Lines are produced one record at a time from an async source, so an
 * export never builds the whole file as one string.
 */
import type { MagpieRecord, Run } from './record';

export type ExportFormat = 'sharegpt' | 'openai' | 'magpie';

export const EXPORT_FORMATS: ReadonlyArray<{ id: ExportFormat; label: string; description: string }> = [
  { id: 'sharegpt', label: 'ShareGPT', description: '{"conversations":[{"from","value"}]} — LLaMA-Factory, Axolotl' },
  { id: 'openai', label: 'OpenAI messages', description: '{"messages":[{"role","content"}]} — TRL, OpenAI fine-tuning' },
  { id: 'magpie', label: 'Full metadata', description: 'Magpie reference field names plus generation details' },
];

export interface ShareGptLine {
  id: string;
  conversations: Array<{ from: 'system' | 'human' | 'gpt'; value: string }>;
}

export interface OpenAiLine {
  messages: Array<{ role: 'system' | 'user' | 'assistant'; content: string }>;
}

/** The reference implementation's field names, plus what this app knows about each call under `magpie_web`. */
export interface MagpieLine {
  uuid: string;
  model: string;
  gen_input_configs: {
    temperature: number;
    top_p: number;
    input_generator: string;
    seed: number | null;
    pre_query_template: string;
  };
  instruction: string;
  response: string;
  conversations: ShareGptLine['conversations'];
  gen_response_configs: {
    prompt: string;
    temperature: number;
    top_p: number;
    repetition_penalty: number;
    max_tokens: number;
    stop_tokens: string[];
    output_generator: string;
    engine: string;
  };
  instruction_length: number;
  response_length: number;
  magpie_web: {
    run_id: string;
    seq: number;
    template: string;
    created_at: string;
    instruction: StepSummary;
    response: StepSummary;
  };
}

interface StepSummary {
  prompt: string;
  max_tokens: number;
  stop: string[];
  seed: number | null;
  finish_reason: string;
  prompt_tokens: number;
  completion_tokens: number;
  duration_ms: number;
}

export function conversationId(run: Pick<Run, 'label'>, record: Pick<MagpieRecord, 'seq'>): string {
  return `${slug(run.label)}_${record.seq}`;
}

export function toShareGpt(record: MagpieRecord, run: Pick<Run, 'label'>): ShareGptLine {
  return {
    id: conversationId(run, record),
    conversations: [
      { from: 'human', value: record.instruction },
      { from: 'gpt', value: record.response },
    ],
  };
}

export function toOpenAi(record: MagpieRecord): OpenAiLine {
  return {
    messages: [
      { role: 'user', content: record.instruction },
      { role: 'assistant', content: record.response },
    ],
  };
}

function summary(step: MagpieRecord['instructionStep']): StepSummary {
  return {
    prompt: step.prompt,
    max_tokens: step.maxTokens,
    stop: step.stop,
    seed: step.seed,
    finish_reason: step.finishReason,
    prompt_tokens: step.promptTokens,
    completion_tokens: step.completionTokens,
    duration_ms: Math.round(step.durationMs),
  };
}

export function toMagpie(record: MagpieRecord): MagpieLine {
  const i = record.instructionStep;
  const r = record.responseStep;
  return {
    uuid: record.uuid,
    model: record.modelId,
    gen_input_configs: {
      temperature: i.temperature,
      top_p: i.topP,
      input_generator: record.modelId,
      seed: i.seed,
      pre_query_template: record.preQueryTemplate,
    },
    instruction: record.instruction,
    response: record.response,
    conversations: [
      { from: 'human', value: record.instruction },
      { from: 'gpt', value: record.response },
    ],
    gen_response_configs: {
      prompt: r.prompt,
      temperature: r.temperature,
      top_p: r.topP,
      // The engines used here have no repetition penalty; 1.0 means none, as in the reference.
      repetition_penalty: 1.0,
      max_tokens: r.maxTokens,
      stop_tokens: r.stop,
      output_generator: record.modelId,
      engine: record.engine,
    },
    instruction_length: record.instruction.length,
    response_length: record.response.length,
    magpie_web: {
      run_id: record.runId,
      seq: record.seq,
      template: record.templateId,
      created_at: new Date(record.createdAt).toISOString(),
      instruction: summary(i),
      response: summary(r),
    },
  };
}

export function formatRecord(record: MagpieRecord, format: ExportFormat, run: Pick<Run, 'label'>): object {
  switch (format) {
    case 'sharegpt':
      return toShareGpt(record, run);
    case 'openai':
      return toOpenAi(record);
    case 'magpie':
      return toMagpie(record);
  }
}

/** One JSONL line per record, newline-terminated. JSON.stringify escapes U+2028/9 and control characters. */
export async function* jsonlLines(
  records: AsyncIterable<MagpieRecord> | Iterable<MagpieRecord>,
  format: ExportFormat,
  run: Pick<Run, 'label'>,
): AsyncGenerator<string> {
  for await (const record of records) {
    yield JSON.stringify(formatRecord(record, format, run)) + '\n';
  }
}

export function slug(text: string): string {
  const s = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48);
  return s || 'run';
}

/** e.g. magpie-llama-3-2-3b-2026-11-23-1a2b3c4d-sharegpt.jsonl: says the run and the format. */
export function exportFileName(run: Pick<Run, 'id' | 'label'>, format: ExportFormat): string {
  return `magpie-${slug(run.label)}-${run.id.slice(0, 8)}-${format}.jsonl`;
}
