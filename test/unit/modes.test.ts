import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { exportLine, exportFormatsFor, jsonlLines, toMagpie, toOpenAi, toShareGpt } from '../../src/core/export';
import { drawIndex, drawWithSeed, seededRandom } from '../../src/core/modes/draw';
import { parseInstructionFile } from '../../src/core/modes/instructions-file';
import { checkManualPair, choosePair, parseJudgement } from '../../src/core/modes/judge';
import { modeProducer, withManualJudgement } from '../../src/core/modes/producer';
import {
  SYSTEM_PROMPT_PRESETS,
  cleanSystemPromptDraft,
  presetChoice,
  systemPromptDraftMessage,
  systemPromptDraftRequest,
} from '../../src/core/modes/system-prompts';
import {
  canonicalJson,
  parseRecipe,
  recipeHash,
  recipeWarnings,
  validateForTemplate,
  type ModeSettings,
  type Recipe,
} from '../../src/core/recipe';
import type { MagpieRecord } from '../../src/core/record';
import { runMagpie } from '../../src/core/runner';
import { deriveSeed } from '../../src/core/seed';
import { sha256Hex } from '../../src/core/sha256';
import { getTemplate } from '../../src/core/templates/registry';
import { QueueEngine } from '../support/echo-engine';
import { MemoryStore } from '../support/memory-store';
import { attemptContext, makeRecipe } from '../support/modes';
import { testRun } from '../support/runs';

const llama3 = getTemplate('llama-3');
const USER_HEADER = '<|start_header_id|>user<|end_header_id|>\n\n';

/** Chi-square statistic of observed counts against expected proportions. */
function chiSquare(observed: readonly number[], weights: readonly number[]): number {
  const n = observed.reduce((a, b) => a + b, 0);
  const total = weights.reduce((a, b) => a + b, 0);
  return observed.reduce((sum, o, i) => {
    const e = (n * (weights[i] ?? 0)) / total;
    return sum + (o - e) ** 2 / e;
  }, 0);
}

describe('weighted draws', () => {
  test('drawIndex maps u to the cumulative weights', () => {
    expect(drawIndex([1, 3], 0)).toBe(0);
    expect(drawIndex([1, 3], 0.2499)).toBe(0);
    expect(drawIndex([1, 3], 0.25)).toBe(1);
    expect(drawIndex([0, 2, 0], 0.999999)).toBe(1);
    expect(() => drawIndex([0, 0], 0.5)).toThrow();
    expect(() => drawIndex([1, -1], 0.5)).toThrow();
  });

  test('10k per-attempt draws (seed 2024) follow the weights: chi-square below the 0.999 quantile', () => {
    const weights = [5, 3, 1, 1];
    const counts = [0, 0, 0, 0];
    for (let attempt = 1; attempt <= 10_000; attempt++) {
      const i = drawWithSeed(weights, deriveSeed(2024, attempt, 'system_prompt'));
      counts[i] = (counts[i] ?? 0) + 1;
    }
    // 3 degrees of freedom: the 0.999 quantile is 16.27. A draw that ignored the weights scores in the thousands.
    expect(chiSquare(counts, weights)).toBeLessThan(16.27);
    expect(chiSquare(counts, [1, 1, 1, 1])).toBeGreaterThan(1000);
  });

  test('a seeded draw is the same every time; the PRNG is uniform on [0, 1)', () => {
    expect(drawWithSeed([1, 1, 1], 99)).toBe(drawWithSeed([1, 1, 1], 99));
    const random = seededRandom(1);
    const bins = new Array<number>(10).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const u = random();
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      const b = Math.floor(u * 10);
      bins[b] = (bins[b] ?? 0) + 1;
    }
    // 9 degrees of freedom: 0.999 quantile 27.88.
    expect(chiSquare(bins, new Array<number>(10).fill(1))).toBeLessThan(27.88);
  });

  test('mixed sampling configs: each record records the drawn setting, in proportion to the shares', async () => {
    const instructionMix = [
      { temperature: 1, topP: 1, share: 3 },
      { temperature: 1.25, topP: 0.99, share: 1 },
    ];
    const recipe = makeRecipe(llama3, { mode: { kind: 'instruction-only' }, instructionMix });
    const engine = new QueueEngine(() => ({ text: 'A query?' }));
    const produce = modeProducer({ run: { modelId: 'm', engine: 'webllm', engineAddsBos: false }, recipe, engine, template: llama3 });
    const counts = [0, 0];
    for (let attempt = 1; attempt <= 2000; attempt++) {
      const outcome = await produce(attemptContext(attempt, 11));
      if (outcome.kind !== 'record') throw new Error('expected a record');
      const draw = outcome.record.samplingDraw;
      if (!draw) throw new Error('no draw recorded');
      counts[draw.index] = (counts[draw.index] ?? 0) + 1;
      // The drawn setting is what was sent.
      const sent = engine.requests.at(-1);
      expect([sent?.temperature, sent?.topP]).toEqual([draw.temperature, draw.topP]);
      expect(outcome.record.instructionStep.temperature).toBe(draw.temperature);
    }
    expect(chiSquare(counts, [3, 1])).toBeLessThan(10.83); // 1 df, 0.999 quantile
  });
});

