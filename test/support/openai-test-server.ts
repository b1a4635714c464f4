/**
 * A loopback-only stand-in for a vLLM-style OpenAI-compatible server, for engine tests and the throughput benchmark.
 * It writes deterministic "model" text from (prompt, seed), streams it as SSE at a set speed per token with at most
 * K streams decoding at once, injects the faults a test plans, and checks every prompt against the Llama-3 template.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fnv1a32, seededRandom } from '../../src/core/seed';

export interface TestServerOptions {
  /** Model ids served by /v1/models; the first is the default. */
  models?: string[];
  /** When set, every request except a CORS preflight needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Origin allowed by CORS ('*' for any); without it no CORS headers are sent. */
  allowedOrigin?: string;
  /** Count one more prompt token, like vLLM putting BOS in front of a raw prompt; prompts must then carry none. */
  addsBos?: boolean;
  /** Decode time per token per stream, in ms. Default 0. */
  msPerToken?: number;
  /** At most this many streams decode at once; the rest wait in a queue (a server at its batch limit). */
  capacity?: number;
  /** Context length in tokens; prompt + max_tokens above it is refused with vLLM's 400 message. Default 8192. */
  maxModelLen?: number;
  /**
   * How /v1/chat/completions treats response_format json_schema: 'honour' (default) answers JSON valid for the
   * schema, 'refuse' answers 400 like a server without structured output, 'ignore' answers free text.
   */
  jsonSchema?: 'honour' | 'refuse' | 'ignore';
}

/** A fault applied to the next POST /v1/completions or /v1/chat/completions (one per request, in the order planned). */
export type Fault =
  | { kind: 'status'; status: number; message?: string; retryAfter?: string }
  | { kind: 'rate-limit'; retryAfter?: string }
  /** Destroys the socket after this many text chunks (a connection reset mid-stream). */
  | { kind: 'reset'; afterChunks: number }
  /** Writes a data line that is not JSON after this many text chunks, then carries on streaming. */
  | { kind: 'malformed'; afterChunks: number }
  /** Waits this long before sending the response headers. */
  | { kind: 'slow-start'; delayMs: number };

export type PromptKind = 'pre-query' | 'response' | 'probe' | 'invalid';

export interface PromptCheck {
  kind: PromptKind;
  /** Why the prompt breaks the Llama-3 template (kind 'invalid' only). */
  reason?: string;
  /** The last user turn, for a response prompt. */
  instruction?: string;
}

export interface ReceivedPrompt extends PromptCheck {
  prompt: string;
}

export interface TestServerStats {
  /** Every HTTP request, whatever its path. */
  requests: number;
  completions: number;
  modelListings: number;
  preflights: number;
  /** Completion requests open now, and the most ever open at once. */
  inFlight: number;
  maxConcurrent: number;
  /** Streams decoding now (at most `capacity`), and the most ever decoding at once. */
  decoding: number;
  maxDecoding: number;
  /** Text chunks (one token each) written to streams. */
  tokensStreamed: number;
  /** Completions whose client went away before the end. */
  disconnected: number;
  /** Parsed JSON bodies of POST /v1/completions, in arrival order. */
  bodies: unknown[];
  /** POST /v1/chat/completions requests, and their parsed JSON bodies in arrival order. */
  chatCompletions: number;
  chatBodies: unknown[];
  /** Request headers of every completion and model-list request. */
  headers: IncomingHttpHeaders[];
  prompts: ReceivedPrompt[];
  violations: Array<{ prompt: string; reason: string }>;
}

export interface TestServer {
  url: string;
  port: number;
  stats: TestServerStats;
  /** Queues faults for the next completion requests. */
  plan(...faults: Fault[]): void;
  /** Faults planned but not used yet. */
  pendingFaults(): number;
  close(): Promise<void>;
}

const BOS = '<|begin_of_text|>';
const START_HEADER = '<|start_header_id|>';
const END_HEADER = '<|end_header_id|>';
const EOT = '<|eot_id|>';
const SPECIAL_TOKENS = [BOS, '<|end_of_text|>', START_HEADER, END_HEADER, EOT, '<|eom_id|>', '<|python_tag|>'];
const HEADER_RE = /^<\|start_header_id\|>(system|user|assistant)<\|end_header_id\|>\n\n/;

