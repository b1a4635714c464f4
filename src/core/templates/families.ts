/**
 * The non-Llama chat families WebLLM ships, as data for the one turn renderer. Each is byte-exact with its model's
 * official `chat_template` (test/fixtures/chat-templates), except Mistral, whose fixture is hand-written.
 */
import { GENERIC_QUIRKS } from '../quirks';
import { DEFAULT_INSTRUCTION, DEFAULT_RESPONSE } from '../settings';
import { defineTurnTemplate, withReferencePreQuery, type TurnFormat, type TurnTemplateSpec } from './turns';
import type { ChatMessage, DefaultSampling, FamilyTemplate } from './types';

/** The reference's defaults: free sampling for queries, greedy responses. */
const REFERENCE_SAMPLING: DefaultSampling = {
  instruction: { ...DEFAULT_INSTRUCTION },
  response: { ...DEFAULT_RESPONSE },
};

// ChatML (Qwen, SmolLM2, Hermes): `<|im_start|>{role}\n{content}<|im_end|>\n`, content untrimmed.
const IM_START = '<|im_start|>';
const IM_END = '<|im_end|>';
const QWEN_END_OF_TEXT = '<|endoftext|>';
const CHATML_TURN: TurnFormat = {
  open: (role) => `${IM_START}${role}\n`,
  close: `${IM_END}\n`,
  trimContent: false,
};

type FamilySpec = Omit<TurnTemplateSpec, 'turn' | 'endOfTurn' | 'instructionStop' | 'source'> & {
  readonly source?: TurnTemplateSpec['source'];
};

function chatml(spec: FamilySpec & { defaultSystem?: string }): FamilyTemplate {
  const { defaultSystem, ...rest } = spec;
  return defineTurnTemplate({
    source: 'official',
    ...rest,
    endOfTurn: IM_END,
    // Every special token stops the query step, so no role header can leak into an instruction.
    instructionStop: spec.specialTokens,
    turn: CHATML_TURN,
    ...(defaultSystem === undefined ? {} : { leadingSystem: (system) => system ?? defaultSystem }),
  });
}

const QWEN_TOKENS = [IM_START, IM_END, QWEN_END_OF_TEXT] as const;

/** Qwen2-Instruct: inserts "You are a helpful assistant." when the conversation has no system message. */
export function qwen2Template(): FamilyTemplate {
  return chatml({
    id: 'qwen2',
    label: 'Qwen2 Instruct',
    bosToken: '',
    specialTokens: QWEN_TOKENS,
    responseStop: [IM_END, QWEN_END_OF_TEXT],
    probeToken: IM_START,
    defaultSampling: REFERENCE_SAMPLING,
    quirks: GENERIC_QUIRKS,
    defaultSystem: 'You are a helpful assistant.',
  });
}

/** The reference's Qwen2 query step: the bare `<|im_start|>user\n`, without the default system block. */
export function qwen2BareQueryTemplate(): FamilyTemplate {
  const official = qwen2Template();
  return withReferencePreQuery(official, 'bare-query', 'bare user header', (options) =>
    options?.system === undefined ? official.userHeader : official.preQuery(options),
  );
}

/** Qwen2.5-Instruct: the default "You are Qwen…" block stays in the pre-query (without it the model writes fragments). */
export function qwen25Template(): FamilyTemplate {
  return chatml({
    id: 'qwen2.5',
    label: 'Qwen2.5 Instruct',
    bosToken: '',
    specialTokens: QWEN_TOKENS,
    responseStop: [IM_END, QWEN_END_OF_TEXT],
    probeToken: IM_START,
    // The reference's Qwen2.5 runs sampled queries at temperature 0.7.
    defaultSampling: { ...REFERENCE_SAMPLING, instruction: { ...DEFAULT_INSTRUCTION, temperature: 0.7 } },
    quirks: GENERIC_QUIRKS,
    defaultSystem: 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.',
  });
}

const THINK = '<think>';
const END_THINK = '</think>';
// Python's lstrip('\n') / rstrip('\n') as the template calls them.
const lstripNl = (s: string): string => s.replace(/^\n+/, '');
const rstripNl = (s: string): string => s.replace(/\n+$/, '');

/** Qwen3's "last query": the last user message that is not a tool response. */
function qwen3LastQuery(messages: readonly ChatMessage[]): number {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role === 'user' && !(m.content.startsWith('<tool_response>') && m.content.endsWith('</tool_response>'))) {
      return i;
    }
  }
  return messages.length - 1;
}

/**
 * Qwen3 with enable_thinking false: the generation prompt carries an empty think block, and an assistant message
 * after the last query (the reply being written) is rendered with its think block; earlier ones lose theirs.
 */
