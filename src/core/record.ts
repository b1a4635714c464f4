/** The records a run produces, and the run itself, as stored and exported. */
import type { FinishReason } from './engine';

export interface SamplingSettings {
  temperature: number;
  topP: number;
  maxTokens: number;
}

export interface RunSettings {
  /** How many accepted records (instruction + response) the run should produce. */
  count: number;
  /** Run seed; record k uses a seed derived from (seed, k). null: no seed is sent (engine picks). */
  seed: number | null;
  instruction: SamplingSettings;
  response: SamplingSettings;
}

/** One engine call as it happened: what was sent and what came back. */
export interface StepInfo {
  /** The exact prompt text sent to the engine (BOS included when we added it). */
  prompt: string;
  temperature: number;
  topP: number;
  maxTokens: number;
  stop: string[];
  seed: number | null;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** Wall-clock duration of the call in milliseconds, measured by the pipeline. */
  durationMs: number;
  timeToFirstTokenMs?: number;
  decodeTokensPerSecond?: number;
}

export interface MagpieRecord {
  /** Random UUID, stable across exports. */
  uuid: string;
  runId: string;
  /** 1-based position among the run's accepted records. */
  seq: number;
  /** The attempt that produced it (attempts also count rejected instructions); its seeds derive from it. */
  attempt?: number;
  modelId: string;
  engine: string;
  templateId: string;
  /** The pre-query template the instruction was generated from (without BOS). */
  preQueryTemplate: string;
  instruction: string;
  response: string;
  instructionStep: StepInfo;
  responseStep: StepInfo;
  /** ms since epoch. */
  createdAt: number;
}

export type RejectionReason = 'empty' | 'length';

/** An instruction that was not answered: empty, or cut by max_tokens. Kept so users can see what was dropped. */
export interface RejectedInstruction {
  runId: string;
  /** Which attempt of the run produced it (attempts count every instruction generated). */
  attempt: number;
  reason: RejectionReason;
  text: string;
  step: StepInfo;
  createdAt: number;
}

export type RunStatus = 'created' | 'running' | 'stopped' | 'done' | 'failed';

export interface RunCounters {
  accepted: number;
  rejectedEmpty: number;
  rejectedLength: number;
  /** Instructions generated so far (accepted + rejected + in-flight failures). */
  attempts: number;
  /** Completion tokens over both steps. */
  completionTokens: number;
}

export interface Run {
  id: string;
  /** Short human label, used in file names. */
  label: string;
  createdAt: number;
  updatedAt: number;
  status: RunStatus;
  modelId: string;
  engine: string;
  templateId: string;
  /** Measured by the BOS probe when the run's model was loaded. */
  engineAddsBos: boolean;
  settings: RunSettings;
  counters: RunCounters;
  /** Last error message when status is 'failed'. */
  error?: string;
}

export function emptyCounters(): RunCounters {
  return { accepted: 0, rejectedEmpty: 0, rejectedLength: 0, attempts: 0, completionTokens: 0 };
}