/**
 * A rough tokenizer with the property the checks need: every special-token string is exactly one token, and the
 * tokens concatenate back to the text. Words with their leading space, single symbols, runs of whitespace.
 */
export function tokenize(text: string): string[] {
  return text.match(/<\|[a-z0-9_]+\|>| ?[\p{L}\p{N}']+| ?[^\s\p{L}\p{N}]|\s+/gu) ?? [];
}

/** Is this prompt a Llama-3 pre-query prompt, a response prompt, a BOS probe, or none of them? */
export function checkLlama3Prompt(prompt: string, addsBos: boolean): PromptCheck {
  const invalid = (reason: string): PromptCheck => ({ kind: 'invalid', reason });
  // The BOS probe is a single special token on its own.
  if (SPECIAL_TOKENS.includes(prompt)) return { kind: 'probe' };

  const bosCount = prompt.split(BOS).length - 1;
  let rest = prompt;
  if (addsBos) {
    if (bosCount > 0) return invalid(`the server adds BOS itself but the prompt has ${bosCount} more (double BOS)`);
  } else {
    if (!prompt.startsWith(BOS)) return invalid('the prompt does not start with <|begin_of_text|>');
    if (bosCount !== 1) return invalid(`<|begin_of_text|> appears ${bosCount} times`);
    rest = rest.slice(BOS.length);
  }

  const turns: Array<{ role: string; content: string }> = [];
  let openRole: string | undefined;
  while (rest.length > 0) {
    const header = HEADER_RE.exec(rest);
    if (!header) return invalid(`expected a role header at "${rest.slice(0, 40)}"`);
    const role = header[1] ?? '';
    rest = rest.slice(header[0].length);
    if (rest.length === 0) {
      openRole = role;
      break;
    }
    const end = rest.indexOf(EOT);
    if (end === -1) return invalid(`the ${role} turn is not closed with <|eot_id|>`);
    const content = rest.slice(0, end);
    const leaked = SPECIAL_TOKENS.find((t) => content.includes(t));
    if (leaked) return invalid(`the ${role} turn contains the special token ${leaked}`);
    // The template trims user and assistant content; Llama-3.1's system block legitimately ends with "\n\n".
    if (role !== 'system' && content !== content.trim()) return invalid(`the ${role} turn is not trimmed`);
    turns.push({ role, content });
    rest = rest.slice(end + EOT.length);
  }
  if (openRole === undefined) return invalid('the prompt does not end with an open role header');

  turns.forEach((t, i) => {
    if (t.role === 'system' && i !== 0) openRole = `invalid:a system turn at position ${i + 1}`;
  });
  if (openRole.startsWith('invalid:')) return invalid(openRole.slice('invalid:'.length));
  const dialogue = turns[0]?.role === 'system' ? turns.slice(1) : turns;
  for (let i = 0; i < dialogue.length; i++) {
    const expected = i % 2 === 0 ? 'user' : 'assistant';
    if (dialogue[i]?.role !== expected) return invalid(`turn ${i + 1} is ${dialogue[i]?.role}, expected ${expected}`);
  }
  const last = dialogue[dialogue.length - 1];
  if (openRole === 'user') {
    if (last?.role === 'user') return invalid('a user header follows a user turn');
    return { kind: 'pre-query' };
  }
  if (openRole === 'assistant') {
    if (last?.role !== 'user') return invalid('the assistant header does not follow a user turn');
    return { kind: 'response', instruction: last.content };
  }
  return invalid(`the prompt ends with an open ${openRole} header`);
}

// ---- deterministic "model" ----



const TOPICS = ['photosynthesis', 'binary search', 'the French Revolution', 'compound interest', 'sourdough bread',
  'plate tectonics', 'recursion in Python', 'the water cycle', 'supply and demand', 'black holes', 'haiku',
  'vaccines', 'public speaking', 'chess openings', 'climate change', 'prime numbers'];
const AUDIENCES = ['a ten-year-old', 'a new employee', 'my grandmother', 'a busy manager', 'a first-year student'];
const FORMS = ['short poem', 'limerick', 'product description', 'two-paragraph story', 'haiku', 'cover letter'];
const INSTRUCTION_SHAPES: Array<(pick: <T>(xs: readonly T[]) => T) => string> = [
  (p) => `Explain ${p(TOPICS)} to ${p(AUDIENCES)} in three sentences.`,
  (p) => `Write a ${p(FORMS)} about ${p(TOPICS)}.`,
  (p) => `What is the difference between ${p(TOPICS)} and ${p(TOPICS)}?`,
  (p) => `How can I teach ${p(TOPICS)} to ${p(AUDIENCES)}?`,
  (p) => `Give me five facts about ${p(TOPICS)} that ${p(AUDIENCES)} would enjoy.`,
];
const FILLER = ['first', 'consider', 'the', 'key', 'idea', 'is', 'that', 'each', 'step', 'builds', 'on', 'a',
  'simple', 'rule', 'which', 'we', 'can', 'test', 'with', 'an', 'example', 'then', 'compare', 'results', 'carefully',
  'so', 'it', 'becomes', 'clear', 'why', 'this', 'works', 'in', 'practice', 'and', 'where', 'limits', 'appear'];

/** The text the "model" writes for a prompt: an instruction after a pre-query prompt, an answer after a user turn. */
export function modelText(prompt: string, check: PromptCheck, seed: number): string {
  const rand = seededRandom(fnv1a32(`${seed}\u0000${prompt}`));
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  if (check.kind === 'pre-query') return pick(INSTRUCTION_SHAPES)(pick);
  if (check.kind === 'probe') return 'Hello';
  const sentences: string[] = [];
  const n = 8 + Math.floor(rand() * 6);
  for (let s = 0; s < n; s++) {
    const words = Array.from({ length: 10 + Math.floor(rand() * 8) }, () => pick(FILLER));
    const first = words[0] ?? 'so';
    words[0] = first.charAt(0).toUpperCase() + first.slice(1);
    sentences.push(`${words.join(' ')}.`);
  }
  const opening = check.kind === 'response' ? `You asked: "${check.instruction ?? ''}". Here is my answer.` : 'Sure.';
  return `${opening} ${sentences.join(' ')}`;
}

/**
 * A JSON value valid for a schema (type, properties, required, items, minItems, maxItems, minimum, maximum, enum),
 * drawn from `rand`; an array of integers gets distinct values where the range allows, like a judge that separates
 * its candidates.
 */
export function jsonForSchema(schema: unknown, rand: () => number): unknown {
  if (!isRecord(schema)) return null;
  if (Array.isArray(schema.enum)) return schema.enum[Math.floor(rand() * schema.enum.length)] ?? null;
  const num = (v: unknown, fallback: number): number => (typeof v === 'number' ? v : fallback);
  switch (schema.type) {
    case 'object': {
      const props = isRecord(schema.properties) ? schema.properties : {};
      return Object.fromEntries(Object.entries(props).map(([k, sub]) => [k, jsonForSchema(sub, rand)]));
    }
    case 'array': {
      const lo = num(schema.minItems, 0);
      const n = Math.max(lo, Math.min(num(schema.maxItems, lo + 3), lo + 3));
      const items = isRecord(schema.items) ? schema.items : {};
      if (items.type === 'integer') {
        const min = Math.ceil(num(items.minimum, 0));
        const max = Math.floor(num(items.maximum, min + 99));
        const pool = Array.from({ length: max - min + 1 }, (_, i) => min + i);
        // Without replacement while the range lasts: the scores separate the candidates.
        return Array.from({ length: n }, () => (pool.length > 0 ? pool.splice(Math.floor(rand() * pool.length), 1)[0] : min));
      }
      return Array.from({ length: n }, () => jsonForSchema(items, rand));
    }
    case 'integer': {
      const min = Math.ceil(num(schema.minimum, 0));
      const max = Math.floor(num(schema.maximum, min + 99));
      return min + Math.floor(rand() * (max - min + 1));
    }
    case 'number':
      return num(schema.minimum, 0) + rand();
    case 'boolean':
      return rand() < 0.5;
    case 'string':
      return `test server ${Math.floor(rand() * 1000)}`;
    default:
      return null;
  }
}

interface Generation {
  /** The text pieces to stream, one token each, already cut at max_tokens and the first stop string. */
  pieces: string[];
  finishReason: 'stop' | 'length';
  completionTokens: number;
}

function generate(text: string, maxTokens: number, stop: readonly string[]): Generation {
  const tokens = tokenize(text);
  const limited = tokens.slice(0, maxTokens);
  const out = limited.join('');
  let cut = -1;
  let stopLength = 0;
  for (const s of stop) {
    const i = s === '' ? -1 : out.indexOf(s);
    if (i !== -1 && (cut === -1 || i < cut)) {
      cut = i;
      stopLength = s.length;
    }
  }
  if (cut !== -1) {
    // Like vLLM, the tokens that complete the stop string are generated (and counted) but not returned.
    const pieces: string[] = [];
    let length = 0;
    let used = 0;
    for (const t of limited) {
      if (length >= cut + stopLength) break;
      used++;
      const keep = Math.max(0, Math.min(t.length, cut - length));
      if (keep > 0) pieces.push(t.slice(0, keep));
      length += t.length;
    }
    return { pieces, finishReason: 'stop', completionTokens: used };
  }
  if (tokens.length > maxTokens) return { pieces: limited, finishReason: 'length', completionTokens: maxTokens };
  // Natural end: the end-of-turn token is generated, counted, and not returned.
  return { pieces: limited, finishReason: 'stop', completionTokens: Math.min(limited.length + 1, maxTokens) };
}

// ---- HTTP ----

class Slots {
  private busy = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly capacity: number) {}
  get inUse(): number {
    return this.busy;
  }
  async acquire(signal: AbortSignal): Promise<boolean> {
    if (this.busy < this.capacity) {
      this.busy++;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const wake = (): void => {
        signal.removeEventListener('abort', onAbort);
        this.busy++;
        resolve(true);
      };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(wake);
        if (i !== -1) this.waiting.splice(i, 1);
        resolve(false);
      };
      this.waiting.push(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
  release(): void {
    this.busy--;
    this.waiting.shift()?.();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Starts the server on 127.0.0.1 (port 0: the OS picks a free port). */
export async function start(options: TestServerOptions = {}): Promise<TestServer> {
  const models = options.models ?? ['test/llama-3-8b-instruct'];
  const msPerToken = options.msPerToken ?? 0;
  const maxModelLen = options.maxModelLen ?? 8192;
  const slots = new Slots(options.capacity ?? Infinity);
  const faults: Fault[] = [];
  const open = new Set<AbortController>();
  let unseeded = 0;
  const stats: TestServerStats = {
    requests: 0,
    completions: 0,
    modelListings: 0,
    preflights: 0,
    inFlight: 0,
    maxConcurrent: 0,
    decoding: 0,
    maxDecoding: 0,
    tokensStreamed: 0,
    disconnected: 0,
    bodies: [],
    chatCompletions: 0,
    chatBodies: [],
    headers: [],
    prompts: [],
    violations: [],
  };

  const cors = (req: IncomingMessage, res: ServerResponse): void => {
    const allowed = options.allowedOrigin;
    const origin = req.headers.origin;
    if (allowed === undefined || origin === undefined) return;
    if (allowed !== '*' && allowed !== origin) return;
    res.setHeader('Access-Control-Allow-Origin', allowed === '*' ? '*' : origin);
    res.setHeader('Vary', 'Origin');
    // Retry-After is not a CORS-safelisted header: without this a page cannot read it.
    res.setHeader('Access-Control-Expose-Headers', 'Retry-After');
  };

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    if (res.destroyed) return;
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  // vLLM's error body shape.
  const vllmError = (res: ServerResponse, status: number, type: string, message: string, headers?: Record<string, string>): void =>
    json(res, status, { object: 'error', message, type, param: null, code: status }, headers);

  const authorized = (req: IncomingMessage): boolean =>
    options.apiKey === undefined || req.headers.authorization === `Bearer ${options.apiKey}`;

  /**
   * What every POST goes through first: headers recorded, body read, auth checked, and the next planned fault taken;
   * the faults that answer before any generation (slow start, status, 429) are served here. undefined: answered.
   */
  async function admit(
    req: IncomingMessage,
    res: ServerResponse,
    signal: AbortSignal,
  ): Promise<{ raw: string; fault: Fault | undefined } | undefined> {
    stats.headers.push(req.headers);
    const raw = await readBody(req);
    if (!authorized(req)) {
      json(res, 401, { error: 'Unauthorized' });
      return undefined;
    }
    const fault = faults.shift();
    if (fault?.kind === 'slow-start') {
      await sleep(fault.delayMs, signal);
      if (signal.aborted) return undefined;
    }
    if (fault?.kind === 'status') {
      const headers: Record<string, string> = fault.retryAfter !== undefined ? { 'Retry-After': fault.retryAfter } : {};
      vllmError(res, fault.status, 'InternalServerError', fault.message ?? 'injected failure', headers);
      return undefined;
    }
    if (fault?.kind === 'rate-limit') {
      const headers: Record<string, string> = fault.retryAfter !== undefined ? { 'Retry-After': fault.retryAfter } : {};
      vllmError(res, 429, 'RateLimitError', 'Too many requests', headers);
      return undefined;
    }
    return { raw, fault };
  }

  async function completions(req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const start = await admit(req, res, signal);
    if (!start) return;
    const { raw, fault } = start;

    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return vllmError(res, 400, 'BadRequestError', 'The request body is not valid JSON.');
    }
    stats.bodies.push(body);
    if (!isRecord(body)) return vllmError(res, 400, 'BadRequestError', 'The request body must be an object.');
    const model = body.model;
    if (typeof model !== 'string' || !models.includes(model)) {
      return vllmError(res, 404, 'NotFoundError', `The model \`${String(model)}\` does not exist.`);
    }
    const prompt = body.prompt;
    if (typeof prompt !== 'string') return vllmError(res, 400, 'BadRequestError', 'prompt must be a string.');
    const maxTokens = body.max_tokens ?? 16;
    if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) {
      return vllmError(res, 400, 'BadRequestError', 'max_tokens must be at least 1.');
    }
    const stop = Array.isArray(body.stop) ? body.stop.filter((s): s is string => typeof s === 'string') : typeof body.stop === 'string' ? [body.stop] : [];
    const stream = body.stream === true;
    const includeUsage = isRecord(body.stream_options) && body.stream_options.include_usage === true;

    const check = checkLlama3Prompt(prompt, options.addsBos ?? false);
    stats.prompts.push({ prompt, ...check });
    if (check.kind === 'invalid') stats.violations.push({ prompt, reason: check.reason ?? '' });
    const promptTokens = tokenize(prompt).length + (options.addsBos ? 1 : 0);
    if (promptTokens + maxTokens > maxModelLen) {
      return vllmError(
        res,
        400,
        'BadRequestError',
        `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`,
      );
    }
    const temperature = typeof body.temperature === 'number' ? body.temperature : 1;
    // Greedy decoding ignores the seed; sampling without a seed differs per request, like a real server.
    const seed = temperature === 0 ? 0 : typeof body.seed === 'number' ? body.seed : 1_000_000 + unseeded++;
    const gen = generate(modelText(prompt, check, seed), maxTokens, stop);
    const id = `cmpl-${fnv1a32(`${seed}${prompt}`).toString(16)}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = { prompt_tokens: promptTokens, completion_tokens: gen.completionTokens, total_tokens: promptTokens + gen.completionTokens };

    if (!stream) {
      if (!(await slots.acquire(signal))) return;
      trackDecoding(1);
      try {
        await sleep(msPerToken * gen.completionTokens, signal);
      } finally {
        trackDecoding(-1);
        slots.release();
      }
      if (signal.aborted) return;
      return json(res, 200, {
        id,
        object: 'text_completion',
        created,
        model,
        choices: [{ index: 0, text: gen.pieces.join(''), logprobs: null, finish_reason: gen.finishReason, stop_reason: null }],
        usage,
      });
    }

    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.flushHeaders();
    const write = (payload: unknown): void => {
      if (!res.destroyed) res.write(`data: ${JSON.stringify(payload)}\n\n`);
    };
    const chunk = (text: string, finish: string | null): Record<string, unknown> => ({
      id,
      object: 'text_completion',
      created,
      model,
      choices: [{ index: 0, text, logprobs: null, finish_reason: finish, stop_reason: null }],
      ...(includeUsage ? { usage: null } : {}),
    });

    if (!(await slots.acquire(signal))) return;
    trackDecoding(1);
    try {
      const t0 = performance.now();
      const n = gen.pieces.length;
      for (let i = 0; i < n; i++) {
        // Absolute deadlines keep the rate exact on average even though timers fire late.
        const wait = t0 + (i + 1) * msPerToken - performance.now();
        if (wait > 0) await sleep(wait, signal);
        else await new Promise((r) => setImmediate(r));
        if (signal.aborted) return;
        if (fault?.kind === 'reset' && i === fault.afterChunks) {
          res.socket?.destroy();
          return;
        }
        if (fault?.kind === 'malformed' && i === fault.afterChunks) res.write('data: {"id": "cmpl-broken", "choices": [\n\n');
        write(chunk(gen.pieces[i] ?? '', i === n - 1 ? gen.finishReason : null));
        stats.tokensStreamed++;
      }
      if (n === 0) write(chunk('', gen.finishReason));
      if (includeUsage) write({ id, object: 'text_completion', created, model, choices: [], usage });
      if (!res.destroyed) res.end('data: [DONE]\n\n');
    } finally {
      trackDecoding(-1);
      slots.release();
    }
  }

  /** Non-streamed chat completions; with response_format json_schema the answer is JSON valid for the schema. */
  async function chatCompletions(req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const start = await admit(req, res, signal);
    if (!start) return;
    const { raw, fault } = start;
    if (fault?.kind === 'reset') {
      res.socket?.destroy();
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return vllmError(res, 400, 'BadRequestError', 'The request body is not valid JSON.');
    }
    stats.chatBodies.push(body);
    if (!isRecord(body)) return vllmError(res, 400, 'BadRequestError', 'The request body must be an object.');
    const model = body.model;
    if (typeof model !== 'string' || !models.includes(model)) {
      return vllmError(res, 404, 'NotFoundError', `The model \`${String(model)}\` does not exist.`);
    }
    const messages = Array.isArray(body.messages) ? body.messages : [];
    const texts = messages.map((m) => (isRecord(m) && typeof m.content === 'string' ? m.content : undefined));
    const lastMessage: unknown = messages[messages.length - 1];
    if (texts.length === 0 || texts.includes(undefined) || !isRecord(lastMessage) || lastMessage.role !== 'user') {
      return vllmError(res, 400, 'BadRequestError', 'messages must be a list of {role, content}, ending with a user message.');
    }
    const maxTokens = body.max_tokens ?? 16;
    if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) {
      return vllmError(res, 400, 'BadRequestError', 'max_tokens must be at least 1.');
    }
    const format = isRecord(body.response_format) ? body.response_format : undefined;
    const schemaSpec = format?.type === 'json_schema' && isRecord(format.json_schema) ? format.json_schema : undefined;
    if (format !== undefined && format.type !== 'text' && format.type !== 'json_object' && schemaSpec === undefined) {
      return vllmError(res, 400, 'BadRequestError', 'response_format must be text, json_object or json_schema.');
    }
    const mode = options.jsonSchema ?? 'honour';
    if (schemaSpec !== undefined && mode === 'refuse') {
      return vllmError(res, 400, 'BadRequestError', 'response_format of type json_schema is not supported by this server.');
    }
    const userText = String(lastMessage.content);
    const temperature = typeof body.temperature === 'number' ? body.temperature : 1;
    const seed = temperature === 0 ? 0 : typeof body.seed === 'number' ? body.seed : 1_000_000 + unseeded++;
    const answer =
      schemaSpec !== undefined && mode === 'honour'
        ? JSON.stringify(jsonForSchema(schemaSpec.schema, seededRandom(fnv1a32(`${seed}\u0000${userText}`))))
        : modelText(userText, { kind: 'response', instruction: userText }, seed);
    const tokens = tokenize(answer);
    const cut = tokens.length > maxTokens;
    const content = tokens.slice(0, maxTokens).join('');
    const promptTokens = texts.reduce((n, t) => n + tokenize(t ?? '').length + 4, 1);
    const completionTokens = cut ? maxTokens : tokens.length + 1;
    if (!(await slots.acquire(signal))) return;
    trackDecoding(1);
    try {
      await sleep(msPerToken * completionTokens, signal);
    } finally {
      trackDecoding(-1);
      slots.release();
    }
    if (signal.aborted) return;
    if (fault?.kind === 'malformed') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"id": "chatcmpl-broken", "choices": [');
      return;
    }
    return json(res, 200, {
      id: `chatcmpl-${fnv1a32(`${seed}${userText}`).toString(16)}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: cut ? 'length' : 'stop' }],
      usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    });
  }

  function trackDecoding(delta: number): void {
    stats.decoding += delta;
    stats.maxDecoding = Math.max(stats.maxDecoding, stats.decoding);
  }

  const server = http.createServer((req, res) => {
    stats.requests++;
    cors(req, res);
    const controller = new AbortController();
    open.add(controller);
    // The client went away (abort, reset, close()) before the answer ended: stop generating.
    res.on('close', () => {
      open.delete(controller);
      if (!res.writableFinished) controller.abort();
    });
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'OPTIONS') {
      stats.preflights++;
      if (options.allowedOrigin !== undefined && res.hasHeader('Access-Control-Allow-Origin')) {
        res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
        res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, Accept');
        res.setHeader('Access-Control-Max-Age', '600');
      }
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.method === 'GET' && path === '/v1/models') {
      stats.modelListings++;
      stats.headers.push(req.headers);
      if (!authorized(req)) return json(res, 401, { error: 'Unauthorized' });
      return json(res, 200, {
        object: 'list',
        data: models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'magpie-test', max_model_len: maxModelLen })),
      });
    }
    if (req.method === 'POST' && path === '/v1/completions') {
      stats.completions++;
      stats.inFlight++;
      stats.maxConcurrent = Math.max(stats.maxConcurrent, stats.inFlight);
      const finished = (): void => {
        stats.inFlight--;
        if (controller.signal.aborted) stats.disconnected++;
      };
      completions(req, res, controller.signal)
        .catch(() => {
          if (!res.headersSent) vllmError(res, 500, 'InternalServerError', 'test server failure');
          else res.destroy();
        })
        .finally(finished);
      return;
    }
    if (req.method === 'POST' && path === '/v1/chat/completions') {
      stats.chatCompletions++;
      stats.inFlight++;
      stats.maxConcurrent = Math.max(stats.maxConcurrent, stats.inFlight);
      chatCompletions(req, res, controller.signal)
        .catch(() => {
          if (!res.headersSent) vllmError(res, 500, 'InternalServerError', 'test server failure');
          else res.destroy();
        })
        .finally(() => {
          stats.inFlight--;
          if (controller.signal.aborted) stats.disconnected++;
        });
      return;
    }
    json(res, 404, { detail: 'Not Found' });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // Loopback only: the test server must never be reachable from another machine.
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stats,
    plan: (...more) => {
      faults.push(...more);
    },
    pendingFaults: () => faults.length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of open) c.abort();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The same as `start`, under a name that says what it starts. */
export const startOpenAITestServer = start;
