import { classifyEngineError, EngineError } from './errors';

/**
 * The one interface the Magpie pipeline talks to. WebLLM (in a worker), a remote OpenAI-compatible server and the
 * scripted test engine all implement it, so nothing in src/core imports an engine.
 */

/** Why a completion ended: a stop token/string, the max_tokens limit, or an interrupt. */
export type FinishReason = 'stop' | 'length' | 'abort';

/** A raw text completion: the prompt is sent as is, no chat template is applied by the engine. */
export interface CompletionRequest {
  prompt: string;
  temperature: number;
  topP: number;
  maxTokens: number;
  /** Stop strings searched in the decoded text; the text is cut before the match. */
  stop: string[];
  /** Integer seed; same seed + same device gives the same output. */
  seed?: number;
  /** Token id (as a decimal string) → bias in [-100, 100]. */
  logitBias?: Record<string, number>;
}

export interface CompletionUsage {
  promptTokens: number;
  completionTokens: number;
  /** Engine-reported speeds and latencies, when the engine reports them. */
  prefillTokensPerSecond?: number;
  decodeTokensPerSecond?: number;
  timeToFirstTokenSeconds?: number;
  latencySeconds?: number;
}

export interface CompletionResult {
  /** The final text (accumulated, with any stop string cut off), not the concatenated deltas. */
  text: string;
  finishReason: FinishReason;
  usage: CompletionUsage;
}

export interface CompleteOptions {
  /** Called with each streamed piece of text, in order. */
  onDelta?: (delta: string) => void;
  /** Aborting ends the generation; the promise then resolves with finishReason 'abort'. */
  signal?: AbortSignal;
  /**
   * Called when the engine retries the whole request after deltas were already delivered (a remote stream broke):
   * discard what onDelta gave so far; the deltas that follow start the text again from the beginning.
   */
  onRestart?: () => void;
}

/** A JSON value, as a JSON Schema object is made of: it crosses worker and HTTP boundaries unchanged. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A JSON Schema (draft 2020-12 subset: type, properties, required, items, minItems/maxItems, minimum/maximum). */
export type JsonSchema = { [key: string]: JsonValue };

/** One message of a constrained-JSON chat request. */
export interface JsonChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * A chat request whose answer is constrained by the engine to JSON valid for `schema` (grammar-constrained decoding).
 * It is a chat request, not a raw prompt, because WebLLM offers response_format only on chat.completions (and servers
 * do on /v1/chat/completions): the engine applies its own chat template. That is acceptable for side tasks such as
 * judging, which are not Magpie data; pass a system message first, or WebLLM injects its default system prompt.
 */
export interface JsonRequest {
  messages: JsonChatMessage[];
  schema: JsonSchema;
  /** A short name for the schema (servers' json_schema.name); default 'response'. */
  schemaName?: string;
  temperature: number;
  topP: number;
  maxTokens: number;
  /** Integer seed; same seed + same device gives the same output. */
  seed?: number;
}

/** Constrained JSON is not streamed (a partial JSON object is not worth showing), so only cancellation remains. */
export interface CompleteJsonOptions {
  /** Aborting ends the generation; the promise then resolves with finishReason 'abort'. */
  signal?: AbortSignal;
}

export interface TextEngine {
  complete(request: CompletionRequest, options?: CompleteOptions): Promise<CompletionResult>;
  /**
   * Optional: grammar-constrained JSON through the engine's chat API. `text` is the JSON answer (valid for the
   * schema when finishReason is 'stop', if the engine honoured the schema: callers still validate it).
   * Absent when the engine has no such API; callers then use raw completions.
   */
  completeJson?(request: JsonRequest, options?: CompleteJsonOptions): Promise<CompletionResult>;
}

/** What a loaded engine told us about itself at load time. */
export interface EngineFacts {
  /** Engine kind and model id, for the record's `output_generator` / `engine` fields. */
  engine: 'webllm' | 'openai-compatible' | 'scripted';
  modelId: string;
  /** Measured with a 1-token probe: does the engine put a BOS token in front of every raw prompt itself? */
  addsBos: boolean;
  contextWindow?: number;
}

