/**
 * Export lines of the generation modes: whole multi-turn conversations (with or without the drawn system prompt),
 * preference pairs for TRL and OpenAI DPO, Alpaca, and the mode details of the full-metadata format.
 */
import type { MagpieRecord, StepInfo } from './record';

export type ExportRole = 'system' | 'user' | 'assistant';
export interface ExportMessage {
  role: ExportRole;
  content: string;
}

export interface ExportOptions {
  /** Put the record's system prompt in front of the conversation (default: the run recipe's choice, else true). */
  includeSystemPrompt?: boolean;
}

/** The record's conversation in order: [system], user, assistant, user, … (missing responses are left out). */
export function conversationMessages(record: MagpieRecord, options: ExportOptions = {}): ExportMessage[] {
  const messages: ExportMessage[] = [];
  if (record.system && options.includeSystemPrompt !== false) messages.push({ role: 'system', content: record.system.prompt });
  messages.push({ role: 'user', content: record.instruction });
  if (!record.noResponse) messages.push({ role: 'assistant', content: record.response });
  for (const turn of record.turns ?? []) {
    messages.push({ role: 'user', content: turn.instruction });
    if (turn.response !== undefined) messages.push({ role: 'assistant', content: turn.response });
  }
  return messages;
}

/** Preference records count in SFT exports only once judged (the record's response is then the chosen one). */
export function isUnjudgedPreference(record: MagpieRecord): boolean {
  return record.candidates !== undefined && record.judgement === undefined;
}

/** The chosen and rejected texts of a judged preference record; undefined otherwise (or if they were equal). */
export function preferencePair(record: MagpieRecord): { chosen: string; rejected: string } | undefined {
  const j = record.judgement;
  const c = record.candidates;
  if (!j || !c) return undefined;
  const chosen = c[j.chosen]?.text;
  const rejected = c[j.rejected]?.text;
  // A pair with two equal sides teaches nothing and some trainers divide by their difference: never emit one.
  if (chosen === undefined || rejected === undefined || chosen.trim() === rejected.trim()) return undefined;
  return { chosen, rejected };
}

function promptMessages(record: MagpieRecord, options: ExportOptions): ExportMessage[] {
  const messages: ExportMessage[] = [];
  if (record.system && options.includeSystemPrompt !== false) messages.push({ role: 'system', content: record.system.prompt });
  messages.push({ role: 'user', content: record.instruction });
  return messages;
}

/** TRL DPOTrainer, conversational form: {prompt: messages, chosen: [assistant], rejected: [assistant]}. */
export interface TrlDpoLine {
  prompt: ExportMessage[];
  chosen: ExportMessage[];
  rejected: ExportMessage[];
}

export function toTrlDpo(record: MagpieRecord, options: ExportOptions = {}): TrlDpoLine | undefined {
  const pair = preferencePair(record);
  if (!pair) return undefined;
  return {
    prompt: promptMessages(record, options),
    chosen: [{ role: 'assistant', content: pair.chosen }],
    rejected: [{ role: 'assistant', content: pair.rejected }],
  };
}

/** OpenAI preference fine-tuning (DPO) JSONL. */
export interface OpenAiDpoLine {
  input: { messages: ExportMessage[] };
  preferred_output: ExportMessage[];
  non_preferred_output: ExportMessage[];
}

export function toOpenAiDpo(record: MagpieRecord, options: ExportOptions = {}): OpenAiDpoLine | undefined {
  const pair = preferencePair(record);
  if (!pair) return undefined;
  return {
    input: { messages: promptMessages(record, options) },
    preferred_output: [{ role: 'assistant', content: pair.chosen }],
    non_preferred_output: [{ role: 'assistant', content: pair.rejected }],
  };
}

/** Alpaca: the last exchange is instruction/output, earlier ones go to history as [query, response] pairs. */
export interface AlpacaLine {
  instruction: string;
  input: string;
  output: string;
  system?: string;
  history: Array<[string, string]>;
}

