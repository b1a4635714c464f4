/**
 * The one small renderer behind every turn-based chat template: a family is data (how a turn opens and closes,
 * whether content is trimmed, whether a system turn is always present) and this file turns it into a ChatTemplate.
 */
import type { ChatMessage, ChatTemplate, FamilyTemplate, PreQueryOptions, RenderOptions, Role } from './types';

/**
 * Rendered as the user's content to find where the user's text starts. Private-use code points: no chat template
 * or system prompt contains them, and they have no whitespace at the ends, so trimming leaves them intact.
 */
export const PRE_QUERY_SENTINEL = '\u{F0000}MAGPIE_PRE_QUERY\u{F0001}';

const KNOWN_ROLES: readonly Role[] = ['system', 'user', 'assistant'];

/**
 * Jinja's `| trim` exactly as @huggingface/jinja runs it: String.prototype.trim (Unicode White_Space plus BOM).
 * Python's jinja2 uses str.strip, which differs only on U+FEFF (kept) and U+001C–U+001F, U+0085 (stripped).
 */
export function jinjaTrim(text: string): string {
  return text.trim();
}

/** How one turn of a family's chat format is written. */
export interface TurnFormat {
  /** Text before a turn's content, e.g. `<|start_header_id|>user<|end_header_id|>\n\n`. */
  open(role: Role): string;
  /** Text after a turn's content, e.g. `<|eot_id|>`; a function where it depends on the role (Mistral). */
  readonly close: string | ((role: Role) => string);
  /** The official template trims each message's content (`| trim`). */
  readonly trimContent: boolean;
}

/** Where an assistant message stands in the conversation, for formats that render the latest one differently. */
export interface AssistantPosition {
  readonly index: number;
  /** The turns being rendered (after a leading system message the format consumed itself). */
  readonly messages: readonly ChatMessage[];
}

/** Everything a FamilyTemplate exposes except behaviour, plus the format the renderer needs. */
export interface TurnTemplateSpec
  extends Omit<FamilyTemplate, 'render' | 'preQuery' | 'userHeader' | 'generationPrompt' | 'supportsSystem'> {
  readonly turn: TurnFormat;
  /**
   * Present when the official template always opens with a system turn. Gets the leading system message's content
   * (after trimming, when the format trims) or undefined when the conversation has none; returns that turn's content
   * verbatim.
   */
  readonly leadingSystem?: (system: string | undefined) => string;
  /** The assistant header of add_generation_prompt, when it is not `turn.open('assistant')`. */
  readonly generationPrompt?: string;
  /** Appended when add_generation_prompt is false (Phi-3 appends its end-of-text token). */
  readonly endOfConversation?: string;
  /** Messages the official template renders as nothing (Phi-3.5 drops an empty system message). */
  readonly skipMessage?: (message: ChatMessage) => boolean;
  /** Raises where the official template raises, with its message (Gemma-2: system role, alternation). */
  readonly validate?: (messages: readonly ChatMessage[]) => void;
  /** A leading system message is written into the first user turn instead of its own turn (Mistral). */
  readonly mergeSystem?: (system: string, user: string) => string;
  /** Rewrites an assistant message's content before it is written (Qwen3's think block). */
  readonly assistantContent?: (content: string, position: AssistantPosition) => string;
  /** The template rejects a leading system message (defaults to true, accepted). */
  readonly supportsSystem?: boolean;
}

function checkMessage(templateId: string, message: ChatMessage, index: number): void {
  // Messages come from stored runs and imports too, so the type alone does not guarantee the shape.
  const value: unknown = message;
  if (typeof value !== 'object' || value === null) {
    throw new Error(`Template ${templateId}: message ${index} is not an object.`);
  }
  if (!KNOWN_ROLES.includes(message.role)) {
    throw new Error(
      `Template ${templateId}: message ${index} has role "${String(message.role)}"; only system, user and ` +
        'assistant messages are supported (tool and ipython turns render differently in the official template).',
    );
  }
  if (typeof message.content !== 'string') {
    throw new Error(`Template ${templateId}: message ${index} (${message.role}) has non-text content.`);
  }
  if ('tool_calls' in value) {
    throw new Error(`Template ${templateId}: message ${index} carries tool_calls, which are not supported.`);
  }
}

