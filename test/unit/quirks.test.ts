import { describe, expect, test } from 'vitest';
import type { CompleteOptions, CompletionRequest, CompletionResult, TextEngine } from '../../src/core/engine';
import {
  completeWithFirstTokenBan,
  GENERIC_QUIRKS,
  instructionStopFor,
  LLAMA3_HEADER_BAN,
  QUIRK_INFO,
  twoPhaseFirstToken,
  type Quirks,
} from '../../src/core/quirks';
import { getTemplate, listTemplates } from '../../src/core/templates/registry';

const request = (over: Partial<CompletionRequest> = {}): CompletionRequest => ({
  prompt: 'P:',
  temperature: 1,
  topP: 1,
  maxTokens: 8,
  stop: ['<|eot_id|>'],
  ...over,
});

const result = (text: string, finishReason: CompletionResult['finishReason'], tokens: number, prompt = 5): CompletionResult => ({
  text,
  finishReason,
  usage: { promptTokens: prompt, completionTokens: tokens },
});

describe('instructionStopFor', () => {
  const template = { instructionStop: ['<|eot_id|>', '<|start_header_id|>'] };
  test.each([
    [false, false, ['<|eot_id|>', '<|start_header_id|>']],
    [true, false, ['<|eot_id|>', '<|start_header_id|>', '\n']],
    [false, true, ['<|eot_id|>', '<|start_header_id|>', 'assistant']],
    [true, true, ['<|eot_id|>', '<|start_header_id|>', '\n', 'assistant']],
  ])('newline %s, assistant %s', (earlyStopNewline, assistantStopWord, expected) => {
    expect(instructionStopFor(template, { earlyStopNewline, assistantStopWord })).toEqual(expected);
  });

  test('does not duplicate a stop the template already has, nor change the template', () => {
    const withNewline = { instructionStop: ['\n', 'x'] };
    expect(instructionStopFor(withNewline, { earlyStopNewline: true, assistantStopWord: false })).toEqual(['\n', 'x']);
    expect(withNewline.instructionStop).toEqual(['\n', 'x']);
  });

  test('family defaults: Llama-3.1 and Gemma-2 stop on "assistant" but not on newlines; Qwen2.5 on both', () => {
    const stops = (id: string): string[] => {
      const t = getTemplate(id);
      return instructionStopFor(t, t.quirks);
    };
    expect(stops('llama-3.1')).toContain('assistant');
    expect(stops('llama-3.1')).not.toContain('\n');
    expect(stops('gemma-2')).not.toContain('\n');
    expect(stops('qwen2.5')).toEqual(expect.arrayContaining(['<|im_end|>', '<|im_start|>', '\n', 'assistant']));
    expect(stops('llama-3')).toContain('\n');
  });
});

describe('family quirk and sampling defaults (the reference\'s)', () => {
  const ids = listTemplates().map((t) => t.id);
  const expectedQuirks = (id: string): Quirks => {
    if (/^llama-3\.[12]/.test(id)) {
      return { firstTokenBan: LLAMA3_HEADER_BAN, earlyStopNewline: false, assistantStopWord: true, sanitize: true };
    }
    if (id.startsWith('gemma-2')) return { ...GENERIC_QUIRKS, earlyStopNewline: false, sanitize: true };
    return GENERIC_QUIRKS;
  };
  test.each(ids)('%s', (id) => {
    const template = getTemplate(id);
    expect(template.quirks).toEqual(expectedQuirks(id));
    const { instruction, response } = template.defaultSampling;
    expect(instruction.temperature).toBe(id === 'qwen2.5' ? 0.7 : 1.0);
    expect(instruction.topP).toBe(1);
    if (/^llama-3\.[12]/.test(id)) {
      expect(response).toMatchObject({ temperature: 0.6, topP: 0.9 });
    } else {
      expect(response).toMatchObject({ temperature: 0, topP: 1 });
    }
    expect(instruction.maxTokens).toBeGreaterThan(0);
    expect(response.maxTokens).toBeGreaterThan(0);
  });

  test('every quirk has a label and a description for the options panel', () => {
    for (const key of Object.keys(GENERIC_QUIRKS) as (keyof Quirks)[]) {
      expect(QUIRK_INFO[key].label).not.toBe('');
      expect(QUIRK_INFO[key].description).not.toBe('');
    }
  });
});

