/**
 * Grammar-constrained JSON for the preference judge (issue #6): the engines' completeJson (WebLLM chat with
 * response_format, the scripted engine, an OpenAI-compatible server's json_schema, the engine pool, the worker) and
 * the judge's choice between the constrained path and the raw-completion fallback.
 */
import { afterAll, describe, expect, test } from 'vitest';
import type { ChatCompletion, ChatCompletionRequestNonStreaming, Completion, CompletionCreateParamsStreaming } from '@mlc-ai/web-llm';
import type { CompleteJsonOptions, CompletionResult, JsonRequest, TextEngine } from '../../src/core/engine';
import { classifyEngineError, EngineError } from '../../src/core/errors';
import { exportLine } from '../../src/core/export';
import {
  JUDGE_SYSTEM_MESSAGE,
  judgeCandidates,
  judgeMessage,
  judgeSchema,
  parseConstrainedJudgement,
} from '../../src/core/modes/judge';
import { modeProducer } from '../../src/core/modes/producer';
import type { MagpieRecord } from '../../src/core/record';
import { deriveSeed } from '../../src/core/seed';
import { getTemplate } from '../../src/core/templates/registry';
import { EnginePool } from '../../src/engine/engine-pool';
import { OpenAICompatibleEngine } from '../../src/engine/openai-engine';
import { judgeCandidatesIn, ScriptedMLCEngine } from '../../src/engine/scripted-mlc-engine';
import { toWebLLMJsonRequest, WebLLMTextEngine, type MLCEngineLike } from '../../src/engine/webllm-adapter';
import { createEngineWorkerApi } from '../../src/engine/worker-core';
import { QueueEngine } from '../support/echo-engine';
import { attemptContext, makeRecipe } from '../support/modes';
import { start, type TestServer, type TestServerOptions } from '../support/openai-test-server';

const MODEL = 'test/llama-3-8b-instruct';
const llama3 = getTemplate('llama-3');
const USER_HEADER = '<|start_header_id|>user<|end_header_id|>\n\n';

const servers: TestServer[] = [];
async function server(options: TestServerOptions = {}): Promise<TestServer> {
  const s = await start(options);
  servers.push(s);
  return s;
}
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

