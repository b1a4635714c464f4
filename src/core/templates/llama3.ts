/**
 * Llama-3 family chat templates (Meta-Llama-3, Llama-3.1, Llama-3.2 Instruct), byte-exact with the official
 * `chat_template` of each model's tokenizer_config.json, minus the leading BOS.
 */
import { GENERIC_QUIRKS, LLAMA3_HEADER_BAN, type Quirks } from '../quirks';
import { DEFAULT_INSTRUCTION, DEFAULT_RESPONSE } from '../settings';
import { defineTurnTemplate, withReferencePreQuery, type TurnFormat, type TurnTemplateSpec } from './turns';
import type { DefaultSampling, FamilyTemplate } from './types';

const BOS = '<|begin_of_text|>';
const END_OF_TEXT = '<|end_of_text|>';
const START_HEADER = '<|start_header_id|>';
const END_HEADER = '<|end_header_id|>';
const EOT = '<|eot_id|>';
// Llama-3.1+ only: end of a tool-calling message, and the tag that opens a built-in tool call.
const EOM = '<|eom_id|>';
const PYTHON_TAG = '<|python_tag|>';

const LLAMA3_TURN: TurnFormat = {
  open: (role) => `${START_HEADER}${role}${END_HEADER}\n\n`,
  close: EOT,
  trimContent: true,
};

/** The date Llama-3.1's template uses when the caller passes no `date_string`. */
export const LLAMA_31_DEFAULT_DATE = '26 Jul 2024';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

/**
 * `strftime("%d %b %Y")` as Python's transformers renders Llama-3.2's `strftime_now` (local time, English month,
 * zero-padded day), e.g. "05 Mar 2025". Written out because Intl month names follow the user's locale.
 */
export function formatTemplateDate(date: Date): string {
  const day = String(date.getDate()).padStart(2, '0');
  return `${day} ${MONTHS[date.getMonth()] ?? ''} ${date.getFullYear()}`;
}

export interface LlamaTemplateOptions {
  /**
   * The "Today Date" of the Llama-3.1/3.2 system block (Jinja `date_string`). Default: "26 Jul 2024" for 3.1 (the
   * template's own default); today's date for 3.2 (its template calls strftime_now), fixed when the template is made.
   */
  dateString?: string;
}

/** A Llama-3.1/3.2 template: its rendering depends on the date, which it reports so a run can record it. */
export interface DatedChatTemplate extends FamilyTemplate {
  readonly dateString: string;
}

interface LlamaVersion {
  readonly id: string;
  readonly label: string;
  readonly specialTokens: readonly string[];
  readonly responseStop: readonly string[];
  /** Llama-3.1+ always opens with the "Cutting Knowledge Date" system block; the original Llama-3 does not. */
  readonly defaultDate?: () => string;
  readonly defaultSampling: DefaultSampling;
  readonly quirks: Quirks;
}

/** The reference's Llama-3.1 settings (its generation_config: responses at temperature 0.6, top_p 0.9). */
const LLAMA_31_SAMPLING: DefaultSampling = {
  instruction: { ...DEFAULT_INSTRUCTION },
  response: { ...DEFAULT_RESPONSE, temperature: 0.6, topP: 0.9 },
};

/** Llama-3.1+ in the reference: no early stop, sanitizer on, no markdown header as the first token. */
const LLAMA_31_QUIRKS: Quirks = {
  firstTokenBan: LLAMA3_HEADER_BAN,
  earlyStopNewline: false,
  assistantStopWord: true,
  sanitize: true,
};

const LLAMA3_TOKENS = [BOS, END_OF_TEXT, START_HEADER, END_HEADER, EOT] as const;
const LLAMA31_TOKENS = [...LLAMA3_TOKENS, EOM, PYTHON_TAG] as const;

