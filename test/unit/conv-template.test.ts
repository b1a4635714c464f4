import { describe, expect, test } from 'vitest';
import {
  checkPreQueryTemplate,
  customPreQueryTemplate,
  parseConvTemplate,
  PreQueryTemplateError,
  templateFromConvTemplate,
  type MlcConvTemplate,
} from '../../src/core/conv-template';
import { cutPreQuery, getTemplate } from '../../src/core/templates/registry';
import type { ChatMessage } from '../../src/core/templates/types';

const sys = (content: string): ChatMessage => ({ role: 'system', content });
const user = (content: string): ChatMessage => ({ role: 'user', content });
const bot = (content: string): ChatMessage => ({ role: 'assistant', content });

/** Llama-3's conv_template, written from the format facts (header tokens, eot separator, BOS as prefix id). */
const LLAMA3_CONV: MlcConvTemplate = {
  name: 'llama-3',
  system_template: '<|start_header_id|>system<|end_header_id|>\n\n{system_message}<|eot_id|>',
  system_message: 'You are a helpful, respectful and honest assistant.',
  roles: { user: '<|start_header_id|>user', assistant: '<|start_header_id|>assistant' },
  seps: ['<|eot_id|>'],
  role_content_sep: '<|end_header_id|>\n\n',
  role_empty_sep: '<|end_header_id|>\n\n',
  stop_str: [],
  stop_token_ids: [128001, 128009],
  system_prefix_token_ids: [128000],
};

/** A ChatML conv_template, written from the format facts. */
const CHATML_CONV: MlcConvTemplate = {
  name: 'chatml',
  system_template: '<|im_start|>system\n{system_message}<|im_end|>\n',
  system_message: 'You are a helpful assistant.',
  roles: { user: '<|im_start|>user', assistant: '<|im_start|>assistant' },
  seps: ['<|im_end|>\n'],
  role_content_sep: '\n',
  role_empty_sep: '\n',
  stop_str: ['<|im_end|>'],
  stop_token_ids: [151643, 151645],
};

const CONVERSATIONS: ChatMessage[][] = [
  [user('What is the capital of France?')],
  [user('Hi!'), bot('Hello! How can I help?'), user('Tell me a joke.')],
  [sys('You are a math tutor.'), user('What is 2+2?')],
  [sys('Answer briefly.'), user('Name a fruit.'), bot('Apple.'), user('Another?')],
];

describe('a template derived from a conv_template renders as our family renderer', () => {
  test.each([
    ['Llama-3', LLAMA3_CONV, 'llama-3'],
    ['ChatML (as Qwen3 without thinking)', CHATML_CONV, 'qwen3'],
  ] as const)('%s: pre-query with and without a system prompt', (_name, conv, familyId) => {
    const derived = templateFromConvTemplate(conv);
    const family = getTemplate(familyId);
    expect(derived.preQuery()).toBe(family.preQuery());
    expect(derived.preQuery({ system: 'Ask about chemistry.' })).toBe(family.preQuery({ system: 'Ask about chemistry.' }));
    expect(derived.userHeader).toBe(family.userHeader);
    const history = [sys('Follow up.'), user('Q1'), bot('A1')];
    expect(cutPreQuery(derived, history)).toBe(cutPreQuery(family, history));
  });

  test.each(CONVERSATIONS.map((c, i) => [i, c] as const))('Llama-3 conversation %i, with and without a generation prompt', (_i, messages) => {
    const derived = templateFromConvTemplate(LLAMA3_CONV);
    for (const addGenerationPrompt of [true, false]) {
      expect(derived.render(messages, { addGenerationPrompt })).toBe(getTemplate('llama-3').render(messages, { addGenerationPrompt }));
    }
  });

  test.each(CONVERSATIONS.map((c, i) => [i, c] as const))('ChatML conversation %i matches Qwen2 when a system prompt is given', (_i, messages) => {
    const derived = templateFromConvTemplate(CHATML_CONV, { useDefaultSystem: true });
    expect(derived.render(messages, { addGenerationPrompt: true })).toBe(getTemplate('qwen2').render(messages, { addGenerationPrompt: true }));
  });

  test('stops, end of turn, probe and BOS', () => {
    const llama = templateFromConvTemplate(LLAMA3_CONV, { bosToken: '<|begin_of_text|>' });
    expect(llama.endOfTurn).toBe('<|eot_id|>');
    expect(llama.probeToken).toBe('<|eot_id|>');
    expect(llama.bosToken).toBe('<|begin_of_text|>');
    expect(llama.responseStop).toEqual(['<|eot_id|>']);
    expect(llama.instructionStop).toEqual(['<|eot_id|>', '<|start_header_id|>user', '<|start_header_id|>assistant']);
    expect(llama.id).toBe('conv:llama-3');
    expect(llama.source).toBe('conv-template');
    const chatml = templateFromConvTemplate(CHATML_CONV, { id: 'my-model', probeToken: '<|im_start|>' });
    expect(chatml.id).toBe('my-model');
    expect(chatml.endOfTurn).toBe('<|im_end|>');
    expect(chatml.instructionStop).toEqual(['<|im_end|>', '<|im_end|>\n', '<|im_start|>user', '<|im_start|>assistant']);
    expect(chatml.probeToken).toBe('<|im_start|>');
    expect(templateFromConvTemplate(LLAMA3_CONV).bosToken).toBe('');
  });
});