function named(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

const judgeRequest = (candidates: readonly string[], over: Partial<JsonRequest> = {}): JsonRequest => ({
  messages: [
    { role: 'system', content: JUDGE_SYSTEM_MESSAGE },
    { role: 'user', content: judgeMessage('How do tides work?', candidates) },
  ],
  schema: judgeSchema(candidates.length),
  schemaName: 'judgement',
  temperature: 0,
  topP: 1,
  maxTokens: 512,
  ...over,
});

/** A WebLLM stand-in with a chat API that records requests and answers as told. */
class FakeChatEngine implements MLCEngineLike {
  readonly chatRequests: ChatCompletionRequestNonStreaming[] = [];
  interrupts = 0;
  readonly completions: MLCEngineLike['completions'] = {
    create: async (_r: CompletionCreateParamsStreaming): Promise<AsyncIterable<Completion>> => {
      throw new Error('not used');
    },
  };
  readonly chat: NonNullable<MLCEngineLike['chat']>;
  constructor(answer: (r: ChatCompletionRequestNonStreaming) => Promise<ChatCompletion>) {
    this.chat = {
      completions: {
        create: async (r) => {
          this.chatRequests.push(r);
          return answer(r);
        },
      },
    };
  }
  async interruptGenerate(): Promise<void> {
    this.interrupts++;
  }
  async reload(): Promise<void> {}
  async unload(): Promise<void> {}
  setInitProgressCallback(): void {}
}

const chatReply = (content: string, finish: 'stop' | 'length' | 'abort' = 'stop'): ChatCompletion => ({
  id: 'c',
  object: 'chat.completion',
  created: 0,
  model: 'fake',
  choices: [{ index: 0, finish_reason: finish, logprobs: null, message: { role: 'assistant', content } }],
  usage: {
    prompt_tokens: 321,
    completion_tokens: 17,
    total_tokens: 338,
    extra: { e2e_latency_s: 1, prefill_tokens_per_s: 400, decode_tokens_per_s: 20, time_to_first_token_s: 0.5, time_per_output_token_s: 0.05 },
  },
});

describe('WebLLM adapter: completeJson', () => {
  test('sends a non-streamed chat request with response_format json_object and the schema as a string', async () => {
    const fake = new FakeChatEngine(async () => chatReply('{"scores":[3,8],"reason":"b is right"}'));
    const request = judgeRequest(['a', 'b'], { seed: 99 });
    const result = await new WebLLMTextEngine(fake).completeJson(request);
    expect(fake.chatRequests).toHaveLength(1);
    const sent = fake.chatRequests[0];
    expect(sent).toEqual({
      messages: request.messages,
      response_format: { type: 'json_object', schema: JSON.stringify(judgeSchema(2)) },
      temperature: 0,
      top_p: 1,
      max_tokens: 512,
      seed: 99,
      stream: false,
    });
    // The first message is ours, so WebLLM injects no default system prompt.
    expect(sent?.messages[0]).toEqual({ role: 'system', content: JUDGE_SYSTEM_MESSAGE });
    expect(result).toEqual({
      text: '{"scores":[3,8],"reason":"b is right"}',
      finishReason: 'stop',
      usage: {
        promptTokens: 321,
        completionTokens: 17,
        prefillTokensPerSecond: 400,
        decodeTokensPerSecond: 20,
        timeToFirstTokenSeconds: 0.5,
        latencySeconds: 1,
      },
    });
    // No seed: the field is left out, not sent as undefined.
    expect('seed' in toWebLLMJsonRequest(judgeRequest(['a', 'b']))).toBe(false);
  });

  test('an engine without a chat API refuses with invalid-request; WebLLM errors keep their class', async () => {
    const base = new FakeChatEngine(async () => chatReply('{}'));
    const noChat: MLCEngineLike = {
      completions: base.completions,
      interruptGenerate: () => base.interruptGenerate(),
      reload: () => base.reload(),
      unload: () => base.unload(),
      setInitProgressCallback: () => undefined,
    };
    const err = await new WebLLMTextEngine(noChat).completeJson(judgeRequest(['a', 'b'])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).kind).toBe('invalid-request');

    const lost = new FakeChatEngine(async () => {
      throw named('DeviceLostError', 'GPU gone');
    });
    await expect(new WebLLMTextEngine(lost).completeJson(judgeRequest(['a', 'b']))).rejects.toMatchObject({ kind: 'device-lost' });
  });

  test('invalid requests are refused before anything is sent', async () => {
    const fake = new FakeChatEngine(async () => chatReply('{}'));
    const engine = new WebLLMTextEngine(fake);
    const bad: JsonRequest[] = [
      judgeRequest(['a', 'b'], { seed: 1.5 }),
      judgeRequest(['a', 'b'], { maxTokens: 0 }),
      { ...judgeRequest(['a', 'b']), messages: [{ role: 'user', content: 'x' }, { role: 'system', content: 'late' }] },
      { ...judgeRequest(['a', 'b']), messages: [{ role: 'system', content: 'only a system message' }] },
    ];
    for (const r of bad) await expect(engine.completeJson(r)).rejects.toMatchObject({ kind: 'invalid-request' });
    expect(fake.chatRequests).toHaveLength(0);
  });

  test('abort: before the call nothing is sent; during it the engine is interrupted and the result says abort', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const fake = new FakeChatEngine(async () => {
      await gate;
      return chatReply('{"scores":[1', 'stop');
    });
    const engine = new WebLLMTextEngine(fake);
    const pre = new AbortController();
    pre.abort();
    expect((await engine.completeJson(judgeRequest(['a', 'b']), { signal: pre.signal })).finishReason).toBe('abort');
    expect(fake.chatRequests).toHaveLength(0);

    const during = new AbortController();
    const pending = engine.completeJson(judgeRequest(['a', 'b']), { signal: during.signal });
    await Promise.resolve();
    during.abort();
    release();
    const result = await pending;
    expect(fake.interrupts).toBe(1);
    expect(result.finishReason).toBe('abort');
  });
});

