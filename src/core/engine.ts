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

export interface TextEngine {
  complete(request: CompletionRequest, options?: CompleteOptions): Promise<CompletionResult>;
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
