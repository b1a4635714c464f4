/**
 * Export formats, one JSON object per line. Lines are produced one record at a time from an async source, so an
 * export never builds the whole file as one string.
 */
import {
  conversationMessages,
  isUnjudgedPreference,
  laterTurnFields,
  modeMetadata,
  toAlpaca,
  toOpenAiDpo,
  toTrlDpo,
  type ExportOptions,
  type ModeMetadata,
} from './export-modes';
import { templateMetadata, type RunTemplateInfo, type TemplateMetadata } from './export-template';
import type { MagpieRecord, Run } from './record';

export type { ExportOptions } from './export-modes';

export type ExportFormat = 'sharegpt' | 'openai' | 'magpie' | 'alpaca' | 'trl-dpo' | 'openai-dpo';

export const EXPORT_FORMATS: ReadonlyArray<{ id: ExportFormat; label: string; description: string }> = [
  { id: 'sharegpt', label: 'ShareGPT', description: '{"conversations":[{"from","value"}]} — LLaMA-Factory, Axolotl' },
  { id: 'openai', label: 'OpenAI messages', description: '{"messages":[{"role","content"}]} — TRL, OpenAI fine-tuning' },
  { id: 'magpie', label: 'Full metadata', description: 'Magpie reference field names plus generation details' },
  { id: 'alpaca', label: 'Alpaca', description: '{"instruction","input","output","system","history"} — LLaMA-Factory' },
];

/** Preference pairs: offered for preference runs only (other records have no pair and are skipped). */
export const PREFERENCE_EXPORT_FORMATS: ReadonlyArray<{ id: ExportFormat; label: string; description: string }> = [
  { id: 'trl-dpo', label: 'TRL DPO', description: '{"prompt","chosen","rejected"} as message lists — TRL DPOTrainer' },
  { id: 'openai-dpo', label: 'OpenAI DPO', description: '{"input":{"messages"},"preferred_output","non_preferred_output"}' },
];

/** The formats worth offering for a run: the preference formats only when the run made preference pairs. */
export function exportFormatsFor(
  run: { recipe?: { mode: { kind: string } } } | undefined,
): ReadonlyArray<{ id: ExportFormat; label: string; description: string }> {
  return run?.recipe?.mode.kind === 'preference' ? [...EXPORT_FORMATS, ...PREFERENCE_EXPORT_FORMATS] : EXPORT_FORMATS;
}

/** Export options a run implies: its recipe says whether the drawn system prompt goes into the conversation. */
export function exportOptionsFor(run: { recipe?: { system: { includeInExport: boolean } | null } }): ExportOptions {
  const include = run.recipe?.system?.includeInExport;
  return include === undefined ? {} : { includeSystemPrompt: include };
}

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
  /** Multi-turn records add instruction_2, response_2, … (the reference's names). */
  [laterTurn: `instruction_${number}` | `response_${number}`]: string;
  magpie_web: ModeMetadata & TemplateMetadata & {
    run_id: string;
    seq: number;
    /** The run attempt that produced the record (its seeds derive from it); absent on records made before it was kept. */
    attempt?: number;
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

const SHAREGPT_FROM = { system: 'system', user: 'human', assistant: 'gpt' } as const;

/** The whole conversation (every turn; the system prompt unless options exclude it). */
function shareGptConversation(record: MagpieRecord, options: ExportOptions): ShareGptLine['conversations'] {
  return conversationMessages(record, options).map((m) => ({ from: SHAREGPT_FROM[m.role], value: m.content }));
}

export function toShareGpt(
  record: MagpieRecord,
  run: Pick<Run, 'label'> & { recipe?: Run['recipe'] },
  options: ExportOptions = exportOptionsFor(run),
): ShareGptLine {
  return { id: conversationId(run, record), conversations: shareGptConversation(record, options) };
}

export function toOpenAi(record: MagpieRecord, options: ExportOptions = {}): OpenAiLine {
  return { messages: conversationMessages(record, options) };
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

/** `run`: its quirks and custom template go into magpie_web, so the dataset names every prompt rule it used. */
export function toMagpie(record: MagpieRecord, options: ExportOptions = {}, run?: RunTemplateInfo): MagpieLine {
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
    conversations: shareGptConversation(record, options),
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
    ...laterTurnFields(record),
    magpie_web: {
      ...modeMetadata(record),
      run_id: record.runId,
      seq: record.seq,
      ...(record.attempt !== undefined ? { attempt: record.attempt } : {}),
      template: record.templateId,
      ...templateMetadata(record, run),
      created_at: new Date(record.createdAt).toISOString(),
      instruction: summary(i),
      response: summary(r),
    },
  };
}

/**
 * The line for a record, or undefined when the format has nothing to say about it: preference formats skip records
 * without a distinct chosen/rejected pair, and conversation formats skip preference records not judged yet.
 */
export function exportLine(
  record: MagpieRecord,
  format: ExportFormat,
  run: Pick<Run, 'label'> & RunTemplateInfo,
  options: ExportOptions = {},
): object | undefined {
  switch (format) {
    case 'sharegpt':
      return isUnjudgedPreference(record) ? undefined : toShareGpt(record, run, options);
    case 'openai':
      return isUnjudgedPreference(record) ? undefined : toOpenAi(record, options);
    case 'alpaca':
      return isUnjudgedPreference(record) ? undefined : toAlpaca(record, options);
    case 'magpie':
      return toMagpie(record, options, run);
    case 'trl-dpo':
      return toTrlDpo(record, options);
    case 'openai-dpo':
      return toOpenAiDpo(record, options);
  }
}

export function formatRecord(record: MagpieRecord, format: ExportFormat, run: Pick<Run, 'label'>, options: ExportOptions = {}): object {
  const line = exportLine(record, format, run, options);
  if (line === undefined) throw new Error(`Record ${record.seq} has no ${format} line (no judged preference pair).`);
  return line;
}

/**
 * One JSONL line per record, newline-terminated; records the format skips write no line. JSON.stringify escapes
 * U+2028/9 and control characters. Options default to what the run's recipe says.
 */
export async function* jsonlLines(
  records: AsyncIterable<MagpieRecord> | Iterable<MagpieRecord>,
  format: ExportFormat,
  run: Pick<Run, 'label'> & { recipe?: Run['recipe'] },
  options: ExportOptions = exportOptionsFor(run),
): AsyncGenerator<string> {
  for await (const record of records) {
    const line = exportLine(record, format, run, options);
    if (line !== undefined) yield JSON.stringify(line) + '\n';
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
