/** The records a run produces, and the run itself, as stored and exported. */
import type { FinishReason } from './engine';
import type { CustomTemplateSpec } from './custom-template';
import type { Quirks } from './quirks';
import type { Recipe } from './recipe';

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
  /** Set when the sanitizer changed the instruction: the model's raw query and the rule that fired. */
  sanitized?: { raw: string; rule: number; ruleName: string };
  // Generation modes (issue #6); all optional, so records of plain runs stay as they were.
  /** Which generation mode made the record (absent: the classic instruction → response pair). */
  mode?: GenerationMode;
  /** recipeHash() of the run's recipe: records of identical recipes carry the same hash. */
  recipeHash?: string;
  /** The system prompt drawn from the run's mixture for this record (it steered the queries and responses). */
  system?: { key: string; prompt: string };
  /** Which of the run's mixed instruction-sampling configs this record drew (index into the recipe's list). */
  samplingDraw?: { index: number; temperature: number; topP: number };
  /** The instruction came from an imported file (1-based line number there) instead of the model. */
  imported?: { line: number };
  /** The first turn has no response (instruction-only, or a one-turn conversation that ends with the user). */
  noResponse?: boolean;
  /** Turns after the first (multi-turn); the last one has no response when the conversation ends with the user. */
  turns?: TurnRecord[];
  /** Preference mode: the k responses to the instruction, in the order they were generated. */
  candidates?: PreferenceCandidate[];
  /** Preference mode: which candidates are chosen / rejected, and who decided (absent: not judged yet). */
  judgement?: PreferenceJudgement;
}

export type GenerationMode = 'pair' | 'instruction-only' | 'multi-turn' | 'preference';

/** One later turn of a multi-turn conversation. */
export interface TurnRecord {
  instruction: string;
  instructionStep: StepInfo;
  /** Set when the sanitizer quirk changed this follow-up query (as MagpieRecord.sanitized). */
  sanitized?: { raw: string; rule: number; ruleName: string };
  response?: string;
  responseStep?: StepInfo;
}

export interface PreferenceCandidate {
  text: string;
  step: StepInfo;
}

export interface PreferenceJudgement {
  by: 'model' | 'manual';
  /** Indexes into `candidates`; their texts always differ. */
  chosen: number;
  rejected: number;
  /** The judge's score per candidate (model judge only). */
  scores?: number[];
  /** The judge's one-line reason (model judge only). */
  reason?: string;
  /**
   * The judge calls as they happened: a constrained-JSON call first when the engine offers one (its `prompt` holds
   * the chat messages as JSON), then raw completions if needed (a failed parse is followed by one retry).
   */
  steps?: StepInfo[];
  /** Model judge only: whose answer was used, the engine's grammar-constrained JSON or a parsed raw completion. */
  via?: 'constrained' | 'raw';
}

/**
 * empty / length: the instruction was unusable. judge: the judge's answer was not valid JSON twice.
 * no-distinct-pair: the candidates gave no two different texts with different scores.
 */
export type RejectionReason = 'empty' | 'length' | 'judge' | 'no-distinct-pair';

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

/**
 * queued → loading → running ⇄ paused → done | failed (transition table: core/run-state.ts).
 * 'created' and 'stopped' were written by schema version 1; the db upgrade maps them to 'queued' / 'paused' and
 * readers treat any left-over one the same way (normalizeRunStatus).
 */
export type RunStatus = 'queued' | 'loading' | 'running' | 'paused' | 'done' | 'failed' | 'created' | 'stopped';

/** Why a run is paused: the user asked, its tab went away, the engine kept failing, or storage is full. */
export type PauseReason = 'user' | 'interrupted' | 'engine-lost' | 'storage-full';

export interface RunPause {
  reason: PauseReason;
  /** What happened and what to do, for the banner. */
  message: string;
  /** ms since epoch. */
  at: number;
}

export interface RunCounters {
  accepted: number;
  rejectedEmpty: number;
  rejectedLength: number;
  /** Instructions generated so far (accepted + rejected + in-flight failures). */
  attempts: number;
  /** Completion tokens over both steps. */
  completionTokens: number;
  /** Attempts rejected for another reason (preference judge failures, no distinct pair). */
  rejectedOther?: number;
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
  /** The family quirks the run used (stops, first-token ban, sanitizer); absent on runs made before quirks. */
  quirks?: Quirks;
  /**
   * For a model the registry does not know: the template the run used, with the data to rebuild it (its
   * conv_template or base template id), so an exported dataset says exactly which prompts made it.
   */
  customTemplate?: CustomTemplateSpec;
  /** For engine 'openai-compatible': the server base URLs the run used (never the API key). */
  server?: { baseUrls: string[] };
  settings: RunSettings;
  /** The run's complete recipe (modes, system prompts, sampling mixes); absent on runs made before recipes. */
  recipe?: Recipe;
  counters: RunCounters;
  /** Last error message when status is 'failed'. */
  error?: string;
  /** Set while status is 'paused' (absent in runs paused by older versions). */
  pause?: RunPause;
}

export function emptyCounters(): RunCounters {
  return { accepted: 0, rejectedEmpty: 0, rejectedLength: 0, attempts: 0, completionTokens: 0 };
}