const LLAMA_3: LlamaVersion = {
  id: 'llama-3',
  label: 'Llama 3 Instruct',
  specialTokens: LLAMA3_TOKENS,
  responseStop: [EOT, END_OF_TEXT],
  defaultSampling: { instruction: { ...DEFAULT_INSTRUCTION }, response: { ...DEFAULT_RESPONSE } },
  quirks: GENERIC_QUIRKS,
};
const LLAMA_31 = {
  id: 'llama-3.1',
  label: 'Llama 3.1 Instruct',
  specialTokens: LLAMA31_TOKENS,
  responseStop: [EOT, END_OF_TEXT, EOM],
  defaultDate: () => LLAMA_31_DEFAULT_DATE,
  defaultSampling: LLAMA_31_SAMPLING,
  quirks: LLAMA_31_QUIRKS,
} satisfies LlamaVersion;
const LLAMA_32 = {
  id: 'llama-3.2',
  label: 'Llama 3.2 Instruct',
  specialTokens: LLAMA31_TOKENS,
  responseStop: [EOT, END_OF_TEXT, EOM],
  defaultDate: () => formatTemplateDate(new Date()),
  // Same weights recipe and generation_config as 3.1, so the reference's 3.1 settings carry over.
  defaultSampling: LLAMA_31_SAMPLING,
  quirks: LLAMA_31_QUIRKS,
} satisfies LlamaVersion;

function llamaSpec(version: LlamaVersion, dateString: string | undefined): TurnTemplateSpec {
  const knowledgeBlock =
    dateString === undefined
      ? undefined
      : (system: string | undefined): string =>
          `Cutting Knowledge Date: December 2023\nToday Date: ${dateString}\n\n${system ?? ''}`;
  return {
    id: version.id,
    label: version.label,
    bosToken: BOS,
    endOfTurn: EOT,
    specialTokens: version.specialTokens,
    // Every special token stops the query step, so no header or role token can leak into an instruction.
    instructionStop: version.specialTokens,
    responseStop: version.responseStop,
    probeToken: START_HEADER,
    defaultSampling: version.defaultSampling,
    quirks: version.quirks,
    source: 'official',
    turn: LLAMA3_TURN,
    ...(knowledgeBlock ? { leadingSystem: knowledgeBlock } : {}),
  };
}

/** Meta-Llama-3-8B/70B-Instruct. */
export function llama3Template(): FamilyTemplate {
  return defineTurnTemplate(llamaSpec(LLAMA_3, undefined));
}

function datedTemplate(
  version: LlamaVersion & Required<Pick<LlamaVersion, 'defaultDate'>>,
  options: LlamaTemplateOptions | undefined,
): DatedChatTemplate {
  const dateString = options?.dateString ?? version.defaultDate();
  return { ...defineTurnTemplate(llamaSpec(version, dateString)), dateString };
}

/** Llama-3.1-8B/70B-Instruct: official rendering, "Cutting Knowledge Date" system block always present. */
export function llama31Template(options?: LlamaTemplateOptions): DatedChatTemplate {
  return datedTemplate(LLAMA_31, options);
}

/** Llama-3.2-1B/3B-Instruct: as 3.1, with today's date by default. */
export function llama32Template(options?: LlamaTemplateOptions): DatedChatTemplate {
  return datedTemplate(LLAMA_32, options);
}

/**
 * The Magpie reference's variant of a Llama-3.1/3.2 template: the query step starts from the bare user header (or
 * a plain Llama-3 system turn + user header), without the "Cutting Knowledge Date" block; responses and every other
 * rendering stay official. Its own id ("…-bare-query") is what records store, so the choice stays visible.
 */
function bareQueryTemplate(official: DatedChatTemplate): DatedChatTemplate {
  const llama3 = llama3Template();
  return {
    ...withReferencePreQuery(official, 'bare-query', 'bare user header', (options) => llama3.preQuery(options)),
    dateString: official.dateString,
  };
}

export function llama31BareQueryTemplate(options?: LlamaTemplateOptions): DatedChatTemplate {
  return bareQueryTemplate(llama31Template(options));
}

export function llama32BareQueryTemplate(options?: LlamaTemplateOptions): DatedChatTemplate {
  return bareQueryTemplate(llama32Template(options));
}
