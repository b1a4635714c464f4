/**
 * Every generation mode's prompts, byte for byte against the official chat templates (Jinja fixtures rendered with
 * @huggingface/jinja): steered first queries, Magpie-MT follow-up queries (history + follow-up system prompt, cut at
 * the next user header), responses (history with the conversation's own system prompt), preference candidates and
 * the judge request, imported instructions and conversations that end with the user.
 */
import { readFileSync } from 'node:fs';
import { Template } from '@huggingface/jinja';
import { describe, expect, test } from 'vitest';
import type { CompletionRequest } from '../../src/core/engine';
import { judgeConversation } from '../../src/core/modes/judge';
import { modeProducer } from '../../src/core/modes/producer';
import type { ModeOptions, ModeSettings } from '../../src/core/recipe';
import type { MagpieRecord } from '../../src/core/record';
import { PRE_QUERY_SENTINEL, getTemplate } from '../../src/core/templates/registry';
import type { ChatMessage, FamilyTemplate } from '../../src/core/templates/types';
import { QueueEngine } from '../support/echo-engine';
import { attemptContext, makeRecipe } from '../support/modes';

const DATE = '14 Feb 2025';
const fixture = (name: string): string => readFileSync(new URL(`../fixtures/chat-templates/${name}`, import.meta.url), 'utf8');

interface Family {
  id: string;
  fixture: string;
  bos: string;
  eos: string;
  templateWritesBos: boolean;
  vars?: Record<string, unknown>;
}

const FAMILIES: Family[] = [
  { id: 'llama-3', fixture: 'llama-3.jinja', bos: '<|begin_of_text|>', eos: '<|eot_id|>', templateWritesBos: true },
  { id: 'llama-3.1', fixture: 'llama-3.1.jinja', bos: '<|begin_of_text|>', eos: '<|eot_id|>', templateWritesBos: true, vars: { date_string: DATE } },
  { id: 'llama-3.2', fixture: 'llama-3.2.jinja', bos: '<|begin_of_text|>', eos: '<|eot_id|>', templateWritesBos: true, vars: { date_string: DATE } },
  { id: 'hermes-3', fixture: 'hermes-3.jinja', bos: '<|begin_of_text|>', eos: '<|im_end|>', templateWritesBos: true },
  { id: 'qwen2', fixture: 'qwen2.jinja', bos: '', eos: '<|im_end|>', templateWritesBos: false },
  { id: 'qwen2.5', fixture: 'qwen2.5.jinja', bos: '', eos: '<|im_end|>', templateWritesBos: false },
  { id: 'qwen3', fixture: 'qwen3.jinja', bos: '', eos: '<|im_end|>', templateWritesBos: false, vars: { enable_thinking: false } },
  { id: 'phi-3', fixture: 'phi-3.jinja', bos: '<s>', eos: '<|endoftext|>', templateWritesBos: false },
  { id: 'phi-3.5', fixture: 'phi-3.5.jinja', bos: '<s>', eos: '<|endoftext|>', templateWritesBos: false },
  { id: 'gemma-2', fixture: 'gemma-2.jinja', bos: '<bos>', eos: '<eos>', templateWritesBos: true },
  { id: 'mistral-v0.3', fixture: 'mistral-v0.3.hand-written.jinja', bos: '<s>', eos: '</s>', templateWritesBos: true },
  { id: 'smollm2', fixture: 'smollm2.jinja', bos: '', eos: '<|im_end|>', templateWritesBos: false },
];

const sys = (content: string): ChatMessage => ({ role: 'system', content });
const user = (content: string): ChatMessage => ({ role: 'user', content });
const bot = (content: string): ChatMessage => ({ role: 'assistant', content });

/** What the model "sees": the official template's full text, BOS included exactly once. */
class Official {
  private readonly jinja: Template;
  constructor(private readonly family: Family) {
    this.jinja = new Template(fixture(family.fixture));
  }
  private text(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    const text = this.jinja.render({
      messages,
      bos_token: this.family.bos,
      eos_token: this.family.eos,
      add_generation_prompt: addGenerationPrompt,
      ...this.family.vars,
    });
    // Templates that do not write BOS themselves get it from the tokenizer: the prompt carries it once either way.
    return this.family.templateWritesBos ? text : this.family.bos + text;
  }
  response(messages: readonly ChatMessage[]): string {
    return this.text(messages, true);
  }
  query(history: readonly ChatMessage[]): string {
    const text = this.text([...history, user(PRE_QUERY_SENTINEL)], false);
    return text.slice(0, text.indexOf(PRE_QUERY_SENTINEL));
  }
}

const STEER = 'You are a chemistry teacher. Students ask about reactions and lab safety.';
const FOLLOW_UP = 'The user keeps asking follow-up questions about the same topic.';

/** Engine: call n answers "Reply n" (with an inner newline and outer spaces); judge calls answer valid JSON. */
function textEngine() {
  return new QueueEngine((req: CompletionRequest, n) => {
    const judge = /\[Candidate (\d+)\][\s\S]*$/.exec(req.prompt);
    if (judge && req.prompt.includes('Reply with only this JSON object')) {
      const k = (req.prompt.match(/\[Candidate \d+\]/g) ?? []).length;
      return { text: JSON.stringify({ scores: Array.from({ length: k }, (_, i) => 10 - i), reason: 'first is best' }) };
    }
    return { text: `  Reply ${n} about the topic.\nSecond line ${n}.  ` };
  });
}