describe('scripted engine: chat with response_format json_object', () => {
  const loaded = async (options = {}): Promise<ScriptedMLCEngine> => {
    const e = new ScriptedMLCEngine({ tokenDelayMs: 0, ...options });
    await e.reload('scripted:judge-test');
    return e;
  };

  test('answers JSON valid for the judge schema; distinct candidates ranked by hash, equal texts scored equal', async () => {
    const engine = new WebLLMTextEngine(await loaded());
    const candidates = ['First answer text.', 'Second, different answer.', 'First answer text.', 'A third one.'];
    const result = await engine.completeJson(judgeRequest(candidates));
    expect(result.finishReason).toBe('stop');
    const parsed = parseConstrainedJudgement(result.text, 4);
    if (!parsed.ok) throw new Error(parsed.error);
    const [s0, s1, s2, s3] = parsed.scores;
    expect(s0).toBe(s2);
    expect(new Set([s0, s1, s3]).size).toBe(3);
    // Three distinct texts spread over 1..10: the best gets 10, the worst 1.
    expect(Math.max(...parsed.scores)).toBe(10);
    expect(Math.min(...parsed.scores)).toBe(1);
    // Deterministic, and usage counts the JSON tokens plus the end-of-turn token.
    const again = await engine.completeJson(judgeRequest(candidates));
    expect(again.text).toBe(result.text);
    expect(result.usage.completionTokens).toBeGreaterThan(5);
    expect(result.usage.promptTokens).toBeGreaterThan(50);
  });

  test('reads the candidate blocks of the judge message, multi-paragraph candidates included', () => {
    const texts = ['One.\n\nWith a second paragraph.', 'Two.', 'Three.\n\n- a list'];
    expect(judgeCandidatesIn(judgeMessage('Q?', texts))).toEqual(texts);
  });

  test('max_tokens cuts the JSON (finish length, not valid); WebLLM checks apply', async () => {
    const raw = await loaded();
    const engine = new WebLLMTextEngine(raw);
    const cut = await engine.completeJson(judgeRequest(['x', 'y'], { maxTokens: 4 }));
    expect(cut.finishReason).toBe('length');
    expect(cut.usage.completionTokens).toBe(4);
    expect(parseConstrainedJudgement(cut.text, 2).ok).toBe(false);

    const chat = raw.chat;
    await expect(
      chat.completions.create({ messages: [{ role: 'user', content: 'a' }, { role: 'system', content: 'b' }, { role: 'user', content: 'c' }] }),
    ).rejects.toMatchObject({ name: 'SystemMessageOrderError' });
    await expect(chat.completions.create({ messages: [{ role: 'user', content: 'a' }], seed: 0.5 })).rejects.toMatchObject({ name: 'SeedTypeError' });
    await expect(
      chat.completions.create({ messages: [{ role: 'user', content: 'a' }], response_format: { type: 'text', schema: '{}' } }),
    ).rejects.toMatchObject({ name: 'InvalidResponseFormatError' });
    const fresh = new ScriptedMLCEngine({ tokenDelayMs: 0 });
    await expect(fresh.chat.completions.create({ messages: [{ role: 'user', content: 'a' }] })).rejects.toMatchObject({ name: 'ModelNotLoadedError' });
  });

  test('an interrupt during a chat completion ends it with finish reason abort', async () => {
    const raw = await loaded({ tokenDelayMs: 5 });
    const pending = raw.chat.completions.create({ messages: [{ role: 'user', content: 'Tell me about tides.' }], max_tokens: 200 });
    await new Promise((r) => setTimeout(r, 20));
    await raw.interruptGenerate();
    const reply = await pending;
    expect(reply.choices[0]?.finish_reason).toBe('abort');
    expect(reply.usage?.completion_tokens).toBeLessThan(40);
  });

  test('through the worker API: completeJson after load, ModelNotLoadedError before', async () => {
    const api = createEngineWorkerApi(() => new ScriptedMLCEngine({ tokenDelayMs: 0 }), {
      capabilities: async () => ({ webgpu: false }),
      listModels: () => [],
      isCached: async () => false,
      contextWindow: () => 4096,
    });
    await expect(api.completeJson(judgeRequest(['a', 'b']))).rejects.toMatchObject({ name: 'ModelNotLoadedError' });
    await api.load('scripted:worker-json', '<|eot_id|>');
    const result = await api.completeJson(judgeRequest(['alpha answer', 'beta answer']));
    const parsed = parseConstrainedJudgement(result.text, 2);
    expect(parsed.ok && [...parsed.scores].sort((a, b) => a - b)).toEqual([1, 10]);
  });
});