describe("WebLLM's assembly rules", () => {
  const base: MlcConvTemplate = {
    system_template: '[SYS]{system_message}[/SYS]',
    system_message: 'default',
    roles: { user: 'U', assistant: 'A' },
    seps: [' ', '</s>'],
    stop_str: ['</s>'],
    stop_token_ids: [2],
  };

  test('missing separators default to ": "; seps alternate by message index; no default system unless asked', () => {
    const t = templateFromConvTemplate(base);
    expect(t.render([user('q'), bot('a'), user('r')], { addGenerationPrompt: true })).toBe('U: q A: a</s>U: r A: ');
    expect(templateFromConvTemplate(base, { useDefaultSystem: true }).preQuery()).toBe('[SYS]default[/SYS]U: ');
    expect(t.preQuery()).toBe('U: ');
    // Whitespace-only separators are never stop strings.
    expect(t.instructionStop).not.toContain(' ');
  });

  test('an explicit empty separator is kept, not replaced by ": "', () => {
    const t = templateFromConvTemplate({ ...base, role_content_sep: '', role_empty_sep: '' });
    expect(t.render([user('q')], { addGenerationPrompt: true })).toBe('Uq A');
  });

  test('add_role_after_system_message false drops the first role after a system prompt', () => {
    const t = templateFromConvTemplate({ ...base, add_role_after_system_message: false });
    expect(t.preQuery({ system: 'S' })).toBe('[SYS]S[/SYS]');
    expect(t.preQuery()).toBe('U: ');
  });

  test('render_empty_system_message false leaves an empty system prompt out', () => {
    expect(templateFromConvTemplate(base).preQuery({ system: '' })).toBe('[SYS][/SYS]U: ');
    expect(templateFromConvTemplate({ ...base, render_empty_system_message: false }).preQuery({ system: '' })).toBe('U: ');
  });

  test('role templates wrap the content and drop the function placeholder; placeholders are filled literally', () => {
    const t = templateFromConvTemplate({
      ...base,
      role_templates: { user: '<q>{user_message}{function_string}</q>' },
    });
    expect(t.render([user('$& x')], { addGenerationPrompt: false })).toBe('U: <q>$& x</q> ');
    expect(t.preQuery()).toBe('U: <q>');
    expect(t.userHeader).toBe('U: <q>');
  });

  test('a system message after the first is refused, as WebLLM does', () => {
    expect(() => templateFromConvTemplate(base).render([user('a'), sys('b')], { addGenerationPrompt: false })).toThrow(
      /only as the first message/,
    );
  });
});

