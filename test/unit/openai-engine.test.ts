import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { probeAddsBos, type CompletionRequest } from '../../src/core/engine';
import { EngineError } from '../../src/core/errors';
import { getTemplate } from '../../src/core/templates/registry';
import { withBos } from '../../src/core/templates/types';
import {
  mapFinishReason,
  normaliseBaseUrl,
  OpenAICompatibleEngine,
  parseRetryAfter,
  type OpenAIEngineOptions,
} from '../../src/engine/openai-engine';
import { start, tokenize, type TestServer, type TestServerOptions } from '../support/openai-test-server';

const MODEL = 'test/llama-3-8b-instruct';
const llama3 = getTemplate('llama-3');
const preQueryPrompt = withBos(llama3, llama3.preQuery(), false);
const responsePrompt = (instruction: string, addsBos = false): string =>
  withBos(llama3, llama3.render([{ role: 'user', content: instruction }], { addGenerationPrompt: true }), addsBos);

const servers: TestServer[] = [];
async function server(options: TestServerOptions = {}): Promise<TestServer> {
  const s = await start(options);
  servers.push(s);
  return s;
}
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** Records backoff waits without waiting, so retry tests run instantly and can check the delays. */
function recordingSleep(): { sleeps: number[]; sleep: NonNullable<OpenAIEngineOptions['sleep']> } {
  const sleeps: number[] = [];
  return { sleeps, sleep: async (ms) => void sleeps.push(ms) };
}

function engineFor(s: TestServer, extra: Partial<OpenAIEngineOptions> = {}): OpenAICompatibleEngine {
  return new OpenAICompatibleEngine({ baseUrl: s.url, model: MODEL, inBrowser: false, ...extra });
}

function responseRequest(instruction: string, extra: Partial<CompletionRequest> = {}): CompletionRequest {
  return { prompt: responsePrompt(instruction), temperature: 0, topP: 1, maxTokens: 400, stop: ['<|eot_id|>'], ...extra };
}

/** Collects deltas the way a caller should: start over when the engine says it restarted. */
function collector(): { text: () => string; deltas: string[]; restarts: number; onDelta: (d: string) => void; onRestart: () => void } {
  const c = {
    deltas: [] as string[],
    restarts: 0,
    text: () => c.deltas.join(''),
    onDelta: (d: string) => void c.deltas.push(d),
    onRestart: () => {
      c.restarts++;
      c.deltas.length = 0;
    },
  };
  return c;
}

