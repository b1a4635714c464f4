/** Chat templates: byte-exact renderers of a model family's official chat template. */
import type { Quirks } from '../quirks';
import type { SamplingSettings } from '../record';

export type Role = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: Role;
  content: string;
}

export interface RenderOptions {
  /** Append the assistant header so the model writes the assistant turn next. */
  addGenerationPrompt: boolean;
}

export interface PreQueryOptions {
  /** A system prompt placed before the user header (steers the domain of the generated queries). */
  system?: string;
}

export interface ChatTemplate {
  /** Stable id stored on runs and records, e.g. "llama-3", "llama-3.1". */
  readonly id: string;
  /** Human label, e.g. "Llama 3 Instruct". */
  readonly label: string;
  /** Begin-of-sequence token text ('' when the family's template has none). Never included by render/preQuery. */
  readonly bosToken: string;
  /** End-of-turn token text, e.g. "<|eot_id|>". */
  readonly endOfTurn: string;
  /** Special-token strings of the format (headers, end of turn, end of text). */
  readonly specialTokens: readonly string[];
  /** Stop strings for the instruction (query) step: every special token, so a header can never leak into the text. */
  readonly instructionStop: readonly string[];
  /** Stop strings for the response step: end-of-turn / end-of-text. */
  readonly responseStop: readonly string[];
  /** A string that is exactly one token for this family's tokenizer (used by the BOS probe). */
  readonly probeToken: string;
  /**
   * The conversation exactly as the official chat template renders it, minus the leading BOS token.
   * Content is trimmed where the official template trims it.
   */
  render(messages: readonly ChatMessage[], options: RenderOptions): string;
  /** The pre-query template: the left side of a user turn, up to where the user's text starts (minus BOS). */
  preQuery(options?: PreQueryOptions): string;
}

/** Sampling a family's reference run used for each Magpie step. */
export interface DefaultSampling {
  instruction: SamplingSettings;
  response: SamplingSettings;
}

/** Where a template's rendering comes from, so a run can say what its prompts were checked against. */
export type TemplateSource = 'official' | 'reference' | 'hand-written' | 'conv-template' | 'custom';

/** A ChatTemplate plus the per-family data the Magpie steps need (every registry template is one). */
export interface FamilyTemplate extends ChatTemplate {
  /** The template accepts a leading system message (Gemma-2's raises instead). */
  readonly supportsSystem: boolean;
  /** Text that opens a user turn: the tail of every pre-query template, and the Magpie-MT follow-up header. */
  readonly userHeader: string;
  /** Text appended with add_generation_prompt (the assistant header; Qwen3 adds an empty think block). */
  readonly generationPrompt: string;
  /** The reference's sampling for this family (magpie-method.md §3). */
  readonly defaultSampling: DefaultSampling;
  /** The reference's per-family quirk defaults; a run may override each one. */
  readonly quirks: Quirks;
  readonly source: TemplateSource;
}

/** Put BOS in front of a rendered prompt unless the loaded engine prepends it itself (measured at load time). */
export function withBos(template: Pick<ChatTemplate, 'bosToken'>, body: string, engineAddsBos: boolean): string {
  return engineAddsBos ? body : template.bosToken + body;
}