export function qwen3Template(): FamilyTemplate {
  return defineTurnTemplate({
    id: 'qwen3',
    label: 'Qwen3 (thinking off)',
    source: 'official',
    bosToken: '',
    endOfTurn: IM_END,
    specialTokens: [...QWEN_TOKENS, THINK, END_THINK],
    instructionStop: [...QWEN_TOKENS, THINK, END_THINK],
    responseStop: [IM_END, QWEN_END_OF_TEXT],
    probeToken: IM_START,
    defaultSampling: REFERENCE_SAMPLING,
    quirks: GENERIC_QUIRKS,
    turn: CHATML_TURN,
    generationPrompt: `${IM_START}assistant\n${THINK}\n\n${END_THINK}\n\n`,
    assistantContent: (text, { index, messages }) => {
      let content = text;
      let reasoning = '';
      if (text.includes(END_THINK)) {
        const parts = text.split(END_THINK);
        content = lstripNl(parts[parts.length - 1] ?? '');
        const thought = rstripNl(parts[0] ?? '').split(THINK);
        reasoning = lstripNl(thought[thought.length - 1] ?? '');
      }
      if (index > qwen3LastQuery(messages) && (index === messages.length - 1 || reasoning !== '')) {
        return `${THINK}\n${rstripNl(lstripNl(reasoning))}\n${END_THINK}\n\n${lstripNl(content)}`;
      }
      return content;
    },
  });
}

// Phi-3 / 3.5 mini: `<|{role}|>\n{content}<|end|>\n`, untrimmed; BOS `<s>` comes from the tokenizer, not the template.
const PHI_END = '<|end|>';
const PHI_END_OF_TEXT = '<|endoftext|>';
const PHI_TOKENS = ['<s>', '</s>', PHI_END_OF_TEXT, '<|system|>', '<|user|>', '<|assistant|>', PHI_END] as const;

function phi(id: string, label: string, skipEmptySystem: boolean): FamilyTemplate {
  return defineTurnTemplate({
    id,
    label,
    source: 'official',
    bosToken: '<s>',
    endOfTurn: PHI_END,
    specialTokens: PHI_TOKENS,
    instructionStop: PHI_TOKENS,
    responseStop: [PHI_END, PHI_END_OF_TEXT],
    probeToken: '<|user|>',
    defaultSampling: REFERENCE_SAMPLING,
    quirks: GENERIC_QUIRKS,
    turn: { open: (role) => `<|${role}|>\n`, close: `${PHI_END}\n`, trimContent: false },
    // With add_generation_prompt false the template ends with eos; a pre-query cut stops before it.
    endOfConversation: PHI_END_OF_TEXT,
    ...(skipEmptySystem ? { skipMessage: (m: ChatMessage) => m.role === 'system' && m.content === '' } : {}),
  });
}

export function phi3Template(): FamilyTemplate {
  return phi('phi-3', 'Phi-3 mini Instruct', false);
}

/** Phi-3.5-mini: as Phi-3, but an empty system message is left out entirely. */
export function phi35Template(): FamilyTemplate {
  return phi('phi-3.5', 'Phi-3.5 mini Instruct', true);
}

/** The reference's Phi-3 query prompt `<s> <|user|>\n`: a space after BOS (part of this pre-query, BOS is not). */
export function phiSpacedQueryTemplate(official: FamilyTemplate): FamilyTemplate {
  return withReferencePreQuery(official, 'spaced-query', '"<s> <|user|>"', (options) => ` ${official.preQuery(options)}`);
}

// Gemma-2 it: `<start_of_turn>{user|model}\n{content | trim}<end_of_turn>\n`; BOS is in the template.
const START_OF_TURN = '<start_of_turn>';
const END_OF_TURN = '<end_of_turn>';
const GEMMA_TOKENS = ['<bos>', '<eos>', START_OF_TURN, END_OF_TURN] as const;

/** Thrown where Gemma-2's template raises, with the template's own message and what to do instead. */
export class UnsupportedSystemPromptError extends Error {
  constructor(templateId: string) {
    super(
      `Template ${templateId}: System role not supported. Gemma 2's chat template raises on a system message, so ` +
        'a system prompt cannot steer its queries; run without one, or pick a model whose template has a system role.',
    );
    this.name = 'UnsupportedSystemPromptError';
  }
}

