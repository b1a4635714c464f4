/**
 * TextEngine over one OpenAI-compatible server (vLLM, SGLang, llama.cpp server, Ollama, TGI): raw prompts go to
 * /v1/completions (never the chat endpoint, which would apply its own template), streamed as Server-Sent Events.
 * Runs in the page, in a worker and in Node 20: only fetch, AbortController, TextDecoder and ReadableStream.
 */
import type {
  CompleteJsonOptions,
  CompleteOptions,
  CompletionRequest,
  CompletionResult,
  CompletionUsage,
  FinishReason,
  JsonRequest,
  TextEngine,
} from '../core/engine';
import { classifyEngineError, EngineError, type EngineErrorKind } from '../core/errors';
import { SseParser } from '../core/sse';
import { cutAtStop, validateCompletionRequest, validateJsonRequest } from '../core/engine';

export interface BackoffOptions {
  /** Delay cap of the first retry; it doubles per retry. Default 500. */
  baseMs?: number;
  /** Upper bound of any backoff delay. Default 20000. */
  maxMs?: number;
}

export interface OpenAIEngineOptions {
  /** Server root, with or without `/v1` (e.g. http://localhost:8000 or http://localhost:8000/v1). */
  baseUrl: string;
  /** Sent only as `Authorization: Bearer …`; never logged, never put in an error message. */
  apiKey?: string;
  /** The `model` field of every request (an id from /v1/models). */
  model: string;
  /** Longest wait for the response headers and for each gap between stream chunks. Default 120000. */
  requestTimeoutMs?: number;
  /** Retries after the first attempt, on network errors, broken streams, timeouts, 429 and 500/502/503/504. Default 5. */
  maxRetries?: number;
  /** Exponential backoff with full jitter: delay = random() × min(maxMs, baseMs × 2^retry). */
  backoff?: BackoffOptions;
  /** Cap on a server's Retry-After. Default 60000. */
  maxRetryAfterMs?: number;
  /** Injectable for tests and for environments with their own fetch. */
  fetch?: typeof fetch;
  /** Injectable wait used for backoff; must resolve early (or reject) when the signal aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Injectable source of jitter in [0, 1). */
  random?: () => number;
  /**
   * Whether a TypeError from fetch may be a CORS refusal (true in a page or worker). Default: detected from the
   * global scope.
   */
  inBrowser?: boolean;
}

/** What listModels accepts; it is interactive, so by default it does not retry. */
export interface ListModelsOptions {
  signal?: AbortSignal;
  maxRetries?: number;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const DEFAULT_MAX_RETRIES = 5;
const DEFAULT_BACKOFF = { baseMs: 500, maxMs: 20_000 } as const;
const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;

/** Strips trailing slashes, a trailing `/v1` and a pasted endpoint path, so `{root}/v1/...` is always right. */
export function normaliseBaseUrl(baseUrl: string): string {
  let url = baseUrl.trim();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new EngineError({
      ...classifyEngineError({ kind: 'invalid-request', message: '' }),
      message: `"${url}" is not a valid server URL.`,
      advice: 'Enter the server address, e.g. http://localhost:8000 or http://localhost:8000/v1.',
    });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new EngineError({
      ...classifyEngineError({ kind: 'invalid-request', message: '' }),
      message: `"${url}" is not an http(s) URL.`,
      advice: 'Enter the server address, e.g. http://localhost:8000 or http://localhost:8000/v1.',
    });
  }
  // Credentials, query and fragment have no place in a base URL (and credentials must not leak into messages).
  parsed.username = '';
  parsed.password = '';
  parsed.search = '';
  parsed.hash = '';
  url = parsed.toString().replace(/\/+$/, '');
  url = url.replace(/\/(chat\/)?completions$/, '').replace(/\/models$/, '');
  url = url.replace(/\/+$/, '').replace(/\/v1$/, '');
  return url;
}