describe('recipe', () => {
  const modes: Partial<ModeSettings> = {
    system: { prompts: [presetChoice('math', 2), presetChoice('coding', 1)], includeInExport: false },
    mode: { kind: 'multi-turn', turns: 3, followUpSystem: 'Follow up.', endWithUser: false },
    instructionMix: [{ temperature: 1, topP: 1, share: 1 }],
  };

  test('sha256 matches node:crypto, including non-ASCII and multi-block input', () => {
    for (const text of ['', 'abc', 'é日本🦙', 'x'.repeat(55), 'y'.repeat(56), 'z'.repeat(1000)]) {
      expect(sha256Hex(text)).toBe(createHash('sha256').update(text, 'utf8').digest('hex'));
    }
  });

  test('the hash is stable across key order and changes when any setting changes', () => {
    const recipe = makeRecipe(llama3, modes);
    // Rebuild every object with its keys in reverse order.
    const reverseKeys = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reverseKeys)
        : typeof v === 'object' && v !== null
          ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reverseKeys(x)]))
          : v;
    const reordered = reverseKeys(recipe) as Recipe;
    expect(Object.keys(reordered)).toEqual(Object.keys(recipe).reverse());
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(recipe));
    expect(recipeHash(reordered)).toBe(recipeHash(recipe));
    expect(recipeHash(recipe)).toMatch(/^[0-9a-f]{64}$/);
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');

    const changed = (patch: (r: Recipe) => void): string => {
      const copy = structuredClone(recipe);
      patch(copy);
      return recipeHash(copy);
    };
    const base = recipeHash(recipe);
    expect(changed((r) => (r.seed = 8))).not.toBe(base);
    expect(changed((r) => (r.sampling.instruction.temperature = 0.9))).not.toBe(base);
    expect(changed((r) => (r.system!.prompts[0]!.weight = 3))).not.toBe(base);
    expect(changed((r) => (r.system!.includeInExport = true))).not.toBe(base);
    expect(changed((r) => (r.template.id = 'llama-3.1'))).not.toBe(base);
  });

  test('parseRecipe round-trips a recipe and the round trip keeps the hash', () => {
    const recipe = makeRecipe(llama3, modes);
    const parsed = parseRecipe(JSON.stringify(recipe));
    expect(parsed.ok).toBe(true);
    if (parsed.ok) {
      expect(parsed.recipe).toEqual(recipe);
      expect(recipeHash(parsed.recipe)).toBe(recipeHash(recipe));
    }
  });

  test('parseRecipe reports every bad field by path', () => {
    const recipe = JSON.parse(JSON.stringify(makeRecipe(llama3, modes))) as Record<string, unknown> & Recipe;
    const bad = structuredClone(recipe) as unknown as Record<string, Record<string, unknown>>;
    (bad.system!.prompts as Array<Record<string, unknown>>)[1]!.weight = 0;
    (bad.system!.prompts as Array<Record<string, unknown>>)[1]!.key = 'math';
    bad.mode!.turns = 99;
    (bad.sampling!.instruction as Record<string, unknown>).topP = 0;
    const result = parseRecipe(bad);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.errors.map((e) => e.path).sort()).toEqual(
        ['mode.turns', 'sampling.instruction.topP', 'system.prompts[1].key', 'system.prompts[1].weight'].sort(),
      );
    }
    expect(parseRecipe('{not json').ok).toBe(false);
    const wrongVersion = parseRecipe({ ...recipe, version: 3 });
    expect(!wrongVersion.ok && wrongVersion.errors[0]?.path).toBe('version');
  });

  test('imported instructions bound the count, and instruction-only cannot use them', () => {
    const source = { kind: 'imported' as const, fileName: 'a.txt', instructions: [{ line: 1, text: 'Q' }] };
    const tooMany = parseRecipe(makeRecipe(llama3, { source }, { count: 2 }));
    expect(!tooMany.ok && tooMany.errors.map((e) => e.path)).toEqual(['count']);
    const onlyInstr = parseRecipe(makeRecipe(llama3, { source, mode: { kind: 'instruction-only' } }, { count: 1 }));
    expect(!onlyInstr.ok && onlyInstr.errors.map((e) => e.path)).toEqual(['mode.kind']);
  });

  test('a template without a system role refuses system prompts at validation time', () => {
    const gemma = getTemplate('gemma-2');
    const recipe = makeRecipe(gemma, modes);
    const errors = validateForTemplate(recipe, gemma);
    expect(errors.map((e) => e.path)).toEqual(['system.prompts[0].prompt', 'system.prompts[1].prompt', 'mode.followUpSystem']);
    expect(errors[0]?.message).toMatch(/System role not supported/);
    expect(validateForTemplate(makeRecipe(llama3, modes), llama3)).toEqual([]);
    expect(validateForTemplate(makeRecipe(gemma, { mode: { kind: 'multi-turn', turns: 3, followUpSystem: null, endWithUser: false } }), gemma)).toEqual([]);
  });

  test('more than 4 turns warns', () => {
    expect(recipeWarnings({ mode: { kind: 'multi-turn', turns: 4, followUpSystem: null, endWithUser: false } })).toEqual([]);
    expect(recipeWarnings({ mode: { kind: 'multi-turn', turns: 5, followUpSystem: null, endWithUser: false } })).toHaveLength(1);
  });
});

