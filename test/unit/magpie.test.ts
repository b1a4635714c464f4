import { describe, expect, test } from 'vitest';
import { generateInstruction, generateResponse, instructionPrompt, responsePrompt } from '../../src/core/magpie';
import { DEFAULT_INSTRUCTION, DEFAULT_RESPONSE } from '../../src/core/settings';
import { getTemplate } from '../../src/core/templates/registry';
import { QueueEngine } from '../support/echo-engine';

const llama3 = getTemplate('llama-3');
const HEADER = '<|start_header_id|>user<|end_header_id|>\n\n';

describe('instruction step', () => {
  test('sends the raw pre-query template with BOS when the engine adds none', async () => {
    const engine = new QueueEngine(() => ({ text: 'How do tides work?' }));
    const out = await generateInstruction(engine, llama3, DEFAULT_INSTRUCTION, { engineAddsBos: false, seed: 7 });
    expect(out.kind).toBe('accepted');
    const req = engine.requests[0]!;
    expect(req.prompt).toBe('<|begin_of_text|>' + HEADER);
    expect(req.temperature).toBe(1);
    expect(req.topP).toBe(1);
    expect(req.maxTokens).toBe(1024);
    expect(req.seed).toBe(7);
    // Role/header tokens are stop strings, so no header can leak into an instruction.
    expect(req.stop).toEqual(expect.arrayContaining(['<|eot_id|>', '<|start_header_id|>', '<|end_header_id|>']));
  });

  test('leaves BOS out when the engine prepends it itself', async () => {
    const engine = new QueueEngine(() => ({ text: 'Q' }));
    await generateInstruction(engine, llama3, DEFAULT_INSTRUCTION, { engineAddsBos: true, seed: null });
    expect(engine.requests[0]!.prompt).toBe(HEADER);
    expect(engine.requests[0]!).not.toHaveProperty('seed');
  });

  test('trims the instruction and keeps the finish reason on the step', async () => {
    const engine = new QueueEngine(() => ({ text: '  Write a haiku about rain.\n' }));
    const out = await generateInstruction(engine, llama3, DEFAULT_INSTRUCTION, { engineAddsBos: false, seed: 1 });
    expect(out).toMatchObject({ kind: 'accepted', instruction: 'Write a haiku about rain.' });
    expect(out.step.finishReason).toBe('stop');
  });

  test.each([
    ['empty', { text: '   \n ' }],
    ['length', { text: 'An instruction that goes on and', finishReason: 'length' as const }],
  ])('rejects an instruction that is %s', async (reason, scripted) => {
    const engine = new QueueEngine(() => scripted);
    const out = await generateInstruction(engine, llama3, DEFAULT_INSTRUCTION, { engineAddsBos: false, seed: 1 });
    expect(out).toMatchObject({ kind: 'rejected', reason });
  });

  test('reports an abort without an instruction', async () => {
    const engine = new QueueEngine(() => ({ text: 'half', finishReason: 'abort' }));
    const out = await generateInstruction(engine, llama3, DEFAULT_INSTRUCTION, { engineAddsBos: false, seed: 1 });
    expect(out.kind).toBe('aborted');
  });
});

describe('response step', () => {
  test('renders the instruction as a user turn plus the assistant header, no system prompt', async () => {
    const engine = new QueueEngine(() => ({ text: 'Tides come from the moon.' }));
    const out = await generateResponse(engine, llama3, 'How do tides work?', DEFAULT_RESPONSE, {
      engineAddsBos: false,
      seed: 3,
    });
    expect(out).toMatchObject({ kind: 'done', response: 'Tides come from the moon.' });
    const req = engine.requests[0]!;
    expect(req.prompt).toBe(
      '<|begin_of_text|>' + HEADER + 'How do tides work?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    expect(req.prompt).not.toContain('system');
    expect(req.temperature).toBe(0);
    expect(req.maxTokens).toBe(2048);
    expect(req.stop).toContain('<|eot_id|>');
    expect(req.stop).not.toContain('<|start_header_id|>');
  });

  test('prompt builders put BOS exactly once in either engine mode', () => {
    for (const addsBos of [false, true]) {
      for (const p of [instructionPrompt(llama3, addsBos), responsePrompt(llama3, 'hi', addsBos)]) {
        const bosCount = p.split('<|begin_of_text|>').length - 1;
        expect(bosCount + (addsBos ? 1 : 0)).toBe(1);
      }
    }
  });
});

describe('family quirks in the instruction step', () => {
  const llama31 = getTemplate('llama-3.1');

  test('llama-3 defaults: newline early stop and the assistant stop word join the special-token stops', async () => {
    const t = getTemplate('llama-3');
    const engine = new QueueEngine(() => ({ text: 'Q' }));
    await generateInstruction(engine, t, DEFAULT_INSTRUCTION, { engineAddsBos: false, seed: 1, quirks: t.quirks });
    expect(engine.requests).toHaveLength(1);
    expect(engine.requests[0]!.stop).toEqual(expect.arrayContaining(['\n', 'assistant', '<|eot_id|>']));
  });

  test('llama-3.1 defaults: the first token alone is generated with header tokens banned, then the rest freely', async () => {
    const engine = new QueueEngine((req, n) =>
      n === 1 ? { text: 'What', finishReason: 'length' } : { text: ' is C# used for?' },
    );
    const out = await generateInstruction(engine, llama31, DEFAULT_INSTRUCTION, {
      engineAddsBos: false,
      seed: 5,
      quirks: llama31.quirks,
    });
    const [first, rest] = engine.requests;
    expect(first).toMatchObject({ maxTokens: 1, logitBias: { '2': -100, '567': -100, '14711': -100, '827': -100 } });
    expect(rest!.logitBias).toBeUndefined();
    expect(rest!.prompt).toBe(first!.prompt + 'What');
    expect(rest!.maxTokens).toBe(DEFAULT_INSTRUCTION.maxTokens - 1);
    expect(first!.stop).not.toContain('\n');
    expect(out).toMatchObject({ kind: 'accepted', instruction: 'What is C# used for?' });
  });

  test('the sanitizer cleans a rambling query and the record keeps the raw text and the rule', async () => {
    const quirks = { ...llama31.quirks, firstTokenBan: null };
    const engine = new QueueEngine(() => ({ text: '**Question:** What is the capital of France? Answer: Paris' }));
    const out = await generateInstruction(engine, llama31, DEFAULT_INSTRUCTION, { engineAddsBos: false, seed: 5, quirks });
    expect(out.kind).toBe('accepted');
    if (out.kind === 'accepted') {
      expect(out.instruction).toBe('What is the capital of France?');
      expect(out.sanitized?.raw).toContain('Answer: Paris');
      expect(out.sanitized?.ruleName).toBeTruthy();
    }
  });
});