describe('twoPhaseFirstToken', () => {
  test('the first phase is one token with every banned id at -100, keeping the caller\'s bias', () => {
    const plan = twoPhaseFirstToken(request({ logitBias: { '7': 5 } }), LLAMA3_HEADER_BAN);
    expect(plan.first.maxTokens).toBe(1);
    expect(plan.first.logitBias).toEqual({ '7': 5, '2': -100, '567': -100, '14711': -100, '827': -100 });
    expect(plan.first.prompt).toBe('P:');
    expect(plan.first.stop).toEqual(['<|eot_id|>']);
  });

  test('the rest continues from prompt + first token, with maxTokens - 1 and no ban', () => {
    const plan = twoPhaseFirstToken(request({ seed: 3 }), LLAMA3_HEADER_BAN);
    const next = plan.next(result('How', 'length', 1));
    expect(next.kind).toBe('continue');
    if (next.kind !== 'continue') return;
    expect(next.request).toEqual({ ...request({ seed: 3 }), prompt: 'P:How', maxTokens: 7 });
    expect(next.request).not.toHaveProperty('logitBias');
    const joined = next.finish(result(' do I use C#?', 'stop', 6, 6));
    expect(joined.text).toBe('How do I use C#?');
    expect(joined.finishReason).toBe('stop');
    expect(joined.usage).toEqual({ promptTokens: 5, completionTokens: 7 });
  });

  test('the rest keeps the caller\'s own bias, without the ban', () => {
    const next = twoPhaseFirstToken(request({ logitBias: { '7': 5 } }), LLAMA3_HEADER_BAN).next(result('A', 'length', 1));
    expect(next.kind === 'continue' && next.request.logitBias).toEqual({ '7': 5 });
  });

  test('a first phase that stopped, aborted, or used the whole budget is the whole completion', () => {
    const plan = twoPhaseFirstToken(request(), LLAMA3_HEADER_BAN);
    expect(plan.next(result('', 'stop', 1))).toEqual({ kind: 'done', result: result('', 'stop', 1) });
    expect(plan.next(result('', 'abort', 0)).kind).toBe('done');
    expect(twoPhaseFirstToken(request({ maxTokens: 1 }), LLAMA3_HEADER_BAN).next(result('A', 'length', 1)).kind).toBe('done');
  });

  test('an incomplete first character cannot be fed back', () => {
    expect(twoPhaseFirstToken(request(), LLAMA3_HEADER_BAN).next(result('\uFFFD', 'length', 1)).kind).toBe('incomplete');
  });

  test('a stop string spanning the two phases still stops the joined text', () => {
    const next = twoPhaseFirstToken(request({ stop: ['assistant'] }), LLAMA3_HEADER_BAN).next(result('Hi ass', 'length', 1));
    if (next.kind !== 'continue') throw new Error('expected a second phase');
    const joined = next.finish(result('istant, tell me a joke', 'length', 7));
    expect(joined).toMatchObject({ text: 'Hi ', finishReason: 'stop' });
  });
});

/**
 * A scripted model: at the first position it prefers "##" (id 567) over "How" (id 10); afterwards it follows a fixed
 * script. It honours logit_bias -100, maxTokens and stop strings, and counts its calls.
 */
class ScriptedModel implements TextEngine {
  calls: CompletionRequest[] = [];
  private readonly firstChoices: [number, string][] = [[567, '##'], [10, 'How']];
  private readonly script = [' do', ' I', ' use', ' C', '#', '?'];
  constructor(private readonly base: string, private readonly incompleteForSeed?: number) {}

  complete(req: CompletionRequest, options: CompleteOptions = {}): Promise<CompletionResult> {
    this.calls.push(req);
    const written = req.prompt.slice(this.base.length);
    const tokens: string[] = [];
    if (written === '') {
      if (req.seed !== undefined && req.seed === this.incompleteForSeed) {
        tokens.push('\uFFFD', ...this.script);
      } else {
        const choice = this.firstChoices.find(([id]) => (req.logitBias?.[String(id)] ?? 0) > -100);
        tokens.push(choice?.[1] ?? '');
        tokens.push(...(choice?.[1] === '##' ? [' Title', '\n', 'How', ...this.script] : this.script));
      }
    } else {
      const at = ['How', ...this.script].findIndex((_, i, all) => all.slice(0, i + 1).join('') === written);
      tokens.push(...this.script.slice(at));
    }
    let text = '';
    let n = 0;
    for (const token of tokens.slice(0, req.maxTokens)) {
      text += token;
      n++;
      options.onDelta?.(token);
    }
    const finishReason = n === tokens.length ? 'stop' : 'length';
    return Promise.resolve(result(text, finishReason, n, 4 + Math.ceil(written.length / 3)));
  }
}

describe('completeWithFirstTokenBan on a TextEngine', () => {
  test('without the ban the scripted model opens with a markdown header', async () => {
    const engine = new ScriptedModel('P:');
    const plain = await engine.complete(request({ maxTokens: 20, stop: [] }));
    expect(plain.text.startsWith('##')).toBe(true);
  });

  test('with the ban the first token is not a header, and "C#" later in the query survives', async () => {
    const engine = new ScriptedModel('P:');
    const deltas: string[] = [];
    const { result: out, report } = await completeWithFirstTokenBan(engine, request({ maxTokens: 20, stop: [] }), LLAMA3_HEADER_BAN, {
      onDelta: (d) => deltas.push(d),
    });
    expect(out.text).toBe('How do I use C#?');
    expect(deltas.join('')).toBe(out.text);
    expect(report).toEqual({ calls: 2, redraws: 0 });
    expect(engine.calls).toHaveLength(2);
    expect(engine.calls[1]?.logitBias).toBeUndefined();
    expect(out.usage.completionTokens).toBe(7);
    expect(out.usage.promptTokens).toBe(4);
  });

  test('an incomplete first character is redrawn with the next seed, and not streamed', async () => {
    const engine = new ScriptedModel('P:', 41);
    const deltas: string[] = [];
    const { result: out, report } = await completeWithFirstTokenBan(
      engine,
      request({ maxTokens: 20, stop: [], seed: 41 }),
      LLAMA3_HEADER_BAN,
      { onDelta: (d) => deltas.push(d) },
    );
    expect(out.text).toBe('How do I use C#?');
    expect(report).toEqual({ calls: 3, redraws: 1 });
    expect(engine.calls.map((c) => c.seed)).toEqual([41, 42, 42]);
    expect(deltas.join('')).not.toContain('\uFFFD');
  });

  test('gives up with a clear error when every draw is incomplete', async () => {
    const engine: TextEngine = { complete: () => Promise.resolve(result('\uFFFD', 'length', 1)) };
    await expect(completeWithFirstTokenBan(engine, request(), LLAMA3_HEADER_BAN)).rejects.toThrow(/incomplete character/);
  });
});