describe('system prompt presets and the dataset-description helper', () => {
  test('seven presets with distinct keys and non-empty prompts', () => {
    expect(SYSTEM_PROMPT_PRESETS.map((p) => p.key)).toEqual([
      'general', 'math', 'coding', 'translation', 'creative-writing', 'reasoning', 'data-analysis',
    ]);
    for (const p of SYSTEM_PROMPT_PRESETS) expect(p.prompt.length).toBeGreaterThan(40);
  });

  test('the draft request is the description as a user turn in the family template, with BOS', () => {
    const request = systemPromptDraftRequest(llama3, '  Customer support for a bike shop ', false);
    expect(request.prompt).toBe(
      `<|begin_of_text|>${USER_HEADER}${systemPromptDraftMessage('Customer support for a bike shop')}<|eot_id|>` +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    expect(request.temperature).toBe(0);
    expect(request.stop).toContain('<|eot_id|>');
    expect(systemPromptDraftRequest(llama3, 'x', true).prompt.startsWith('<|begin_of_text|>')).toBe(false);
    expect(() => systemPromptDraftRequest(llama3, '  ', false)).toThrow();
    expect(cleanSystemPromptDraft(' System prompt: "You are a bike mechanic." ')).toBe('You are a bike mechanic.');
  });
});

describe('instruction files', () => {
  test('JSONL: every supported field; malformed lines reported by line number, valid lines kept', () => {
    const text = [
      '{"instruction": "First?"}',
      '{"prompt": "Second?"}',
      '',
      '{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Third?"}]}',
      '{"conversations": [{"from": "human", "value": "Fourth?"}, {"from": "gpt", "value": "x"}]}',
      '{"instruction": ',
      '[1, 2]',
      '{"text": "no field"}',
      '{"instruction": "   "}',
      '{"instruction": 5}',
      '\uFEFF',
    ].join('\r\n');
    const parsed = parseInstructionFile('mine.jsonl', '\uFEFF' + text);
    expect(parsed.format).toBe('jsonl');
    expect(parsed.instructions).toEqual([
      { line: 1, text: 'First?' },
      { line: 2, text: 'Second?' },
      { line: 4, text: 'Third?' },
      { line: 5, text: 'Fourth?' },
    ]);
    expect(parsed.errors.map((e) => e.line)).toEqual([6, 7, 8, 9, 10]);
    expect(parsed.errors[0]?.message).toMatch(/not valid JSON/);
  });

  test('TXT: one instruction per non-blank line, with line numbers', () => {
    const parsed = parseInstructionFile('list.txt', 'One?\n\n  Two?  \nThree {json-looking}?\n');
    expect(parsed.instructions).toEqual([
      { line: 1, text: 'One?' },
      { line: 3, text: 'Two?' },
      { line: 4, text: 'Three {json-looking}?' },
    ]);
    expect(parsed.errors).toEqual([]);
    expect(parseInstructionFile('noext', '{"prompt":"x"}').format).toBe('jsonl');
  });
});

describe('preference judging', () => {
  test('strict JSON: exactly k integer scores in range; a fence is the only wrapping allowed', () => {
    expect(parseJudgement('{"scores":[3,9],"reason":"b"}', 2)).toEqual({ ok: true, scores: [3, 9], reason: 'b' });
    expect(parseJudgement('```json\n{"scores":[3,9]}\n```', 2)).toMatchObject({ ok: true, scores: [3, 9] });
    expect(parseJudgement('Sure! {"scores":[3,9]}', 2).ok).toBe(false);
    expect(parseJudgement('{"scores":[3]}', 2).ok).toBe(false);
    expect(parseJudgement('{"scores":[3, 9.5]}', 2).ok).toBe(false);
    expect(parseJudgement('{"scores":[0, 9]}', 2).ok).toBe(false);
    expect(parseJudgement('[3, 9]', 2).ok).toBe(false);
  });

  test('choosePair never pairs identical texts or equal scores', () => {
    expect(choosePair(['a', 'b', 'c'], [5, 9, 2])).toEqual({ chosen: 1, rejected: 2 });
    // The lowest is a copy of the chosen text: take the next lowest distinct one.
    expect(choosePair(['best', 'mid', 'best '], [9, 5, 1])).toEqual({ chosen: 0, rejected: 1 });
    expect(choosePair(['a', 'b'], [7, 7])).toBeUndefined();
    expect(choosePair(['same', 'same', ' same'], [9, 5, 1])).toBeUndefined();
    expect(checkManualPair(['a', 'a', 'b'], 0, 1)).toMatch(/same text/);
    expect(checkManualPair(['a', 'b'], 1, 1)).toMatch(/different/);
    expect(checkManualPair(['a', 'b'], 0, 1)).toBeNull();
  });

  const prefRecipe = (judge: 'model' | 'manual', candidates = 3) =>
    makeRecipe(llama3, { mode: { kind: 'preference', candidates, temperature: 0.8, topP: 1, judge } });
  const run = { modelId: 'm', engine: 'webllm', engineAddsBos: false };

  test('k candidates use k different seeds at the preference temperature; the judge retries once', async () => {
    let judgeCalls = 0;
    const engine = new QueueEngine((req) => {
      if (req.prompt.endsWith(USER_HEADER)) return { text: 'What is rust?' };
      if (req.prompt.includes('[Candidate 1]')) {
        judgeCalls += 1;
        return { text: judgeCalls === 1 ? 'I think candidate 2 is best.' : '{"scores":[4,8,2],"reason":"2 is clearest"}' };
      }
      return { text: `Answer with seed ${req.seed}` };
    });
    const produce = modeProducer({ run, recipe: prefRecipe('model'), engine, template: llama3 });
    const outcome = await produce(attemptContext(1));
    if (outcome.kind !== 'record') throw new Error(`expected a record, got ${outcome.kind}`);
    const candidateRequests = engine.requests.filter((r) => r.temperature === 0.8);
    expect(candidateRequests).toHaveLength(3);
    expect(new Set(candidateRequests.map((r) => r.seed)).size).toBe(3);
    expect(judgeCalls).toBe(2);
    // The retry shows the model its failed answer and asks again.
    expect(engine.requests.at(-1)?.prompt).toContain('I think candidate 2 is best.<|eot_id|>');
    const r = outcome.record;
    expect(r.judgement).toMatchObject({ by: 'model', chosen: 1, rejected: 2, scores: [4, 8, 2] });
    expect(r.judgement?.steps).toHaveLength(2);
    expect(r.response).toBe(r.candidates?.[1]?.text);
  });

  test('two unparseable judge answers reject the attempt; identical candidates reject it too', async () => {
    const badJudge = new QueueEngine((req) =>
      req.prompt.endsWith(USER_HEADER) ? { text: 'Q?' } : req.prompt.includes('[Candidate 1]') ? { text: 'no json' } : { text: `A ${req.seed}` },
    );
    const a = await modeProducer({ run, recipe: prefRecipe('model'), engine: badJudge, template: llama3 })(attemptContext(1));
    expect(a).toMatchObject({ kind: 'rejected', reason: 'judge' });

    const same = new QueueEngine((req) => (req.prompt.endsWith(USER_HEADER) ? { text: 'Q?' } : { text: 'Always this.' }));
    const b = await modeProducer({ run, recipe: prefRecipe('manual'), engine: same, template: llama3 })(attemptContext(1));
    expect(b).toMatchObject({ kind: 'rejected', reason: 'no-distinct-pair' });
    // No judge call is made when the candidates cannot form a pair.
    expect(same.requests.some((r) => r.prompt.includes('[Candidate 1]'))).toBe(false);
  });

  test('manual judging: an unjudged record is skipped by every export; a marked one exports as DPO', async () => {
    const engine = new QueueEngine((req) => (req.prompt.endsWith(USER_HEADER) ? { text: 'Q?' } : { text: `A ${req.seed}` }));
    const outcome = await modeProducer({ run, recipe: prefRecipe('manual', 2), engine, template: llama3 })(attemptContext(1));
    if (outcome.kind !== 'record') throw new Error('expected a record');
    const record: MagpieRecord = { ...outcome.record, uuid: 'u', runId: 'r', seq: 1, createdAt: 0 };
    const runInfo = { label: 'pref' };
    expect(exportLine(record, 'trl-dpo', runInfo)).toBeUndefined();
    expect(exportLine(record, 'sharegpt', runInfo)).toBeUndefined();
    expect(exportLine(record, 'magpie', runInfo)).toBeDefined();
    expect(() => withManualJudgement(record, 0, 0)).toThrow();
    const marked = withManualJudgement(record, 1, 0);
    const [c0, c1] = record.candidates ?? [];
    expect(exportLine(marked, 'trl-dpo', runInfo)).toEqual({
      prompt: [{ role: 'user', content: 'Q?' }],
      chosen: [{ role: 'assistant', content: c1?.text }],
      rejected: [{ role: 'assistant', content: c0?.text }],
    });
    expect(exportLine(marked, 'openai-dpo', runInfo)).toEqual({
      input: { messages: [{ role: 'user', content: 'Q?' }] },
      preferred_output: [{ role: 'assistant', content: c1?.text }],
      non_preferred_output: [{ role: 'assistant', content: c0?.text }],
    });
    // A stored record whose two sides became equal is never written.
    const broken: MagpieRecord = { ...marked, candidates: [{ ...c0!, text: 'x' }, { ...c1!, text: ' x' }] };
    expect(exportLine(broken, 'openai-dpo', runInfo)).toBeUndefined();
    expect(exportFormatsFor({ recipe: prefRecipe('manual') }).map((f) => f.id)).toContain('trl-dpo');
    expect(exportFormatsFor({ recipe: makeRecipe(llama3) }).map((f) => f.id)).not.toContain('trl-dpo');
  });
});

describe('modes through the runner', () => {
  test('multi-turn run: records carry every turn, mode, recipe hash and the drawn system key; exports carry the conversation', async () => {
    const recipe = makeRecipe(
      llama3,
      {
        mode: { kind: 'multi-turn', turns: 3, followUpSystem: null, endWithUser: true },
        system: { prompts: [presetChoice('math', 1), presetChoice('coding', 1)], includeInExport: false },
      },
      { count: 4, seed: 5 },
    );
    const run = testRun({ recipe, settings: { ...testRun().settings, count: 4, seed: 5 } });
    const store = new MemoryStore([run]);
    let n = 0;
    const engine = new QueueEngine((req) => {
      n += 1;
      return req.prompt.endsWith(USER_HEADER) ? { text: `Question ${n}?` } : { text: `Answer ${n}.` };
    });
    const outcome = await runMagpie({ run, engine, template: llama3, store, produce: modeProducer({ run, recipe, engine, template: llama3 }) });
    expect(outcome.status).toBe('done');
    expect(store.records).toHaveLength(4);
    for (const r of store.records) {
      expect(r.mode).toBe('multi-turn');
      expect(r.recipeHash).toBe(recipeHash(recipe));
      expect(['math', 'coding']).toContain(r.system?.key);
      expect(r.turns).toHaveLength(2);
      expect(r.turns?.[0]?.response).toMatch(/^Answer/);
      expect(r.turns?.[1]?.response).toBeUndefined();
      expect(r.turns?.[1]?.instructionStep.finishReason).toBe('stop');
    }
    const r = store.records[0]!;
    const share = toShareGpt(r, run);
    expect(share.conversations.map((c) => c.from)).toEqual(['human', 'gpt', 'human', 'gpt', 'human']);
    expect(toShareGpt(r, run, { includeSystemPrompt: true }).conversations[0]).toEqual({ from: 'system', value: r.system?.prompt });
    expect(toOpenAi(r, { includeSystemPrompt: false }).messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user']);
    expect(toOpenAi(r).messages[0]).toEqual({ role: 'system', content: r.system?.prompt });
    const full = toMagpie(r) as unknown as Record<string, unknown> & ReturnType<typeof toMagpie>;
    expect(full.instruction_2).toBe(r.turns?.[0]?.instruction);
    expect(full.response_2).toBe(r.turns?.[0]?.response);
    expect(full.instruction_3).toBe(r.turns?.[1]?.instruction);
    expect('response_3' in full).toBe(false);
    expect(full.magpie_web.recipe_hash).toBe(recipeHash(recipe));
    expect(full.magpie_web.system_prompt_key).toBe(r.system?.key);
    // The recipe's include-in-export choice is the default of a run's export.
    const lines: string[] = [];
    for await (const l of jsonlLines(store.records, 'openai', run)) lines.push(l);
    expect(lines.every((l) => !l.includes('"role":"system"'))).toBe(true);
  });

  test('imported instructions: attempt k answers instruction k, in order, with its line number', async () => {
    const file = parseInstructionFile('mine.txt', 'Alpha?\nBeta?\n\nGamma?\n');
    const source = { kind: 'imported' as const, fileName: 'mine.txt', instructions: file.instructions };
    const recipe = makeRecipe(llama3, { source }, { count: 3 });
    const run = testRun({ recipe, settings: { ...testRun().settings, count: 3 } });
    const store = new MemoryStore([run]);
    const engine = new QueueEngine((req) => ({ text: `Reply to ${/\n\n([^<]*)<\|eot_id\|>/.exec(req.prompt)?.[1] ?? '?'}` }));
    const outcome = await runMagpie({ run, engine, template: llama3, store, concurrency: 3, produce: modeProducer({ run, recipe, engine, template: llama3 }) });
    expect(outcome.status).toBe('done');
    expect(store.records.map((r) => [r.seq, r.instruction, r.imported?.line, r.response])).toEqual([
      [1, 'Alpha?', 1, 'Reply to Alpha?'],
      [2, 'Beta?', 2, 'Reply to Beta?'],
      [3, 'Gamma?', 4, 'Reply to Gamma?'],
    ]);
    // No query step ran: every request was a response prompt.
    expect(engine.requests.every((r) => r.prompt.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n'))).toBe(true);
  });

  test('a rejected follow-up query rejects the attempt and is counted apart from unusable instructions', async () => {
    const recipe = makeRecipe(llama3, { mode: { kind: 'preference', candidates: 2, temperature: 0.8, topP: 1, judge: 'model' } }, { count: 1 });
    const run = testRun({ recipe, settings: { ...testRun().settings, count: 1 } });
    const store = new MemoryStore([run]);
    let attempt = 0;
    const engine = new QueueEngine((req) => {
      if (req.prompt.endsWith(USER_HEADER)) {
        attempt += 1;
        return { text: `Q${attempt}?` };
      }
      // Attempt 1's judge never answers JSON; attempt 2's does.
      if (req.prompt.includes('[Candidate 1]')) return { text: attempt === 1 ? 'nope' : '{"scores":[2,9]}' };
      return { text: `A ${req.seed}` };
    });
    const outcome = await runMagpie({ run, engine, template: llama3, store, produce: modeProducer({ run, recipe, engine, template: llama3 }) });
    expect(outcome.status).toBe('done');
    expect(outcome.counters).toMatchObject({ accepted: 1, attempts: 2, rejectedOther: 1, rejectedEmpty: 0, rejectedLength: 0 });
    expect(store.rejections[0]?.reason).toBe('judge');
    expect(store.records[0]?.judgement).toMatchObject({ chosen: 1, rejected: 0 });
  });
});

describe('mode form and quirks', () => {
  test('parseModeForm: errors at the field, Gemma-2 system prompts refused by rendering, imported count bound', async () => {
    const { defaultModeForm, parseModeForm } = await import('../../src/core/modes/form');
    const form = { ...defaultModeForm(), mode: 'multi-turn' as const, turns: '0', steer: true };
    const bad = parseModeForm(form);
    expect(!bad.ok && bad.errors.turns).toMatch(/between 1 and 10/);
    const gemma = parseModeForm({ ...form, turns: '3' }, { template: getTemplate('gemma-2') });
    expect(!gemma.ok && Object.keys(gemma.errors).sort()).toEqual(['followUpSystem', 'prompt-0']);
    const warned = parseModeForm({ ...form, turns: '5', steer: false }, { template: llama3 });
    expect(warned.ok && warned.warnings).toHaveLength(1);
    const imported = { fileName: 'a.txt', instructions: [{ line: 1, text: 'Q?' }], errors: [] };
    const tooMany = parseModeForm({ ...defaultModeForm(), source: 'imported', imported }, { count: 2 });
    expect(!tooMany.ok && tooMany.errors.imported).toMatch(/1 valid instructions/);
    const pref = parseModeForm({ ...defaultModeForm(), mode: 'preference', preferenceTemperature: '0' });
    expect(!pref.ok && pref.errors.preferenceTemperature).toMatch(/greater than 0/);
  });

  test("the recipe's quirks apply to follow-up queries too: newline stop, sanitizer (recorded per turn)", async () => {
    const recipe = makeRecipe(llama3, { mode: { kind: 'multi-turn', turns: 2, followUpSystem: null, endWithUser: true } });
    recipe.quirks = { firstTokenBan: null, earlyStopNewline: true, assistantStopWord: false, sanitize: true };
    const engine = new QueueEngine((req) =>
      req.prompt.endsWith(USER_HEADER) ? { text: '1. What is a prime number? Answer: a number with two divisors' } : { text: 'A reply.' },
    );
    const outcome = await modeProducer({ run: { modelId: 'm', engine: 'webllm', engineAddsBos: false }, recipe, engine, template: llama3 })(attemptContext(1));
    if (outcome.kind !== 'record') throw new Error('expected a record');
    const queries = engine.requests.filter((r) => r.prompt.endsWith(USER_HEADER));
    expect(queries).toHaveLength(2);
    for (const q of queries) expect(q.stop).toContain('\n');
    expect(outcome.record.instruction).toBe('What is a prime number?');
    expect(outcome.record.sanitized?.raw).toMatch(/^1\. What is/);
    expect(outcome.record.turns?.[0]?.instruction).toBe('What is a prime number?');
    expect(outcome.record.turns?.[0]?.sanitized?.ruleName).toBeDefined();
  });
});
