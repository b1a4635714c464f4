/**
 * TextEngine over WebLLM's raw text completion (`engine.completions.create`): no chat template, streamed deltas,
 * usage from the final chunk. Runs wherever the MLCEngine lives (our dedicated worker).
 */
import type {
  ChatCompletion,
  ChatCompletionRequestNonStreaming,
  ChatOptions,
  Completion,
  CompletionCreateParamsStreaming,
  InitProgressCallback,
} from '@mlc-ai/web-llm';
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
import { classifyEngineError, EngineError, toEngineError } from '../core/errors';
import { cutAtStop, validateCompletionRequest, validateJsonRequest } from '../core/engine';

/** The part of web-llm's MLCEngine this app uses; the scripted test engine implements the same shape. */
export interface MLCEngineLike {
  completions: {
    create(request: CompletionCreateParamsStreaming): Promise<AsyncIterable<Completion>>;
  };
  /** Sets a flag checked before each decode step; a request that starts later clears it. */
  interruptGenerate(): Promise<void>;
  reload(modelId: string, chatOpts?: ChatOptions): Promise<void>;
  unload(): Promise<void>;
  setInitProgressCallback(callback: InitProgressCallback): void;
  /** The current request's text as the engine holds it (stop string already cut); see WebLLMTextEngine. */
  getMessage?(): Promise<string>;
  /**
   * WebLLM's chat API, used only for grammar-constrained JSON (response_format exists only there). Optional: an
   * engine without it has no constrained JSON and callers fall back to raw completions.
   */
  chat?: {
    completions: {
      create(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion>;
    };
  };
}

/** The request exactly as WebLLM receives it; optional fields are left out rather than sent as undefined. */
export function toWebLLMRequest(req: CompletionRequest): CompletionCreateParamsStreaming {
  const out: CompletionCreateParamsStreaming = {
    prompt: req.prompt,
    temperature: req.temperature,
    top_p: req.topP,
    max_tokens: req.maxTokens,
    stop: [...req.stop],
    stream: true,
    stream_options: { include_usage: true },
  };
  if (req.seed !== undefined) out.seed = req.seed;
  if (req.logitBias !== undefined && Object.keys(req.logitBias).length > 0) out.logit_bias = { ...req.logitBias };
  return out;
}

/**
 * The chat request for constrained JSON: WebLLM takes the schema as a string, and compiles it to a grammar (xgrammar).
 * Our messages start with our own system message, so WebLLM injects no default system prompt.
 */
export function toWebLLMJsonRequest(req: JsonRequest): ChatCompletionRequestNonStreaming {
  const out: ChatCompletionRequestNonStreaming = {
    messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
    response_format: { type: 'json_object', schema: JSON.stringify(req.schema) },
    temperature: req.temperature,
    top_p: req.topP,
    max_tokens: req.maxTokens,
    stream: false,
  };
  if (req.seed !== undefined) out.seed = req.seed;
  return out;
}

/** Usage as completions and chat completions both report it (chat adds grammar timings we do not need). */
interface UsageLike {
  prompt_tokens: number;
  completion_tokens: number;
  extra?: Partial<NonNullable<Completion['usage']>['extra']>;
}

function mapUsage(u: UsageLike): CompletionUsage {
  const usage: CompletionUsage = { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens };
  const x: Partial<NonNullable<Completion['usage']>['extra']> = u.extra ?? {};
  if (Number.isFinite(x.prefill_tokens_per_s)) usage.prefillTokensPerSecond = x.prefill_tokens_per_s;
  if (Number.isFinite(x.decode_tokens_per_s)) usage.decodeTokensPerSecond = x.decode_tokens_per_s;
  if (Number.isFinite(x.time_to_first_token_s)) usage.timeToFirstTokenSeconds = x.time_to_first_token_s;
  if (Number.isFinite(x.e2e_latency_s)) usage.latencySeconds = x.e2e_latency_s;
  return usage;
}

function asFinishReason(r: string | null | undefined): FinishReason | undefined {
  return r === 'stop' || r === 'length' || r === 'abort' ? r : undefined;
}

/** Classifies while keeping the original error (and its WebLLM name) as `cause`, for the worker boundary. */
export function engineErrorFrom(err: unknown): EngineError {
  const e = toEngineError(err);
  if (e !== err && e.cause === undefined) e.cause = err;
  return e;
}

export class WebLLMTextEngine implements TextEngine {
  constructor(private readonly engine: MLCEngineLike) {}