export function gemma2Template(): FamilyTemplate {
  const id = 'gemma-2';
  return defineTurnTemplate({
    id,
    label: 'Gemma 2 it',
    source: 'official',
    bosToken: '<bos>',
    endOfTurn: END_OF_TURN,
    specialTokens: GEMMA_TOKENS,
    instructionStop: GEMMA_TOKENS,
    responseStop: [END_OF_TURN, '<eos>'],
    probeToken: START_OF_TURN,
    defaultSampling: REFERENCE_SAMPLING,
    // The reference ran Gemma-2 without early stopping and with the sanitizer.
    quirks: { ...GENERIC_QUIRKS, earlyStopNewline: false, sanitize: true },
    supportsSystem: false,
    turn: {
      open: (role) => `${START_OF_TURN}${role === 'assistant' ? 'model' : role}\n`,
      close: `${END_OF_TURN}\n`,
      trimContent: true,
    },
    validate: (messages) => {
      if (messages[0]?.role === 'system') throw new UnsupportedSystemPromptError(id);
      messages.forEach((m, i) => {
        // The template's own test: user exactly at even positions (so a later system turn at an odd one passes).
        if ((m.role === 'user') !== (i % 2 === 0)) {
          throw new Error(`Template ${id}: Conversation roles must alternate user/assistant/user/assistant/...`);
        }
      });
    },
  });
}

/** The reference's Gemma-2 query prompt: two newlines after the user role. */
export function gemma2DoubleNewlineQueryTemplate(): FamilyTemplate {
  const official = gemma2Template();
  return withReferencePreQuery(official, 'double-newline-query', 'user header + two newlines', (options) =>
    `${official.preQuery(options)}\n`,
  );
}

/**
 * Mistral-7B-Instruct-v0.3 in the well-known `<s>[INST] {user} [/INST]{assistant}</s>` format (hand-written: no
 * official copy was available here). A system prompt goes in front of the first user message, separated by a blank
 * line, which keeps the pre-query `<s>[INST] ` of the reference.
 */
export function mistralV03Template(): FamilyTemplate {
  const id = 'mistral-v0.3';
  const tokens = ['<s>', '</s>', '[INST]', '[/INST]'] as const;
  return defineTurnTemplate({
    id,
    label: 'Mistral 7B Instruct v0.3',
    source: 'hand-written',
    bosToken: '<s>',
    endOfTurn: '[/INST]',
    specialTokens: tokens,
    // v0.3's tool-calling control tokens cannot be part of a user query either.
    instructionStop: [...tokens, '[TOOL_CALLS]', '[AVAILABLE_TOOLS]', '[/AVAILABLE_TOOLS]', '[TOOL_RESULTS]', '[/TOOL_RESULTS]'],
    responseStop: ['</s>'],
    probeToken: '[INST]',
    defaultSampling: REFERENCE_SAMPLING,
    quirks: GENERIC_QUIRKS,
    turn: {
      open: (role) => (role === 'user' ? '[INST] ' : ''),
      close: (role) => (role === 'user' ? ' [/INST]' : '</s>'),
      trimContent: false,
    },
    generationPrompt: '',
    mergeSystem: (system, user) => `${system}\n\n${user}`,
    validate: (messages) => {
      const turns = messages[0]?.role === 'system' ? messages.slice(1) : messages;
      turns.forEach((m, i) => {
        if (m.role === 'system') {
          throw new Error(`Template ${id}: A system message is only supported as the first message.`);
        }
        if ((m.role === 'user') !== (i % 2 === 0)) {
          throw new Error(`Template ${id}: Conversation roles must alternate user/assistant/user/assistant/...`);
        }
      });
    },
  });
}

/** SmolLM2-Instruct: ChatML with its own default system message. */
export function smollm2Template(): FamilyTemplate {
  const tokens = [IM_START, IM_END, '<|endoftext|>'] as const;
  return chatml({
    id: 'smollm2',
    label: 'SmolLM2 Instruct',
    bosToken: '',
    specialTokens: tokens,
    responseStop: [IM_END, '<|endoftext|>'],
    probeToken: IM_START,
    defaultSampling: REFERENCE_SAMPLING,
    quirks: GENERIC_QUIRKS,
    defaultSystem: 'You are a helpful AI assistant named SmolLM, trained by Hugging Face',
  });
}

/** Hermes-3 (Llama-3.1/3.2 fine-tunes): ChatML on the Llama-3 tokenizer, BOS `<|begin_of_text|>`. */
export function hermes3Template(): FamilyTemplate {
  const tokens = ['<|begin_of_text|>', '<|end_of_text|>', IM_START, IM_END] as const;
  return chatml({
    id: 'hermes-3',
    label: 'Hermes 3',
    bosToken: '<|begin_of_text|>',
    specialTokens: tokens,
    responseStop: [IM_END, '<|end_of_text|>'],
    // BOS is a single token in every Llama-3 vocabulary; Hermes' ChatML tokens could not be checked here.
    probeToken: '<|begin_of_text|>',
    defaultSampling: REFERENCE_SAMPLING,
    quirks: GENERIC_QUIRKS,
    defaultSystem: 'You are a helpful assistant.',
  });
}