const serverEngine = (s: TestServer, maxRetries = 0): OpenAICompatibleEngine =>
  new OpenAICompatibleEngine({ baseUrl: s.url, model: MODEL, inBrowser: false, maxRetries, sleep: async () => undefined });

describe('OpenAI-compatible engine: completeJson', () => {
  test('POSTs /v1/chat/completions with a strict json_schema response format, not streamed', async () => {
    const s = await server();
    const request = judgeRequest(['one', 'two', 'three'], { seed: 5 });
    const result = await serverEngine(s).completeJson(request);
    expect(s.stats.chatCompletions).toBe(1);
    expect(s.stats.completions).toBe(0);
    expect(s.stats.chatBodies[0]).toEqual({
      model: MODEL,
      messages: request.messages,
      response_format: { type: 'json_schema', json_schema: { name: 'judgement', schema: judgeSchema(3), strict: true } },
      temperature: 0,
      top_p: 1,
      max_tokens: 512,
      seed: 5,
      stream: false,
    });
    const parsed = parseConstrainedJudgement(result.text, 3);
    expect(parsed.ok).toBe(true);
    expect(result.finishReason).toBe('stop');
    expect(result.usage.promptTokens).toBeGreaterThan(0);
  });

  test('retries a 503, gives up on a 400 (a server without json_schema) as invalid-request', async () => {
    const s = await server();
    s.plan({ kind: 'status', status: 503 });
    const ok = await serverEngine(s, 2).completeJson(judgeRequest(['a', 'b']));
    expect(parseConstrainedJudgement(ok.text, 2).ok).toBe(true);
    expect(s.stats.chatCompletions).toBe(2);

    const refusing = await server({ jsonSchema: 'refuse' });
    const err = await serverEngine(refusing, 3).completeJson(judgeRequest(['a', 'b'])).catch((e: unknown) => e);
    expect(classifyEngineError(err).kind).toBe('invalid-request');
    expect(refusing.stats.chatCompletions).toBe(1);
    expect((err as Error).message).toContain('/v1/chat/completions');
  });

  test('a connection reset is retried; an abort before the call sends nothing', async () => {
    const s = await server();
    s.plan({ kind: 'reset', afterChunks: 0 });
    const result = await serverEngine(s, 1).completeJson(judgeRequest(['a', 'b']));
    expect(parseConstrainedJudgement(result.text, 2).ok).toBe(true);
    const aborted = new AbortController();
    aborted.abort();
    const before = s.stats.chatCompletions;
    expect((await serverEngine(s).completeJson(judgeRequest(['a', 'b']), { signal: aborted.signal })).finishReason).toBe('abort');
    expect(s.stats.chatCompletions).toBe(before);
  });
});

describe('EnginePool: completeJson', () => {
  test('offered only when every member offers it, and routed with failover', async () => {
    const up = await server();
    const down = await server();
    down.plan({ kind: 'status', status: 500 });
    const pool = new EnginePool([serverEngine(down), serverEngine(up)], { cooldownMs: 60_000 });
    const completeJson = pool.completeJson;
    if (!completeJson) throw new Error('the pool should offer completeJson');
    const result = await completeJson(judgeRequest(['a', 'b']));
    expect(parseConstrainedJudgement(result.text, 2).ok).toBe(true);
    expect(down.stats.chatCompletions + up.stats.chatCompletions).toBe(2);
    expect(pool.inFlight().map((m) => m.failed)).toEqual([1, 0]);

    const rawOnly = new QueueEngine(() => ({ text: 'x' }));
    expect(new EnginePool([serverEngine(up), rawOnly]).completeJson).toBeUndefined();
  });
});

/** A raw QueueEngine with a scripted completeJson that records its requests. */
class JsonQueueEngine extends QueueEngine implements TextEngine {
  readonly jsonRequests: JsonRequest[] = [];
  constructor(
    reply: ConstructorParameters<typeof QueueEngine>[0],
    private readonly json: (req: JsonRequest, options: CompleteJsonOptions) => CompletionResult | Error,
  ) {
    super(reply);
  }
  async completeJson(request: JsonRequest, options: CompleteJsonOptions = {}): Promise<CompletionResult> {
    this.jsonRequests.push(request);
    const r = this.json(request, options);
    if (r instanceof Error) throw r;
    return r;
  }
}