  async complete(request: CompletionRequest, options: CompleteOptions = {}): Promise<CompletionResult> {
    validateCompletionRequest(request);
    const { onDelta, signal } = options;
    // An interrupt sent before WebLLM starts the request is cleared by it, so an aborted call sends nothing.
    if (signal?.aborted) return { text: '', finishReason: 'abort', usage: { promptTokens: 0, completionTokens: 0 } };

    let aborted = false;
    let streaming = false;
    const onAbort = (): void => {
      aborted = true;
      if (streaming) void this.engine.interruptGenerate().catch(() => undefined);
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    let accumulated = '';
    let engineText: string | undefined;
    let finishReason: FinishReason | undefined;
    let usage: CompletionUsage = { promptTokens: 0, completionTokens: 0 };
    try {
      const stream = await this.engine.completions.create(toWebLLMRequest(request));
      for await (const chunk of stream) {
        if (!streaming) {
          streaming = true;
          // The abort came while the request was being set up: WebLLM has now started it, so the flag sticks.
          if (aborted) await this.engine.interruptGenerate();
        }
        const choice = chunk.choices[0];
        if (choice) {
          if (choice.text) {
            accumulated += choice.text;
            onDelta?.(choice.text);
          }
          const reason = asFinishReason(choice.finish_reason);
          if (reason) {
            finishReason = reason;
            // Read while the final chunk holds WebLLM's per-model lock, before another request can reset it.
            if (this.engine.getMessage) engineText = await this.engine.getMessage();
          }
        }
        if (chunk.usage) usage = mapUsage(chunk.usage);
      }
    } catch (err) {
      throw engineErrorFrom(err);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return {
      // When a multi-token stop string completes, WebLLM cuts its message but never streams the completing piece,
      // so the deltas end with a dangling start of the stop string: the engine's own message is the final text.
      text: cutAtStop(engineText ?? accumulated, request.stop),
      finishReason: aborted ? 'abort' : (finishReason ?? 'stop'),
      usage,
    };
  }

  /**
   * Grammar-constrained JSON through WebLLM's chat API, not streamed. An abort interrupts the generation; as with
   * complete(), an interrupt that arrives before WebLLM started the request is lost, so that call runs to its end
   * (bounded by maxTokens) and is still reported as 'abort'.
   */
  async completeJson(request: JsonRequest, options: CompleteJsonOptions = {}): Promise<CompletionResult> {
    validateJsonRequest(request);
    const chat = this.engine.chat;
    if (!chat) {
      throw new EngineError({
        ...classifyEngineError({ kind: 'invalid-request', message: '' }),
        message: 'This engine has no chat API, so it cannot constrain answers to JSON.',
      });
    }
    const { signal } = options;
    if (signal?.aborted) return { text: '', finishReason: 'abort', usage: { promptTokens: 0, completionTokens: 0 } };
    let aborted = false;
    const onAbort = (): void => {
      aborted = true;
      void this.engine.interruptGenerate().catch(() => undefined);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    let reply: ChatCompletion;
    try {
      reply = await chat.completions.create(toWebLLMJsonRequest(request));
    } catch (err) {
      throw engineErrorFrom(err);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    const choice = reply.choices[0];
    // 'tool_calls' cannot happen without tools; anything but length/abort means the model stopped itself.
    const finish = asFinishReason(choice?.finish_reason) ?? 'stop';
    return {
      text: choice?.message.content ?? '',
      finishReason: aborted ? 'abort' : finish,
      usage: reply.usage ? mapUsage(reply.usage) : { promptTokens: 0, completionTokens: 0 },
    };
  }
}