function detectBrowser(): boolean {
  const g = globalThis as { document?: unknown; WorkerGlobalScope?: unknown };
  return typeof g.document !== 'undefined' || typeof g.WorkerGlobalScope !== 'undefined';
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Maps the finish reasons servers use onto ours; TGI says eos_token / stop_sequence, others say eos. */
export function mapFinishReason(reason: unknown): FinishReason | undefined {
  if (typeof reason !== 'string' || reason === '') return undefined;
  switch (reason) {
    case 'length':
    case 'max_tokens':
    case 'model_length':
      return 'length';
    case 'abort':
    case 'cancelled':
      return 'abort';
    default:
      // 'stop', 'eos', 'eos_token', 'stop_sequence', 'end_turn' and anything new all mean the model stopped itself.
      return 'stop';
  }
}

/**
 * Retry-After as delta-seconds or an HTTP-date, in ms (undefined when absent or unreadable).
 * `now` is injectable so tests can check the date form exactly.
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const date = Date.parse(v);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Why an attempt failed, and whether another attempt may succeed. */
interface AttemptFailure {
  error: EngineError;
  retryable: boolean;
  retryAfterMs?: number;
  /** The failed attempt delivered deltas, so the caller must be told to start over. */
  emitted: boolean;
}

type AttemptOutcome = { ok: true; result: CompletionResult } | { ok: false; failure: AttemptFailure };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The error text of an error body in the shapes vLLM, OpenAI, llama.cpp, Ollama and TGI use. */
function errorMessageOf(body: string): string {
  const text = body.trim();
  if (text === '') return '';
  try {
    const parsed: unknown = JSON.parse(text);
    if (isRecord(parsed)) {
      const err = parsed.error;
      if (typeof err === 'string') return err;
      if (isRecord(err) && typeof err.message === 'string') return err.message;
      if (typeof parsed.message === 'string') return parsed.message;
      if (typeof parsed.detail === 'string') return parsed.detail;
      if (Array.isArray(parsed.detail)) return JSON.stringify(parsed.detail).slice(0, 500);
    }
  } catch {
    // Not JSON: use the text itself.
  }
  return text.slice(0, 500);
}

const CONTEXT_PATTERN = /context length|maximum context|context window|too long|exceeds? the (model'?s? )?(maximum|max|context)|max_model_len|prompt is too large/i;
const MODEL_PATTERN = /\bmodel\b/i;

export class OpenAICompatibleEngine implements TextEngine {
  /** The normalised server root (no trailing slash, no `/v1`). */
  readonly baseUrl: string;
  readonly model: string;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly backoff: Required<BackoffOptions>;
  private readonly maxRetryAfterMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private readonly inBrowser: boolean;

  constructor(options: OpenAIEngineOptions) {
    this.baseUrl = normaliseBaseUrl(options.baseUrl);
    this.model = options.model;
    this.apiKey = options.apiKey?.trim() ? options.apiKey.trim() : undefined;
    this.timeoutMs = options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRetries = Math.max(0, options.maxRetries ?? DEFAULT_MAX_RETRIES);
    this.backoff = {
      baseMs: options.backoff?.baseMs ?? DEFAULT_BACKOFF.baseMs,
      maxMs: options.backoff?.maxMs ?? DEFAULT_BACKOFF.maxMs,
    };
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
    // Bound to globalThis: browsers throw "Illegal invocation" when fetch is called as a method of another object.
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
    this.inBrowser = options.inBrowser ?? detectBrowser();
  }

  /** The JSON body sent to /v1/completions; optional fields are left out rather than sent empty. */
  requestBody(request: CompletionRequest): Record<string, unknown> {
    const body: Record<string, unknown> = {
      model: this.model,
      prompt: request.prompt,
      temperature: request.temperature,
      top_p: request.topP,
      max_tokens: request.maxTokens,
      stop: [...request.stop],
    };
    if (request.seed !== undefined) body.seed = request.seed;
    if (request.logitBias !== undefined && Object.keys(request.logitBias).length > 0) {
      body.logit_bias = { ...request.logitBias };
    }
    body.stream = true;
    body.stream_options = { include_usage: true };
    return body;
  }

  /**
   * The JSON body sent to /v1/chat/completions for constrained JSON: OpenAI's json_schema response format. vLLM
   * (guided decoding) and llama.cpp's server accept this shape; SGLang documents it too. A server that refuses it
   * answers 400 (the caller falls back to raw completions); one that ignores it is caught by the caller's parse.
   */
  jsonRequestBody(request: JsonRequest): Record<string, unknown> {
    const body: Record<string, unknown> = {
      model: this.model,
      messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
      response_format: {
        type: 'json_schema',
        json_schema: { name: request.schemaName ?? 'response', schema: request.schema, strict: true },
      },
      temperature: request.temperature,
      top_p: request.topP,
      max_tokens: request.maxTokens,
    };
    if (request.seed !== undefined) body.seed = request.seed;
    body.stream = false;
    return body;
  }

  /** Constrained JSON via POST /v1/chat/completions, not streamed; same retries and error classes as complete(). */
  async completeJson(request: JsonRequest, options: CompleteJsonOptions = {}): Promise<CompletionResult> {
    validateJsonRequest(request);
    const { signal } = options;
    if (signal?.aborted) return abortResult('', 0);
    const body = JSON.stringify(this.jsonRequestBody(request));
    for (let retry = 0; ; retry++) {
      const outcome = await this.attemptChatJson(body, signal);
      if (outcome.ok) return outcome.result;
      const { failure } = outcome;
      if (!failure.retryable || retry >= this.maxRetries) throw failure.error;
      await this.sleep(this.delayFor(retry, failure), signal);
      if (signal?.aborted) return abortResult('', 0);
    }
  }

  async complete(request: CompletionRequest, options: CompleteOptions = {}): Promise<CompletionResult> {
    validateCompletionRequest(request);
    const { signal } = options;
    if (signal?.aborted) return abortResult('', 0);
    const body = JSON.stringify(this.requestBody(request));

    for (let retry = 0; ; retry++) {
      const outcome = await this.attemptCompletion(body, request, options);
      if (outcome.ok) return outcome.result;
      const { failure } = outcome;
      if (!failure.retryable || retry >= this.maxRetries) throw failure.error;
      // Same prompt and seed give the same text, so the caller restarts from nothing and ends with the same result.
      if (failure.emitted) options.onRestart?.();
      await this.sleep(this.delayFor(retry, failure), signal);
      if (signal?.aborted) return abortResult('', 0);
    }
  }

  /** GET /v1/models → the ids the server serves. */
  async listModels(options: ListModelsOptions = {}): Promise<string[]> {
    const maxRetries = Math.max(0, options.maxRetries ?? 0);
    for (let retry = 0; ; retry++) {
      const outcome = await this.attemptListModels(options.signal);
      if (outcome.ok) return outcome.ids;
      const { failure } = outcome;
      if (!failure.retryable || retry >= maxRetries || options.signal?.aborted) throw failure.error;
      await this.sleep(this.delayFor(retry, failure), options.signal);
    }
  }

  private delayFor(retry: number, failure: AttemptFailure): number {
    if (failure.retryAfterMs !== undefined) return Math.min(failure.retryAfterMs, this.maxRetryAfterMs);
    const cap = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** retry);
    return Math.floor(this.random() * cap);
  }

  private headers(json: boolean): Record<string, string> {
    const h: Record<string, string> = { Accept: json ? 'application/json' : 'text/event-stream' };
    if (json) h['Content-Type'] = 'application/json';
    if (this.apiKey !== undefined) h.Authorization = `Bearer ${this.apiKey}`;
    return h;
  }

  private endpoint(path: string): string {
    return `${this.baseUrl}/v1/${path}`;
  }

  /** Never lets the API key reach a message, whatever the server echoes back. */
  private scrub(text: string): string {
    return this.apiKey === undefined ? text : text.split(this.apiKey).join('[api key]');
  }

  private error(kind: EngineErrorKind, message: string, advice?: string): EngineError {
    const base = classifyEngineError({ kind, message: '' });
    return new EngineError({ ...base, message: this.scrub(message), advice: advice ?? base.advice });
  }

  private networkFailure(err: unknown, what: string): AttemptFailure {
    const detail = err instanceof Error ? `${err.message}${causeText(err)}` : String(err);
    if (this.inBrowser && err instanceof TypeError) {
      return {
        error: this.error('cors', `${what}: network error or CORS (${detail}).`),
        retryable: true,
        emitted: false,
      };
    }
    return {
      error: this.error(
        'network',
        `${what}: ${detail}.`,
        `Could not reach the server at ${this.baseUrl}. Check that it is running and the address is right.`,
      ),
      retryable: true,
      emitted: false,
    };
  }

  /** Classifies a non-2xx answer; only 408, 429 and 500/502/503/504 are worth another attempt. */
  private httpFailure(status: number, bodyText: string, retryAfter: string | null, what: string): AttemptFailure {
    const serverMessage = errorMessageOf(bodyText);
    const message = `${what}: HTTP ${status}${serverMessage ? ` — ${serverMessage}` : ''}`;
    const fail = (kind: EngineErrorKind, retryable: boolean, advice?: string): AttemptFailure => ({
      error: this.error(kind, message, advice),
      retryable,
      emitted: false,
    });
    if (status === 401 || status === 403) return fail('unauthorized', false);
    if (status === 429) {
      const failure = fail('rate-limited', true);
      const ms = parseRetryAfter(retryAfter);
      if (ms !== undefined) failure.retryAfterMs = ms;
      return failure;
    }
    if (status === 408) return fail('timeout', true);
    if (status === 500 || status === 502 || status === 503 || status === 504) {
      const failure = fail('server-error', true);
      const ms = parseRetryAfter(retryAfter);
      if (ms !== undefined) failure.retryAfterMs = ms;
      return failure;
    }
    if (status >= 500) return fail('server-error', false);
    if (status === 400 || status === 413 || status === 422) {
      if (CONTEXT_PATTERN.test(serverMessage)) return fail('prompt-too-long', false);
      if (status === 400 && MODEL_PATTERN.test(serverMessage)) {
        return fail('unknown-model', false, this.unknownModelAdvice());
      }
      return fail('invalid-request', false, 'The server refused the request settings. Check the run settings.');
    }
    if (status === 404) {
      if (MODEL_PATTERN.test(serverMessage)) return fail('unknown-model', false, this.unknownModelAdvice());
      return fail(
        'invalid-request',
        false,
        `The server has no ${what.replace(/^\w+ /, '')} endpoint. Check the server address (it should serve /v1/completions).`,
      );
    }
    return fail('invalid-request', false, 'The server refused the request. Check the server address and settings.');
  }

  private unknownModelAdvice(): string {
    return `The server does not serve the model "${this.model}". Pick a model from the server’s list (/v1/models).`;
  }

  private async attemptListModels(
    signal: AbortSignal | undefined,
  ): Promise<{ ok: true; ids: string[] } | { ok: false; failure: AttemptFailure }> {
    const what = 'GET /v1/models';
    const call = new TimedCall(this.timeoutMs, signal);
    try {
      const answer = await this.fetchJson(call, this.endpoint('models'), { method: 'GET' }, what, false);
      if (answer.ok === 'aborted') return { ok: false, failure: this.callFailure(call, new Error('stopped'), what) };
      if (!answer.ok) return answer;
      const parsed = answer.parsed;
      const data = isRecord(parsed) ? parsed.data : undefined;
      if (!Array.isArray(data)) {
        return {
          ok: false,
          failure: {
            error: this.error('server-error', `${what}: the answer has no "data" list; is this an OpenAI-compatible server?`),
            retryable: false,
            emitted: false,
          },
        };
      }
      const ids = data.flatMap((m) => (isRecord(m) && typeof m.id === 'string' ? [m.id] : []));
      return { ok: true, ids };
    } finally {
      call.dispose();
    }
  }

  /**
   * One non-streamed request whose answer is JSON: the transport, HTTP-status and JSON-parse failures of listModels
   * and the chat call, in one place. 'aborted' means the caller stopped it.
   */
  private async fetchJson(
    call: TimedCall,
    url: string,
    init: { method: 'GET' | 'POST'; body?: string },
    what: string,
    badJsonRetryable: boolean,
  ): Promise<{ ok: true; parsed: unknown } | { ok: false; failure: AttemptFailure } | { ok: 'aborted' }> {
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method: init.method,
        headers: this.headers(init.method === 'POST'),
        ...(init.body === undefined ? {} : { body: init.body }),
        signal: call.signal,
      });
    } catch (err) {
      if (call.userAborted) return { ok: 'aborted' };
      return { ok: false, failure: this.callFailure(call, err, what) };
    }
    let text: string;
    try {
      call.touch();
      text = await response.text();
    } catch (err) {
      if (call.userAborted) return { ok: 'aborted' };
      if (!response.ok) return { ok: false, failure: this.httpFailure(response.status, '', response.headers.get('retry-after'), what) };
      return { ok: false, failure: this.callFailure(call, err, what) };
    }
    if (!response.ok) {
      return { ok: false, failure: this.httpFailure(response.status, text, response.headers.get('retry-after'), what) };
    }
    try {
      return { ok: true, parsed: JSON.parse(text) as unknown };
    } catch {
      return {
        ok: false,
        failure: { error: this.error('server-error', `${what}: the answer is not JSON.`), retryable: badJsonRetryable, emitted: false },
      };
    }
  }

  private callFailure(call: TimedCall, err: unknown, what: string): AttemptFailure {
    if (call.userAborted) {
      return { error: this.error('aborted', `${what}: stopped.`), retryable: false, emitted: false };
    }
    if (call.timedOut) {
      return {
        error: this.error('timeout', `${what}: no answer within ${Math.round(this.timeoutMs / 1000)} s.`),
        retryable: true,
        emitted: false,
      };
    }
    return this.networkFailure(err, what);
  }

  /** One attempt: POST, then read the event stream to the end (or to the first sign that it broke). */
  private async attemptCompletion(
    body: string,
    request: CompletionRequest,
    options: CompleteOptions,
  ): Promise<AttemptOutcome> {
    const what = 'POST /v1/completions';
    const { onDelta, signal } = options;
    const call = new TimedCall(this.timeoutMs, signal);
    const started = now();
    let accumulated = '';
    let textChunks = 0;
    let emitted = false;
    const aborted = (): AttemptOutcome => ({ ok: true, result: abortResult(cutAtStop(accumulated, request.stop), textChunks) });
    const broken = (failure: AttemptFailure): AttemptOutcome => ({ ok: false, failure: { ...failure, emitted } });

    try {
      let response: Response;
      try {
        response = await this.fetchImpl(this.endpoint('completions'), {
          method: 'POST',
          headers: this.headers(true),
          body,
          signal: call.signal,
        });
      } catch (err) {
        if (call.userAborted) return aborted();
        return broken(this.callFailure(call, err, what));
      }

      if (!response.ok) {
        let text = '';
        try {
          call.touch();
          text = await response.text();
        } catch {
          // The status alone still tells what happened; the body was only for the message.
          if (call.userAborted) return aborted();
        }
        return broken(this.httpFailure(response.status, text, response.headers.get('retry-after'), what));
      }

      const contentType = response.headers.get('content-type') ?? '';
      if (!contentType.includes('text/event-stream') || response.body === null) {
        // A server that ignores `stream: true` answers with one JSON completion; accept it.
        let text: string;
        try {
          call.touch();
          text = await response.text();
        } catch (err) {
          if (call.userAborted) return aborted();
          return broken(this.callFailure(call, err, what));
        }
        return this.fromJson(text, request, onDelta, started, what);
      }

      let finishReason: FinishReason | undefined;
      let usage: CompletionUsage | undefined;
      let firstTokenAt: number | undefined;
      let done = false;
      const parser = new SseParser();
      const reader = response.body.getReader();
      try {
        while (!done) {
          call.touch();
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await reader.read();
          } catch (err) {
            if (call.userAborted) return aborted();
            if (call.timedOut) return broken(this.callFailure(call, err, what));
            // The connection dropped mid-stream (reset, proxy timeout): the whole request is retried.
            const failure = this.networkFailure(err, `${what}: the stream broke`);
            return broken(failure);
          }
          const events = chunk.done ? parser.end() : parser.push(chunk.value);
          for (const event of events) {
            // Events already read in the same chunk must not reach the caller after it stopped.
            if (call.userAborted) return aborted();
            if (event.data === '[DONE]') {
              done = true;
              break;
            }
            let parsed: unknown;
            try {
              parsed = JSON.parse(event.data);
            } catch {
              return broken({
                error: this.error('server-error', `${what}: the server sent a malformed stream line.`),
                retryable: true,
                emitted,
              });
            }
            if (!isRecord(parsed)) continue;
            if (parsed.error !== undefined || parsed.object === 'error' || event.event === 'error') {
              const message = errorMessageOf(event.data) || 'error event in the stream';
              return broken({
                error: this.error('server-error', `${what}: the server reported an error mid-stream — ${message}`),
                retryable: true,
                emitted,
              });
            }
            const choices = parsed.choices;
            const choice: unknown = Array.isArray(choices) ? choices[0] : undefined;
            if (isRecord(choice)) {
              const text = choice.text;
              if (typeof text === 'string' && text !== '') {
                firstTokenAt ??= now();
                accumulated += text;
                textChunks++;
                emitted = true;
                onDelta?.(text);
              }
              finishReason = mapFinishReason(choice.finish_reason) ?? finishReason;
            }
            if (isRecord(parsed.usage)) usage = mapUsage(parsed.usage) ?? usage;
          }
          if (chunk.done) break;
        }
      } finally {
        if (!done) {
          // Stop the server's generation too: dropping the connection is how OpenAI-compatible servers cancel.
          call.abort();
        }
        reader.cancel().catch(() => undefined);
      }

      if (!done && finishReason === undefined) {
        // The body ended without [DONE] or a finish reason: the stream was cut short.
        return broken(this.networkFailure(new Error('the stream ended early'), `${what}: the stream broke`));
      }
      const end = now();
      return {
        ok: true,
        result: {
          text: cutAtStop(accumulated, request.stop),
          finishReason: finishReason ?? 'stop',
          usage: withTiming(usage ?? fallbackUsage(textChunks), started, firstTokenAt, end),
        },
      };
    } finally {
      call.dispose();
    }
  }

  /** One non-streamed chat attempt: POST, read the whole JSON answer, take choices[0].message.content. */
  private async attemptChatJson(body: string, signal: AbortSignal | undefined): Promise<AttemptOutcome> {
    const what = 'POST /v1/chat/completions';
    const call = new TimedCall(this.timeoutMs, signal);
    const started = now();
    try {
      const answer = await this.fetchJson(call, this.endpoint('chat/completions'), { method: 'POST', body }, what, true);
      if (answer.ok === 'aborted') return { ok: true, result: abortResult('', 0) };
      if (!answer.ok) return answer;
      const parsed = answer.parsed;
      const choices = isRecord(parsed) ? parsed.choices : undefined;
      const choice: unknown = Array.isArray(choices) ? choices[0] : undefined;
      const message = isRecord(choice) ? choice.message : undefined;
      const content = isRecord(message) ? message.content : undefined;
      if (!isRecord(parsed) || !isRecord(choice) || (typeof content !== 'string' && content !== null)) {
        return {
          ok: false,
          failure: { error: this.error('server-error', `${what}: the answer has no message content.`), retryable: false, emitted: false },
        };
      }
      const end = now();
      const usage = (isRecord(parsed.usage) ? mapUsage(parsed.usage) : undefined) ?? fallbackUsage(0);
      return {
        ok: true,
        result: {
          text: content ?? '',
          finishReason: mapFinishReason(choice.finish_reason) ?? 'stop',
          usage: withTiming(usage, started, undefined, end),
        },
      };
    } finally {
      call.dispose();
    }
  }

  private fromJson(
    text: string,
    request: CompletionRequest,
    onDelta: ((delta: string) => void) | undefined,
    started: number,
    what: string,
  ): AttemptOutcome {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return {
        ok: false,
        failure: { error: this.error('server-error', `${what}: the answer is neither a stream nor JSON.`), retryable: true, emitted: false },
      };
    }
    const choices = isRecord(parsed) ? parsed.choices : undefined;
    const choice: unknown = Array.isArray(choices) ? choices[0] : undefined;
    if (!isRecord(parsed) || !isRecord(choice) || typeof choice.text !== 'string') {
      return {
        ok: false,
        failure: { error: this.error('server-error', `${what}: the answer has no completion text.`), retryable: false, emitted: false },
      };
    }
    if (choice.text !== '') onDelta?.(choice.text);
    const end = now();
    const usage = (isRecord(parsed.usage) ? mapUsage(parsed.usage) : undefined) ?? fallbackUsage(choice.text ? 1 : 0);
    return {
      ok: true,
      result: {
        text: cutAtStop(choice.text, request.stop),
        finishReason: mapFinishReason(choice.finish_reason) ?? 'stop',
        usage: withTiming(usage, started, end, end),
      },
    };
  }
}