export function toAlpaca(record: MagpieRecord, options: ExportOptions = {}): AlpacaLine {
  const messages = conversationMessages(record, { includeSystemPrompt: false });
  const exchanges: Array<[string, string]> = [];
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m?.role !== 'user') continue;
    const next = messages[i + 1];
    exchanges.push([m.content, next?.role === 'assistant' ? next.content : '']);
  }
  const last = exchanges.pop() ?? [record.instruction, ''];
  const line: AlpacaLine = { instruction: last[0], input: '', output: last[1], history: exchanges };
  if (record.system && options.includeSystemPrompt !== false) line.system = record.system.prompt;
  return line;
}

export interface ModeStepSummary {
  prompt: string;
  temperature: number;
  top_p: number;
  max_tokens: number;
  seed: number | null;
  finish_reason: string;
  prompt_tokens: number;
  completion_tokens: number;
}

export function modeStepSummary(step: StepInfo): ModeStepSummary {
  return {
    prompt: step.prompt,
    temperature: step.temperature,
    top_p: step.topP,
    max_tokens: step.maxTokens,
    seed: step.seed,
    finish_reason: step.finishReason,
    prompt_tokens: step.promptTokens,
    completion_tokens: step.completionTokens,
  };
}

/** `instruction_2`, `response_2`, … as the reference's multi-turn records name them. */
export function laterTurnFields(record: MagpieRecord): Record<string, string> {
  const fields: Record<string, string> = {};
  (record.turns ?? []).forEach((turn, i) => {
    fields[`instruction_${i + 2}`] = turn.instruction;
    if (turn.response !== undefined) fields[`response_${i + 2}`] = turn.response;
  });
  return fields;
}

/** What the full-metadata export adds under `magpie_web` for records made by a generation mode. */
export interface ModeMetadata {
  recipe_hash?: string;
  mode?: string;
  system_prompt_key?: string;
  system_prompt?: string;
  sampling_draw?: { index: number; temperature: number; top_p: number };
  imported_line?: number;
  no_response?: boolean;
  turns?: Array<{ turn: number; instruction: ModeStepSummary; response?: ModeStepSummary }>;
  candidates?: Array<{ text: string } & ModeStepSummary>;
  judgement?: { by: string; chosen: number; rejected: number; scores?: number[]; reason?: string; via?: string; steps?: ModeStepSummary[] };
}

export function modeMetadata(record: MagpieRecord): ModeMetadata {
  const meta: ModeMetadata = {};
  if (record.recipeHash !== undefined) meta.recipe_hash = record.recipeHash;
  if (record.mode !== undefined) meta.mode = record.mode;
  if (record.system) {
    meta.system_prompt_key = record.system.key;
    meta.system_prompt = record.system.prompt;
  }
  if (record.samplingDraw) {
    const d = record.samplingDraw;
    meta.sampling_draw = { index: d.index, temperature: d.temperature, top_p: d.topP };
  }
  if (record.imported) meta.imported_line = record.imported.line;
  if (record.noResponse) meta.no_response = true;
  if (record.turns) {
    meta.turns = record.turns.map((t, i) => {
      const turn: NonNullable<ModeMetadata['turns']>[number] = { turn: i + 2, instruction: modeStepSummary(t.instructionStep) };
      if (t.responseStep) turn.response = modeStepSummary(t.responseStep);
      return turn;
    });
  }
  if (record.candidates) meta.candidates = record.candidates.map((c) => ({ text: c.text, ...modeStepSummary(c.step) }));
  if (record.judgement) {
    const j = record.judgement;
    meta.judgement = { by: j.by, chosen: j.chosen, rejected: j.rejected };
    if (j.scores) meta.judgement.scores = j.scores;
    if (j.reason !== undefined) meta.judgement.reason = j.reason;
    if (j.via !== undefined) meta.judgement.via = j.via;
    if (j.steps) meta.judgement.steps = j.steps.map(modeStepSummary);
  }
  return meta;
}