const closeOf = (turn: TurnFormat, role: Role): string => (typeof turn.close === 'string' ? turn.close : turn.close(role));

function renderTurns(spec: TurnTemplateSpec, messages: readonly ChatMessage[], options: RenderOptions): string {
  if (messages.length === 0) {
    throw new Error(`Template ${spec.id}: cannot render a conversation with no messages.`);
  }
  messages.forEach((message, index) => checkMessage(spec.id, message, index));
  spec.validate?.(messages);
  const { turn } = spec;
  const content = (text: string): string => (turn.trimContent ? jinjaTrim(text) : text);

  let rest = messages;
  let text = '';
  const first = messages[0];
  let merged: string | undefined;
  if (spec.leadingSystem) {
    const system = first?.role === 'system' ? content(first.content) : undefined;
    if (system !== undefined) rest = messages.slice(1);
    text += turn.open('system') + spec.leadingSystem(system) + closeOf(turn, 'system');
  } else if (spec.mergeSystem && first?.role === 'system') {
    merged = first.content;
    rest = messages.slice(1);
  }
  rest.forEach((message, index) => {
    if (spec.skipMessage?.(message)) return;
    let body = content(message.content);
    if (merged !== undefined && index === 0 && message.role === 'user') body = spec.mergeSystem?.(merged, body) ?? body;
    if (message.role === 'assistant' && spec.assistantContent) {
      body = spec.assistantContent(body, { index, messages: rest });
    }
    text += turn.open(message.role) + body + closeOf(turn, message.role);
  });
  text += options.addGenerationPrompt ? (spec.generationPrompt ?? turn.open('assistant')) : (spec.endOfConversation ?? '');
  return text;
}

/**
 * The left side of the next user turn after `history`: render history + a user turn holding the sentinel, without
 * a generation prompt, and cut before the sentinel. With an empty history this is the pre-query template; after
 * earlier turns it is the Magpie-MT follow-up prompt.
 */
export function cutPreQuery(template: Pick<ChatTemplate, 'id' | 'render'>, history: readonly ChatMessage[]): string {
  const rendered = template.render([...history, { role: 'user', content: PRE_QUERY_SENTINEL }], {
    addGenerationPrompt: false,
  });
  const at = rendered.indexOf(PRE_QUERY_SENTINEL);
  if (at < 0 || rendered.indexOf(PRE_QUERY_SENTINEL, at + 1) >= 0) {
    throw new Error(`Template ${template.id}: the user's text does not appear exactly once in the rendering.`);
  }
  return rendered.slice(0, at);
}

/** History that a pre-query starts from: just the system prompt, when one is given. */
export function preQueryHistory(options: PreQueryOptions | undefined): ChatMessage[] {
  return options?.system === undefined ? [] : [{ role: 'system', content: options.system }];
}

/** Build a FamilyTemplate from a family's data. */
export function defineTurnTemplate(spec: TurnTemplateSpec): FamilyTemplate {
  const template: FamilyTemplate = {
    id: spec.id,
    label: spec.label,
    bosToken: spec.bosToken,
    endOfTurn: spec.endOfTurn,
    specialTokens: spec.specialTokens,
    instructionStop: spec.instructionStop,
    responseStop: spec.responseStop,
    probeToken: spec.probeToken,
    supportsSystem: spec.supportsSystem ?? true,
    userHeader: spec.turn.open('user'),
    generationPrompt: spec.generationPrompt ?? spec.turn.open('assistant'),
    defaultSampling: spec.defaultSampling,
    quirks: spec.quirks,
    source: spec.source,
    render: (messages, options) => renderTurns(spec, messages, options),
    preQuery: (options) => cutPreQuery(template, preQueryHistory(options)),
  };
  return template;
}

/**
 * A template whose query step starts from the Magpie reference's pre-query instead of the official one; every other
 * rendering stays official. Its own id (`{official}-{suffix}`) is what records store, so the choice stays visible.
 */
export function withReferencePreQuery(
  official: FamilyTemplate,
  suffix: string,
  what: string,
  preQuery: (options?: PreQueryOptions) => string,
): FamilyTemplate {
  return {
    ...official,
    id: `${official.id}-${suffix}`,
    label: `${official.label} (reference pre-query: ${what})`,
    source: 'reference',
    preQuery,
  };
}