/** An AbortController that fires on the caller's signal or when no byte arrived within the timeout. */
class TimedCall {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  userAborted = false;
  timedOut = false;
  private readonly onUserAbort = (): void => {
    this.userAborted = true;
    this.controller.abort();
  };

  constructor(
    private readonly timeoutMs: number,
    private readonly userSignal: AbortSignal | undefined,
  ) {
    if (userSignal?.aborted) this.onUserAbort();
    else userSignal?.addEventListener('abort', this.onUserAbort, { once: true });
    this.touch();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Restarts the idle clock: called before waiting for headers and for each chunk. */
  touch(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (!Number.isFinite(this.timeoutMs) || this.timeoutMs <= 0) return;
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort();
    }, this.timeoutMs);
  }

  abort(): void {
    this.controller.abort();
  }

  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.userSignal?.removeEventListener('abort', this.onUserAbort);
  }
}

function now(): number {
  return performance.now();
}

function causeText(err: Error): string {
  const cause: unknown = err.cause;
  if (cause instanceof Error && cause.message && cause.message !== err.message) return ` (${cause.message})`;
  return '';
}

function abortResult(text: string, chunks: number): CompletionResult {
  return { text, finishReason: 'abort', usage: fallbackUsage(chunks) };
}

/**
 * When the server sends no usage (or the stream was stopped), the real counts are unknown: prompt tokens are
 * reported as 0 (so a BOS probe fails loudly instead of guessing) and completion tokens as the number of text
 * chunks, which is one per token on vLLM, SGLang and llama.cpp.
 */
function fallbackUsage(textChunks: number): CompletionUsage {
  return { promptTokens: 0, completionTokens: textChunks };
}

function mapUsage(u: Record<string, unknown>): CompletionUsage | undefined {
  const p = u.prompt_tokens;
  const c = u.completion_tokens;
  if (typeof p !== 'number' || typeof c !== 'number') return undefined;
  return { promptTokens: p, completionTokens: c };
}

/** Client-side timings: what a remote user waits for, network included. */
function withTiming(usage: CompletionUsage, started: number, firstTokenAt: number | undefined, end: number): CompletionUsage {
  const out: CompletionUsage = { ...usage, latencySeconds: (end - started) / 1000 };
  if (firstTokenAt !== undefined) {
    out.timeToFirstTokenSeconds = (firstTokenAt - started) / 1000;
    const decodeSeconds = (end - firstTokenAt) / 1000;
    if (decodeSeconds > 0 && usage.completionTokens > 1) {
      out.decodeTokensPerSecond = (usage.completionTokens - 1) / decodeSeconds;
    }
  }
  return out;
}
