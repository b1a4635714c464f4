import type { CompleteOptions, CompletionRequest, CompletionResult, TextEngine } from '../../src/core/engine';

export interface Scripted {
  text: string;
  finishReason?: CompletionResult['finishReason'];
}

/**
 * A TextEngine that answers from a queue of scripted results and records every request.
 * `reply` may be a function of the request, to answer instruction and response prompts differently.
 */
export class QueueEngine implements TextEngine {
  readonly requests: CompletionRequest[] = [];
  constructor(private readonly reply: (req: CompletionRequest, n: number) => Scripted | Error) {}

  async complete(request: CompletionRequest, options: CompleteOptions = {}): Promise<CompletionResult> {
    this.requests.push(request);
    const r = this.reply(request, this.requests.length);
    if (r instanceof Error) throw r;
    if (options.signal?.aborted) {
      return { text: '', finishReason: 'abort', usage: { promptTokens: 1, completionTokens: 0 } };
    }
    for (const piece of r.text.match(/\S+\s*/g) ?? []) options.onDelta?.(piece);
    const words = r.text.split(/\s+/).filter(Boolean).length;
    return {
      text: r.text,
      finishReason: r.finishReason ?? 'stop',
      usage: { promptTokens: request.prompt.length, completionTokens: words + 1 },
    };
  }
}