/** The server's own non-streaming answer for the same body: the reference for reassembled streams. */
async function nonStreaming(s: TestServer, body: Record<string, unknown>): Promise<{ text: string; finish_reason: string }> {
  const res = await fetch(`${s.url}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...body, stream: false }),
  });
  const json = (await res.json()) as { choices: Array<{ text: string; finish_reason: string }> };
  const choice = json.choices[0];
  if (!choice) throw new Error('no choice');
  return choice;
}

async function engineError(p: Promise<unknown>): Promise<EngineError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EngineError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('OpenAICompatibleEngine against the loopback test server', () => {
  let plain: TestServer;
  beforeAll(async () => {
    plain = await server();
  });

  test('sends exactly the OpenAI completion fields, raw prompt untouched, no auth header without a key', async () => {
    const engine = engineFor(plain);
    await engine.complete({
      prompt: preQueryPrompt,
      temperature: 1,
      topP: 0.99,
      maxTokens: 64,
      stop: ['<|eot_id|>', '\n'],
      seed: 7,
      logitBias: { '14711': -100 },
    });
    expect(plain.stats.bodies.at(-1)).toEqual({
      model: MODEL,
      prompt: preQueryPrompt,
      temperature: 1,
      top_p: 0.99,
      max_tokens: 64,
      stop: ['<|eot_id|>', '\n'],
      seed: 7,
      logit_bias: { '14711': -100 },
      stream: true,
      stream_options: { include_usage: true },
    });
    const headers = plain.stats.headers.at(-1);
    expect(headers?.['content-type']).toBe('application/json');
    expect(headers?.authorization).toBeUndefined();

    await engine.complete({ prompt: preQueryPrompt, temperature: 1, topP: 1, maxTokens: 8, stop: [] });
    const body = plain.stats.bodies.at(-1) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(
      ['max_tokens', 'model', 'prompt', 'stop', 'stream', 'stream_options', 'temperature', 'top_p'].sort(),
    );
  });

  test('a pre-query prompt yields an instruction; streamed deltas add up to the final text and the server’s own answer', async () => {
    const engine = engineFor(plain);
    const c = collector();
    const req: CompletionRequest = { prompt: preQueryPrompt, temperature: 1, topP: 1, maxTokens: 200, stop: ['<|eot_id|>'], seed: 11 };
    const result = await engine.complete(req, c);
    expect(c.deltas.length).toBeGreaterThan(3);
    expect(c.text()).toBe(result.text);
    expect(result.text).toMatch(/^[A-Z].*[.?]$/);
    expect(result.finishReason).toBe('stop');
    const reference = await nonStreaming(plain, { model: MODEL, prompt: req.prompt, temperature: 1, max_tokens: 200, seed: 11, stop: req.stop });
    expect(result.text).toBe(reference.text);

    const answer = await engine.complete(responseRequest(result.text));
    expect(answer.text).toContain(result.text);
  });

  test('usage comes from the usage chunk: prompt tokens as counted by the server, end-of-turn token included', async () => {
    const engine = engineFor(plain);
    const c = collector();
    const prompt = responsePrompt('Name three rivers.');
    const result = await engine.complete({ prompt, temperature: 0, topP: 1, maxTokens: 400, stop: [] }, c);
    expect(result.finishReason).toBe('stop');
    expect(result.usage.promptTokens).toBe(tokenize(prompt).length);
    // One chunk per token, plus the end-of-turn token the server generated but did not return.
    expect(result.usage.completionTokens).toBe(c.deltas.length + 1);
    expect(result.usage.latencySeconds).toBeGreaterThan(0);
    expect(result.usage.timeToFirstTokenSeconds).toBeGreaterThan(0);
  });

  test('max tokens ends the text with finish reason length', async () => {
    const engine = engineFor(plain);
    const c = collector();
    const result = await engine.complete(responseRequest('Describe a lighthouse.', { maxTokens: 5 }), c);
    expect(result.finishReason).toBe('length');
    expect(result.usage.completionTokens).toBe(5);
    expect(c.deltas).toHaveLength(5);
    const full = await engine.complete(responseRequest('Describe a lighthouse.'));
    expect(full.text.startsWith(result.text)).toBe(true);
    expect(full.text.length).toBeGreaterThan(result.text.length);
  });

  test('a stop string cuts the text before the match, and the match is never streamed', async () => {
    const engine = engineFor(plain);
    const full = await engine.complete(responseRequest('Explain tides.'));
    const words = full.text.split(' ');
    const stopWord = ` ${words[12] ?? ''} ${words[13] ?? ''}`;
    const cutAt = full.text.indexOf(stopWord);
    expect(cutAt).toBeGreaterThan(0);
    const c = collector();
    const result = await engine.complete(responseRequest('Explain tides.', { stop: ['<|eot_id|>', stopWord] }), c);
    expect(result.text).toBe(full.text.slice(0, cutAt));
    expect(result.finishReason).toBe('stop');
    expect(c.text()).toBe(result.text);
  });

  test('same seed gives the same instruction; different seeds differ; greedy ignores the seed', async () => {
    const engine = engineFor(plain);
    const sample = (seed: number, temperature = 1) =>
      engine.complete({ prompt: preQueryPrompt, temperature, topP: 1, maxTokens: 100, stop: ['<|eot_id|>'], seed }).then((r) => r.text);
    expect(await sample(5)).toBe(await sample(5));
    const texts = new Set(await Promise.all([1, 2, 3, 4, 5, 6].map((s) => sample(s))));
    expect(texts.size).toBeGreaterThan(1);
    expect(await sample(1, 0)).toBe(await sample(2, 0));
  });

  test('abort mid-stream resolves with the text so far and finish reason abort, and the server stops', async () => {
    const slow = await server({ msPerToken: 20 });
    const engine = engineFor(slow);
    const controller = new AbortController();
    const c = collector();
    const result = await engine.complete(responseRequest('Tell me about owls.'), {
      signal: controller.signal,
      onDelta: (d) => {
        c.onDelta(d);
        if (c.deltas.length === 3) controller.abort();
      },
    });
    expect(result.finishReason).toBe('abort');
    expect(result.text).toBe(c.text());
    expect(c.deltas).toHaveLength(3);
    await expect.poll(() => slow.stats.disconnected).toBe(1);
    expect(slow.stats.inFlight).toBe(0);
  });

  test('an already aborted signal sends nothing', async () => {
    const s = await server();
    const controller = new AbortController();
    controller.abort();
    const result = await engineFor(s).complete(responseRequest('Hi'), { signal: controller.signal });
    expect(result).toMatchObject({ text: '', finishReason: 'abort' });
    expect(s.stats.completions).toBe(0);
  });

  test('retries 500s with exponential backoff and full jitter, then succeeds', async () => {
    const s = await server();
    s.plan({ kind: 'status', status: 500 }, { kind: 'status', status: 503 }, { kind: 'status', status: 502 });
    const { sleeps, sleep } = recordingSleep();
    const engine = engineFor(s, { sleep, random: () => 0.5, backoff: { baseMs: 100, maxMs: 300 } });
    const result = await engine.complete(responseRequest('Why is the sky blue?'));
    expect(result.text).toContain('Why is the sky blue?');
    expect(s.stats.completions).toBe(4);
    // 0.5 × min(300, 100 × 2^retry)
    expect(sleeps).toEqual([50, 100, 150]);
  });

  test('gives up after maxRetries with a server-error', async () => {
    const s = await server();
    s.plan(...Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 500 })));
    const { sleeps, sleep } = recordingSleep();
    const err = await engineError(engineFor(s, { sleep, maxRetries: 2 }).complete(responseRequest('x')));
    expect(err.kind).toBe('server-error');
    expect(err.message).toContain('500');
    expect(s.stats.completions).toBe(3);
    expect(sleeps).toHaveLength(2);
  });

  test('429 honours Retry-After in seconds, as an HTTP date, and capped', async () => {
    const s = await server();
    const { sleeps, sleep } = recordingSleep();
    const engine = engineFor(s, { sleep, random: () => 0, maxRetryAfterMs: 10_000 });
    s.plan({ kind: 'rate-limit', retryAfter: '7' });
    await engine.complete(responseRequest('a'));
    expect(sleeps).toEqual([7000]);

    s.plan({ kind: 'rate-limit', retryAfter: new Date(Date.now() + 5000).toUTCString() });
    await engine.complete(responseRequest('b'));
    // HTTP dates have one-second resolution.
    expect(sleeps[1]).toBeGreaterThan(3000);
    expect(sleeps[1]).toBeLessThanOrEqual(5000);

    s.plan({ kind: 'rate-limit', retryAfter: '3600' });
    await engine.complete(responseRequest('c'));
    expect(sleeps[2]).toBe(10_000);

    s.plan({ kind: 'rate-limit' });
    await engine.complete(responseRequest('d'));
    // No Retry-After: ordinary backoff (random() = 0 → 0 ms).
    expect(sleeps[3]).toBe(0);
    expect(s.stats.completions).toBe(8);
  });

  test('a connection reset mid-stream restarts the whole request and tells the caller', async () => {
    const s = await server();
    const engine = engineFor(s, recordingSleep());
    const clean = await engine.complete(responseRequest('What is a prime?'));
    s.plan({ kind: 'reset', afterChunks: 4 });
    const c = collector();
    const result = await engine.complete(responseRequest('What is a prime?'), c);
    expect(c.restarts).toBe(1);
    expect(result.text).toBe(clean.text);
    expect(c.text()).toBe(clean.text);
    expect(s.stats.completions).toBe(3);
  });

  test('a malformed SSE line is retried; onRestart only when deltas were already delivered', async () => {
    const s = await server();
    const engine = engineFor(s, recordingSleep());
    const clean = await engine.complete(responseRequest('Define entropy.'));

    s.plan({ kind: 'malformed', afterChunks: 3 });
    const late = collector();
    expect((await engine.complete(responseRequest('Define entropy.'), late)).text).toBe(clean.text);
    expect(late.restarts).toBe(1);
    expect(late.text()).toBe(clean.text);

    s.plan({ kind: 'malformed', afterChunks: 0 });
    const early = collector();
    expect((await engine.complete(responseRequest('Define entropy.'), early)).text).toBe(clean.text);
    expect(early.restarts).toBe(0);
    expect(s.stats.completions).toBe(5);
  });

  test('401 is not retried; the message is clear and never contains the key', async () => {
    const secret = 'sk-test-very-secret-0123';
    const s = await server({ apiKey: secret });
    const { sleeps, sleep } = recordingSleep();
    const wrongKey = 'sk-wrong-key-4567';
    const err = await engineError(engineFor(s, { apiKey: wrongKey, sleep }).complete(responseRequest('x')));
    expect(err.kind).toBe('unauthorized');
    expect(err.message).toContain('401');
    expect(err.advice).toMatch(/API key/);
    expect(`${err.message} ${err.advice} ${err.stack ?? ''}`).not.toContain(wrongKey);
    expect(sleeps).toEqual([]);
    expect(s.stats.completions).toBe(1);

    const ok = await engineFor(s, { apiKey: secret }).complete(responseRequest('x'));
    expect(ok.finishReason).toBe('stop');
    expect(s.stats.headers.at(-1)?.authorization).toBe(`Bearer ${secret}`);
  });

  test('an unknown model is not retried and says which model', async () => {
    const s = await server();
    const { sleeps, sleep } = recordingSleep();
    const err = await engineError(engineFor(s, { model: 'no-such-model', sleep }).complete(responseRequest('x')));
    expect(err.kind).toBe('unknown-model');
    expect(err.message).toContain('no-such-model');
    expect(err.advice).toContain('/v1/models');
    expect(sleeps).toEqual([]);
    expect(s.stats.completions).toBe(1);
  });

  test('a prompt over the context length is a prompt-too-long error, not retried', async () => {
    const s = await server({ maxModelLen: 64 });
    const err = await engineError(engineFor(s, recordingSleep()).complete(responseRequest('x', { maxTokens: 60 })));
    expect(err.kind).toBe('prompt-too-long');
    expect(err.message).toMatch(/maximum context length is 64/);
    expect(s.stats.completions).toBe(1);
  });

  test('a slow start past the timeout fails with timeout, or succeeds on the retry', async () => {
    const s = await server();
    s.plan({ kind: 'slow-start', delayMs: 3000 });
    const t0 = Date.now();
    const err = await engineError(engineFor(s, { requestTimeoutMs: 200, maxRetries: 0 }).complete(responseRequest('x')));
    expect(err.kind).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(2000);

    s.plan({ kind: 'slow-start', delayMs: 3000 });
    const { sleeps, sleep } = recordingSleep();
    const result = await engineFor(s, { requestTimeoutMs: 200, maxRetries: 1, sleep }).complete(responseRequest('x'));
    expect(result.finishReason).toBe('stop');
    expect(sleeps).toHaveLength(1);
  });

  test('an unreachable server is a network error in Node and "network error or CORS" in a browser', async () => {
    const s = await start();
    const url = s.url;
    await s.close();
    const { sleeps, sleep } = recordingSleep();
    const node = await engineError(
      new OpenAICompatibleEngine({ baseUrl: url, model: MODEL, inBrowser: false, maxRetries: 1, sleep }).complete(responseRequest('x')),
    );
    expect(node.kind).toBe('network');
    expect(node.advice).toContain(url);
    expect(sleeps).toHaveLength(1);
    const browser = await engineError(
      new OpenAICompatibleEngine({ baseUrl: url, model: MODEL, inBrowser: true, maxRetries: 0 }).complete(responseRequest('x')),
    );
    expect(browser.kind).toBe('cors');
    expect(browser.advice).toMatch(/network error or CORS/i);
    expect(browser.advice).toMatch(/origin allowed/);
  });

  test('listModels returns the served ids, with the key, and refuses clearly without it', async () => {
    const s = await server({ apiKey: 'k-123456', models: ['meta-llama/Meta-Llama-3-8B-Instruct', 'other'] });
    const engine = new OpenAICompatibleEngine({ baseUrl: `${s.url}/v1/`, model: 'x', apiKey: 'k-123456' });
    expect(await engine.listModels()).toEqual(['meta-llama/Meta-Llama-3-8B-Instruct', 'other']);
    expect(s.stats.headers.at(-1)?.authorization).toBe('Bearer k-123456');
    const err = await engineError(new OpenAICompatibleEngine({ baseUrl: s.url, model: 'x' }).listModels());
    expect(err.kind).toBe('unauthorized');
  });

  test('the base URL is normalised with or without /v1 and pasted endpoint paths', () => {
    expect(normaliseBaseUrl('http://localhost:8000')).toBe('http://localhost:8000');
    expect(normaliseBaseUrl(' http://localhost:8000/v1/ ')).toBe('http://localhost:8000');
    expect(normaliseBaseUrl('https://host.example/api/v1/completions')).toBe('https://host.example/api');
    expect(normaliseBaseUrl('http://host:1234/v1/chat/completions')).toBe('http://host:1234');
    expect(normaliseBaseUrl('http://user:pw@host:1/v1?x=1')).toBe('http://host:1');
    expect(() => normaliseBaseUrl('localhost:8000')).toThrow(EngineError);
    expect(() => normaliseBaseUrl('not a url')).toThrow(/not a valid server URL/);
  });

  test('a server that answers with plain JSON instead of a stream still works', async () => {
    const s = await server();
    // The injected fetch turns streaming off, as a server that ignores `stream: true` would.
    const noStream: typeof fetch = (input, init) => {
      const body = JSON.parse(String(init?.body)) as Record<string, unknown>;
      return fetch(input, { ...init, body: JSON.stringify({ ...body, stream: false }) });
    };
    const streamed = await engineFor(s).complete(responseRequest('Compare cats and dogs.'));
    const c = collector();
    const result = await engineFor(s, { fetch: noStream }).complete(responseRequest('Compare cats and dogs.'), c);
    expect(result.text).toBe(streamed.text);
    expect(result.usage.promptTokens).toBe(streamed.usage.promptTokens);
    expect(c.text()).toBe(streamed.text);
  });

  test('the BOS probe reads prompt_tokens: 1 without server BOS, 2 when the server adds BOS', async () => {
    const withServerBos = await server({ addsBos: true });
    expect(await probeAddsBos(engineFor(plain), llama3.probeToken)).toBe(false);
    expect(await probeAddsBos(engineFor(withServerBos), llama3.probeToken)).toBe(true);
    // With server BOS the prompt must carry none; a response prompt built that way passes the server's check.
    await engineFor(withServerBos).complete({ ...responseRequest('Hi'), prompt: responsePrompt('Hi', true) });
    expect(withServerBos.stats.violations).toEqual([]);
  });

  test('the server’s template check flags a double BOS (so zero violations means something)', async () => {
    const s = await server({ addsBos: true });
    await engineFor(s).complete(responseRequest('Hi'));
    expect(s.stats.violations).toHaveLength(1);
    expect(s.stats.violations[0]?.reason).toMatch(/double BOS/);
  });

  test('every prompt this suite sent through the engine matched the Llama-3 template', () => {
    expect(plain.stats.prompts.length).toBeGreaterThan(10);
    expect(plain.stats.violations).toEqual([]);
    expect(plain.stats.prompts.map((p) => p.kind)).toContain('pre-query');
    expect(plain.stats.prompts.map((p) => p.kind)).toContain('response');
  });
});

describe('helpers', () => {
  test('finish reasons of different servers map onto stop | length | abort', () => {
    expect(mapFinishReason('stop')).toBe('stop');
    expect(mapFinishReason('eos')).toBe('stop');
    expect(mapFinishReason('eos_token')).toBe('stop');
    expect(mapFinishReason('stop_sequence')).toBe('stop');
    expect(mapFinishReason('length')).toBe('length');
    expect(mapFinishReason('max_tokens')).toBe('length');
    expect(mapFinishReason('abort')).toBe('abort');
    expect(mapFinishReason(null)).toBeUndefined();
    expect(mapFinishReason('')).toBeUndefined();
  });

  test('Retry-After parses delta-seconds and HTTP dates', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe('the test server itself', () => {
  test('CORS: preflight and responses carry the allowed origin only', async () => {
    const s = await server({ allowedOrigin: 'http://localhost:5173' });
    const pre = await fetch(`${s.url}/v1/completions`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://localhost:5173', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    const other = await fetch(`${s.url}/v1/models`, { headers: { Origin: 'http://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  test('capacity K: at most K streams decode at once, the rest wait', async () => {
    const s = await server({ capacity: 2, msPerToken: 2 });
    const engine = engineFor(s);
    await Promise.all(Array.from({ length: 5 }, (_, i) => engine.complete(responseRequest(`q${i}`, { maxTokens: 10 }))));
    expect(s.stats.maxConcurrent).toBe(5);
    expect(s.stats.maxDecoding).toBe(2);
  });

  test('listens on loopback only', () => {
    expect(servers[0]?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});