const jsonResult = (text: string, finishReason: CompletionResult['finishReason'] = 'stop'): CompletionResult => ({
  text,
  finishReason,
  usage: { promptTokens: 100, completionTokens: 9 },
});

describe('judge path selection', () => {
  const renderRaw = (messages: Parameters<typeof llama3.render>[0]) => `<|begin_of_text|>${llama3.render(messages, { addGenerationPrompt: true })}`;
  const call = { instruction: 'Q?', texts: ['A one', 'A two', 'A three'], renderRaw, stop: ['<|eot_id|>'] };
  const rawJudge = (text: string) => new QueueEngine((req) => (req.prompt.includes('[Candidate 1]') ? { text } : { text: 'unused' }));

  test('constrained first: one chat call with our system message, the k-score schema and its own seed; no raw call', async () => {
    const engine = new JsonQueueEngine(
      () => new Error('no raw call expected'),
      () => jsonResult('{"scores":[2,9,5],"reason":"two is complete"}'),
    );
    const outcome = await judgeCandidates(engine, attemptContext(4, 7), call);
    expect(outcome).toMatchObject({ kind: 'verdict', via: 'constrained', scores: [2, 9, 5], reason: 'two is complete', completionTokens: 9 });
    expect(engine.requests).toHaveLength(0);
    const req = engine.jsonRequests[0];
    expect(req?.messages.map((m) => m.role)).toEqual(['system', 'user']);
    expect(req?.messages[1]?.content).toBe(judgeMessage('Q?', call.texts));
    expect(req?.schema).toEqual(judgeSchema(3));
    expect(req?.seed).toBe(deriveSeed(7, 4, 'judge_json'));
    expect(req).toMatchObject({ temperature: 0, topP: 1, maxTokens: 512, schemaName: 'judgement' });
    if (outcome.kind !== 'verdict') throw new Error('expected a verdict');
    expect(outcome.steps).toHaveLength(1);
    expect(JSON.parse(outcome.steps[0]?.prompt ?? '')).toEqual(req?.messages);
    expect(outcome.steps[0]?.stop).toEqual([]);
  });

  test('an answer that breaks the schema falls back to the raw path, and both calls are recorded', async () => {
    for (const bad of ['{"scores":[2,9],"reason":"k-1 scores"}', '{"scores":[2,9,11],"reason":"out of range"}', '{"scores":[2,9,5]}', '{"scores":[2,9,5],"reason":"x","extra":1}', '```json\n{"scores":[2,9,5],"reason":"x"}\n```']) {
      const engine = new JsonQueueEngine(
        (req) => (req.prompt.includes('[Candidate 1]') ? { text: '{"scores":[7,3,5],"reason":"raw"}' } : { text: '' }),
        () => jsonResult(bad),
      );
      const outcome = await judgeCandidates(engine, attemptContext(1), call);
      expect(outcome, bad).toMatchObject({ kind: 'verdict', via: 'raw', scores: [7, 3, 5] });
      if (outcome.kind !== 'verdict') throw new Error('expected a verdict');
      expect(outcome.steps).toHaveLength(2);
      expect(outcome.steps[1]?.prompt).toBe(renderRaw([{ role: 'user', content: judgeMessage('Q?', call.texts) }]));
      expect(outcome.completionTokens).toBe(9 + (outcome.steps[1]?.completionTokens ?? 0));
    }
  });

  test('a refused request (invalid-request) or an unnamed engine error falls back; a lost GPU does not', async () => {
    const refused = new EngineError(classifyEngineError({ kind: 'invalid-request', message: 'json_schema unsupported' }));
    for (const err of [refused, new Error('Grammar compile failed')]) {
      const engine = new JsonQueueEngine(() => ({ text: '{"scores":[1,2,3],"reason":"r"}' }), () => err);
      const outcome = await judgeCandidates(engine, attemptContext(1), call);
      expect(outcome).toMatchObject({ kind: 'verdict', via: 'raw', scores: [1, 2, 3] });
      if (outcome.kind === 'verdict') expect(outcome.steps).toHaveLength(1);
    }
    const lost = new JsonQueueEngine(() => ({ text: 'unused' }), () => named('DeviceLostError', 'gone'));
    await expect(judgeCandidates(lost, attemptContext(1), call)).rejects.toMatchObject({ name: 'DeviceLostError' });
    expect(lost.requests).toHaveLength(0);
  });

  test('an aborted constrained call ends the judgement without a raw call', async () => {
    const engine = new JsonQueueEngine(() => ({ text: 'unused' }), () => jsonResult('', 'abort'));
    expect(await judgeCandidates(engine, attemptContext(1), call)).toEqual({ kind: 'aborted' });
    expect(engine.requests).toHaveLength(0);
  });

  test('an engine without completeJson judges raw; constrained and raw failures together reject', async () => {
    const raw = await judgeCandidates(rawJudge('{"scores":[4,4,9],"reason":"3"}'), attemptContext(1), call);
    expect(raw).toMatchObject({ kind: 'verdict', via: 'raw', scores: [4, 4, 9] });
    const never = new JsonQueueEngine(() => ({ text: 'not json' }), () => jsonResult('{"scores":[1]}'));
    const failed = await judgeCandidates(never, attemptContext(1), call);
    expect(failed).toMatchObject({ kind: 'failed', text: 'not json' });
    if (failed.kind === 'failed') expect(failed.steps).toHaveLength(3);
  });

  test('the producer records via on the judgement, and the full-metadata export carries it', async () => {
    const recipe = makeRecipe(llama3, { mode: { kind: 'preference', candidates: 3, temperature: 0.8, topP: 1, judge: 'model' } });
    const run = { modelId: 'm', engine: 'webllm', engineAddsBos: false };
    const engine = new JsonQueueEngine(
      (req) => (req.prompt.endsWith(USER_HEADER) ? { text: 'What is rust?' } : { text: `Answer with seed ${req.seed}` }),
      () => jsonResult('{"scores":[3,9,1],"reason":"second is best"}'),
    );
    const outcome = await modeProducer({ run, recipe, engine, template: llama3 })(attemptContext(1));
    if (outcome.kind !== 'record') throw new Error(`expected a record, got ${outcome.kind}`);
    expect(outcome.record.judgement).toMatchObject({ by: 'model', via: 'constrained', chosen: 1, rejected: 2 });
    const record: MagpieRecord = { ...outcome.record, uuid: 'u', runId: 'r', seq: 1, createdAt: 0 };
    const full = exportLine(record, 'magpie', { label: 'pref' }) as { magpie_web: { judgement?: { via?: string } } };
    expect(full.magpie_web.judgement?.via).toBe('constrained');
    // No raw judge prompt was sent.
    expect(engine.requests.some((r) => r.prompt.includes('[Candidate 1]'))).toBe(false);
  });

  test('end to end against a server: constrained by json_schema, or raw when the server refuses it', async () => {
    const recipe = makeRecipe(llama3, { mode: { kind: 'preference', candidates: 3, temperature: 0.8, topP: 1, judge: 'model' } });
    const run = { modelId: MODEL, engine: 'openai-compatible', engineAddsBos: false };
    const honouring = await server();
    const a = await modeProducer({ run, recipe, engine: serverEngine(honouring), template: llama3 })(attemptContext(1));
    if (a.kind !== 'record') throw new Error(`expected a record, got ${a.kind}`);
    expect(a.record.judgement?.via).toBe('constrained');
    expect(honouring.stats.chatCompletions).toBe(1);
    expect(honouring.stats.violations).toEqual([]);

    const refusing = await server({ jsonSchema: 'refuse' });
    const b = await modeProducer({ run, recipe, engine: serverEngine(refusing), template: llama3 })(attemptContext(1));
    // The test server's raw "model" writes prose, not JSON: the raw judge fails twice and the attempt is rejected.
    expect(b).toMatchObject({ kind: 'rejected', reason: 'judge' });
    expect(refusing.stats.chatCompletions).toBe(1);
    expect(refusing.stats.prompts.filter((p) => p.prompt.includes('[Candidate 1]'))).toHaveLength(2);
    expect(refusing.stats.violations).toEqual([]);
  });
});