/**
 * The 1-token BOS probe: complete a prompt that is exactly one special token and read usage.prompt_tokens.
 * 1 means the engine adds nothing; 2 means it prepends BOS (or another system prefix token) itself.
 */
export async function probeAddsBos(engine: TextEngine, oneTokenPrompt: string): Promise<boolean> {
  const result = await engine.complete({
    prompt: oneTokenPrompt,
    temperature: 0,
    topP: 1,
    maxTokens: 1,
    stop: [],
  });
  const n = result.usage.promptTokens;
  if (n === 1) return false;
  if (n === 2) return true;
  throw new Error(
    `BOS probe: a one-token prompt was counted as ${n} tokens; cannot tell whether the engine adds BOS.`,
  );
}

function invalid(message: string): EngineError {
  return new EngineError(classifyEngineError({ kind: 'invalid-request', message }));
}

/** Rejects settings WebLLM would reject (or silently misread) before anything is sent. */
export function validateCompletionRequest(req: CompletionRequest): void {
  if (typeof req.prompt !== 'string') throw invalid('The prompt must be a string.');
  if (req.seed !== undefined && !Number.isInteger(req.seed)) {
    throw invalid(`The seed must be an integer (got ${String(req.seed)}).`);
  }
  if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) {
    throw invalid(`Max tokens must be a whole number of at least 1 (got ${String(req.maxTokens)}).`);
  }
  if (!(req.temperature >= 0) || !Number.isFinite(req.temperature)) {
    throw invalid(`Temperature must be 0 or more (got ${String(req.temperature)}).`);
  }
  if (!(req.topP > 0 && req.topP <= 1)) {
    throw invalid(`Top-p must be greater than 0 and at most 1 (got ${String(req.topP)}).`);
  }
  if (!Array.isArray(req.stop) || req.stop.some((s) => typeof s !== 'string' || s === '')) {
    throw invalid('Stop strings must be non-empty strings.');
  }
  for (const [id, bias] of Object.entries(req.logitBias ?? {})) {
    if (!/^\d+$/.test(id)) throw invalid(`Logit bias keys must be token ids (got "${id}").`);
    if (!(bias >= -100 && bias <= 100)) throw invalid(`Logit bias for token ${id} must be in [-100, 100].`);
  }
}

/** Rejects constrained-JSON requests WebLLM would reject (message order, seed, limits) before anything is sent. */
export function validateJsonRequest(req: JsonRequest): void {
  const { messages } = req;
  if (!Array.isArray(messages) || messages.length === 0) throw invalid('A JSON request needs at least one message.');
  messages.forEach((m, i) => {
    if (m.role !== 'system' && m.role !== 'user' && m.role !== 'assistant') throw invalid(`Message ${i + 1} has an unknown role.`);
    if (typeof m.content !== 'string') throw invalid(`Message ${i + 1} has no text.`);
    if (m.role === 'system' && i !== 0) throw invalid('A system message may only come first.');
  });
  if (messages[messages.length - 1]?.role !== 'user') throw invalid('The last message of a JSON request must be a user message.');
  if (typeof req.schema !== 'object' || req.schema === null || Array.isArray(req.schema)) {
    throw invalid('The JSON schema must be an object.');
  }
  validateCompletionRequest({
    prompt: '',
    temperature: req.temperature,
    topP: req.topP,
    maxTokens: req.maxTokens,
    stop: [],
    ...(req.seed !== undefined ? { seed: req.seed } : {}),
  });
}

/** Cuts at the earliest stop string, as an engine does with the request's stop strings. */
export function cutAtStop(text: string, stop: readonly string[]): string {
  let cut = text.length;
  for (const s of stop) {
    if (s === '') continue;
    const i = text.indexOf(s);
    if (i !== -1 && i < cut) cut = i;
  }
  return text.slice(0, cut);
}