describe('parseConvTemplate', () => {
  test('reads the conv_template of a whole mlc-chat-config.json, or the object itself', () => {
    const config: unknown = JSON.parse(JSON.stringify({ model_type: 'llama', conv_template: LLAMA3_CONV }));
    expect(parseConvTemplate(config)).toEqual(LLAMA3_CONV);
    expect(parseConvTemplate(JSON.parse(JSON.stringify(CHATML_CONV)))).toEqual(CHATML_CONV);
  });

  test('null optional fields count as absent', () => {
    const parsed = parseConvTemplate({ ...CHATML_CONV, role_templates: null, role_empty_sep: null, system_prefix_token_ids: null });
    expect(parsed).not.toHaveProperty('role_empty_sep');
    expect(templateFromConvTemplate(parsed).generationPrompt).toBe('<|im_start|>assistant: ');
  });

  test.each([
    ['not an object', 'llama', /expected an object/],
    ['no roles', { ...CHATML_CONV, roles: undefined }, /roles/],
    ['empty seps', { ...CHATML_CONV, seps: [] }, /at least one separator/],
    ['bad stop ids', { ...CHATML_CONV, stop_token_ids: ['2'] }, /token ids/],
    ['bad flag', { ...CHATML_CONV, add_role_after_system_message: 'no' }, /true or false/],
    ['missing system_template', { ...CHATML_CONV, system_template: undefined }, /system_template/],
  ])('rejects %s', (_name, value, message) => {
    expect(() => parseConvTemplate(value)).toThrow(message);
  });
});

describe('custom pre-query templates', () => {
  const llama = getTemplate('llama-3');
  test('accepted when it ends with the user header; preQuery returns it and refuses a system prompt', () => {
    const text = '<|start_header_id|>system<|end_header_id|>\n\nAsk about birds.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n';
    const custom = customPreQueryTemplate(text, llama);
    expect(custom.preQuery()).toBe(text);
    expect(custom.id).toBe('llama-3+custom-pre-query');
    expect(custom.source).toBe('custom');
    expect(() => custom.preQuery({ system: 'x' })).toThrow(PreQueryTemplateError);
    // Responses still render with the base template.
    expect(custom.render([user('Hi')], { addGenerationPrompt: true })).toBe(llama.render([user('Hi')], { addGenerationPrompt: true }));
  });

  test.each([
    ['empty', '  ', /empty/],
    ['ending inside an assistant turn', '<|start_header_id|>assistant<|end_header_id|>\n\n', /assistant turn/],
    ['ending after an end-of-turn token', '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>', /end-of-turn token "<\|eot_id\|>"/],
    ['ending after the end-of-turn token and a newline', 'x<|eot_id|>\n', /end-of-turn/],
    ['ending without the user header', '<|start_header_id|>system<|end_header_id|>\n\nS', /user header/],
    ['starting with BOS', '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n', /begin-of-sequence/],
  ])('rejected when %s (with a base)', (_name, text, message) => {
    expect(() => customPreQueryTemplate(text, llama)).toThrow(message);
  });

  test('the message names the header to append', () => {
    expect(() => checkPreQueryTemplate('<|im_start|>user\nHi<|im_end|>\n', getTemplate('qwen3'))).toThrow(
      /Append the user header "<\|im_start\|>user\\n"/,
    );
  });

  test.each([
    ['ChatML user header', '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n', true],
    ['Phi user header', '<|user|>\n', true],
    ['after a Gemma end of turn', '<start_of_turn>user\nHi<end_of_turn>\n', false],
    ['inside a Phi assistant turn', '<|user|>\nHi<|end|>\n<|assistant|>\n', false],
    ['after Mistral [/INST]', '[INST] Hi [/INST]', false],
    ['after a Phi end of text', '<|user|>\nHi<|end|>\n<|endoftext|>', false],
  ])('without a base: %s → accepted %s', (_name, text, ok) => {
    if (ok) expect(() => checkPreQueryTemplate(text)).not.toThrow();
    else expect(() => checkPreQueryTemplate(text)).toThrow(PreQueryTemplateError);
  });

  test('a derived template is a valid base', () => {
    const derived = templateFromConvTemplate(CHATML_CONV);
    expect(customPreQueryTemplate('<|im_start|>user\n', derived).preQuery()).toBe('<|im_start|>user\n');
    expect(() => customPreQueryTemplate('<|im_start|>assistant\n', derived)).toThrow(/assistant turn/);
  });
});