async function produce(template: FamilyTemplate, modes: Partial<ModeSettings>): Promise<{ record: MagpieRecord; prompts: string[] }> {
  const engine = textEngine();
  const recipe = makeRecipe(template, modes);
  const producer = modeProducer({ run: { modelId: 'm', engine: 'webllm', engineAddsBos: false }, recipe, engine, template });
  const outcome = await producer(attemptContext(1));
  if (outcome.kind !== 'record') throw new Error(`expected a record, got ${outcome.kind}`);
  return { record: { ...outcome.record, uuid: 'u', runId: 'r', seq: 1, createdAt: 0 }, prompts: engine.requests.map((r) => r.prompt) };
}

const multiTurn = (turns: number, followUpSystem: string | null, endWithUser: boolean): ModeOptions => ({
  kind: 'multi-turn',
  turns,
  followUpSystem,
  endWithUser,
});

describe.each(FAMILIES)('$id: mode prompts equal the official template', (family) => {
  const template = getTemplate(family.id, { dateString: DATE });
  const official = new Official(family);
  const steer = template.supportsSystem ? STEER : undefined;
  const followUp = template.supportsSystem ? FOLLOW_UP : null;
  const withSteer = (turns: ChatMessage[]) => (steer === undefined ? turns : [sys(steer), ...turns]);
  const system = steer === undefined ? null : { prompts: [{ key: 'chem', prompt: steer, weight: 1 }], includeInExport: true };

  test('3-turn conversation: first query, follow-up queries and responses', async () => {
    const { record, prompts } = await produce(template, { mode: multiTurn(3, followUp, false), system });
    const [t2, t3] = record.turns ?? [];
    if (!t2?.response || !t3?.response) throw new Error('turns missing');
    const u1 = user(record.instruction);
    const a1 = bot(record.response);
    const u2 = user(t2.instruction);
    const a2 = bot(t2.response);
    const u3 = user(t3.instruction);
    const fu = (turns: ChatMessage[]) => (followUp === null ? withSteer(turns) : [sys(followUp), ...turns]);
    expect(prompts).toEqual([
      official.query(withSteer([])),
      official.response(withSteer([u1])),
      official.query(fu([u1, a1])),
      official.response(withSteer([u1, a1, u2])),
      official.query(fu([u1, a1, u2, a2])),
      official.response(withSteer([u1, a1, u2, a2, u3])),
    ]);
    // The follow-up system prompt never reaches a response prompt.
    if (followUp !== null) for (const p of prompts.filter((_, i) => i % 2 === 1)) expect(p).not.toContain(followUp);
    expect(record.system?.key).toBe(steer === undefined ? undefined : 'chem');
  });

  test('follow-ups without a follow-up system prompt use the conversation history alone (plus the steer)', async () => {
    const { record, prompts } = await produce(template, { mode: multiTurn(2, null, true), system: null });
    const t2 = record.turns?.[0];
    expect(t2?.response).toBeUndefined();
    expect(prompts).toEqual([
      official.query([]),
      official.response([user(record.instruction)]),
      official.query([user(record.instruction), bot(record.response)]),
    ]);
  });

  test('instruction-only: just the (steered) pre-query; no response is generated', async () => {
    const { record, prompts } = await produce(template, { mode: { kind: 'instruction-only' }, system });
    expect(prompts).toEqual([official.query(withSteer([]))]);
    expect(record.noResponse).toBe(true);
  });

  test('imported instruction: only the response prompt, with the steering system prompt', async () => {
    const source = { kind: 'imported' as const, fileName: 'mine.txt', instructions: [{ line: 4, text: 'Why is ice slippery?' }] };
    const { record, prompts } = await produce(template, { mode: { kind: 'pair' }, source, system });
    expect(prompts).toEqual([official.response(withSteer([user('Why is ice slippery?')]))]);
    expect(record.imported).toEqual({ line: 4 });
    expect(record.preQueryTemplate).toBe('');
  });

  test('preference: k candidate prompts and the judge request', async () => {
    const mode: ModeOptions = { kind: 'preference', candidates: 3, temperature: 0.8, topP: 1, judge: 'model' };
    const { record, prompts } = await produce(template, { mode, system });
    const candidates = record.candidates?.map((c) => c.text) ?? [];
    expect(candidates).toHaveLength(3);
    const response = official.response(withSteer([user(record.instruction)]));
    expect(prompts).toEqual([
      official.query(withSteer([])),
      response,
      response,
      response,
      official.response(judgeConversation(record.instruction, candidates)),
    ]);
    expect(record.judgement).toMatchObject({ by: 'model', chosen: 0, rejected: 2 });
  });
});

test('Gemma-2 has no system role: the template refuses a steering system prompt', () => {
  const gemma = getTemplate('gemma-2');
  expect(gemma.supportsSystem).toBe(false);
  expect(() => gemma.preQuery({ system: STEER })).toThrow(/System role not supported/);
});
