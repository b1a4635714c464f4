import { describe, expect, it } from 'vitest';
import type { Completion, CompletionCreateParamsStreaming, InitProgressCallback } from '@mlc-ai/web-llm';
import type { CompletionRequest } from '../../src/core/engine';
import { EngineError } from '../../src/core/errors';
import { ScriptedMLCEngine } from '../../src/engine/scripted-mlc-engine';
import { cutAtStop } from '../../src/core/engine';
import { WebLLMTextEngine, type MLCEngineLike } from '../../src/engine/webllm-adapter';

const USER = '<|start_header_id|>user<|end_header_id|>\n\n';
const ASSISTANT = '<|start_header_id|>assistant<|end_header_id|>\n\n';

function named(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

interface FakeScript {
  deltas: string[];
  finish?: 'stop' | 'length';
  usage?: Completion['usage'];
  /** create() rejects with this. */
  createError?: Error;
  /** The stream throws this after yielding `index` delta chunks. */
  streamError?: { index: number; error: Error };
  /** create() resolves only when this promise does (to abort "during setup"). */
  createGate?: Promise<void>;
  /** When set, the fake has getMessage() and returns this (WebLLM's own, stop-cut message). */
  message?: string;
}

/** Records what the adapter sends and streams like WebLLM: a new request clears the interrupt flag. */
class RecordingEngine implements MLCEngineLike {
  readonly requests: CompletionCreateParamsStreaming[] = [];
  interruptCalls = 0;
  readonly events: string[] = [];
  private interruptFlag = false;
  readonly completions: MLCEngineLike['completions'];
  getMessage?: () => Promise<string>;

  constructor(private readonly script: FakeScript) {
    this.completions = {
      create: async (request) => {
        this.requests.push(request);
        if (script.createGate) await script.createGate;
        if (script.createError) throw script.createError;
        return this.stream();
      },
    };
    const message = script.message;
    if (message !== undefined) {
      this.getMessage = async () => {
        this.events.push('getMessage');
        return message;
      };
    }
  }

  private async *stream(): AsyncGenerator<Completion> {
    this.interruptFlag = false;
    const base = { id: 'x', created: 0, model: 'fake', object: 'text_completion' as const };
    let finish: 'stop' | 'length' | 'abort' = this.script.finish ?? 'stop';
    for (let i = 0; i < this.script.deltas.length; i++) {
      if (i > 0 && this.interruptFlag) {
        finish = 'abort';
        break;
      }
      if (this.script.streamError && this.script.streamError.index === i) throw this.script.streamError.error;
      yield { ...base, choices: [{ text: this.script.deltas[i] ?? '', finish_reason: null, index: 0 }] };
    }
    yield { ...base, choices: [{ text: '', finish_reason: finish, index: 0 }] };
    if (this.script.usage) yield { ...base, choices: [], usage: this.script.usage };
    this.events.push('stream-end');
  }

  async interruptGenerate(): Promise<void> {
    this.interruptCalls++;
    this.interruptFlag = true;
  }
  async reload(): Promise<void> {}
  async unload(): Promise<void> {}
  setInitProgressCallback(_cb: InitProgressCallback): void {}
}

const request = (over: Partial<CompletionRequest> = {}): CompletionRequest => ({
  prompt: `<|begin_of_text|>${USER}`,
  temperature: 1,
  topP: 0.99,
  maxTokens: 64,
  stop: ['<|eot_id|>', 'assistant'],
  ...over,
});

const usage = (over: Partial<NonNullable<Completion['usage']>> = {}): NonNullable<Completion['usage']> => ({
  prompt_tokens: 5,
  completion_tokens: 3,
  total_tokens: 8,
  extra: {
    e2e_latency_s: 0.5,
    prefill_tokens_per_s: 400,
    decode_tokens_per_s: 31.5,
    time_to_first_token_s: 0.02,
    time_per_output_token_s: 0.03,
  },
  ...over,
});

async function loadedScripted(options: ConstructorParameters<typeof ScriptedMLCEngine>[0] = {}): Promise<ScriptedMLCEngine> {
  const engine = new ScriptedMLCEngine({ tokenDelayMs: 0, ...options });
  await engine.reload('scripted:Llama-3-8B-Instruct-q4f32_1-MLC');
  return engine;
}

describe('WebLLMTextEngine against a recording fake', () => {
  it('sends exactly the raw completion request WebLLM expects', async () => {
    const fake = new RecordingEngine({ deltas: ['Hi'] });
    await new WebLLMTextEngine(fake).complete(request({ seed: 42, logitBias: { '2': -100, '567': -100 } }));
    expect(fake.requests).toStrictEqual([
      {
        prompt: `<|begin_of_text|>${USER}`,
        temperature: 1,
        top_p: 0.99,
        max_tokens: 64,
        stop: ['<|eot_id|>', 'assistant'],
        seed: 42,
        logit_bias: { '2': -100, '567': -100 },
        stream: true,
        stream_options: { include_usage: true },
      },
    ]);
  });

  it('leaves out seed and logit_bias when they are not set', async () => {
    const fake = new RecordingEngine({ deltas: ['Hi'] });
    await new WebLLMTextEngine(fake).complete(request());
    const sent = fake.requests[0];
    expect(sent).toBeDefined();
    expect(Object.keys(sent ?? {}).sort()).toEqual(
      ['max_tokens', 'prompt', 'stop', 'stream', 'stream_options', 'temperature', 'top_p'].sort(),
    );
  });

  it('streams deltas in order and returns their concatenation', async () => {
    const fake = new RecordingEngine({ deltas: ['How', ' do', ' I', ' bake', '?'], usage: usage() });
    const seen: string[] = [];
    const result = await new WebLLMTextEngine(fake).complete(request(), { onDelta: (d) => seen.push(d) });
    expect(seen).toEqual(['How', ' do', ' I', ' bake', '?']);
    expect(result.text).toBe('How do I bake?');
    expect(result.finishReason).toBe('stop');
  });

  it('takes the final text from the engine when a multi-token stop string completes', async () => {
    // WebLLM streams the first pieces of the stop string, then an empty delta when the last piece completes it.
    const fake = new RecordingEngine({ deltas: ['Answer', ' here', '\n\nUs', ''], message: 'Answer here', usage: usage() });
    const seen: string[] = [];
    const result = await new WebLLMTextEngine(fake).complete(request({ stop: ['\n\nUser:'] }), {
      onDelta: (d) => seen.push(d),
    });
    expect(seen.join('')).toBe('Answer here\n\nUs');
    expect(result.text).toBe('Answer here');
    // Read before the stream ends, i.e. while WebLLM still holds the model's lock.
    expect(fake.events).toEqual(['getMessage', 'stream-end']);
  });

  it('without getMessage, cuts the accumulated text at a stop string spread over several deltas', async () => {
    const fake = new RecordingEngine({ deltas: ['Answer', ' here', '\n\nUs', 'er', ''], usage: usage() });
    const seen: string[] = [];
    const result = await new WebLLMTextEngine(fake).complete(request({ stop: ['\n\nUser'] }), {
      onDelta: (d) => seen.push(d),
    });
    expect(seen.join('')).toBe('Answer here\n\nUser');
    expect(result.text).toBe('Answer here');
  });

  it('maps finish_reason length and the usage chunk', async () => {
    const fake = new RecordingEngine({ deltas: ['a', 'b'], finish: 'length', usage: usage({ prompt_tokens: 17, completion_tokens: 2 }) });
    const result = await new WebLLMTextEngine(fake).complete(request());
    expect(result.finishReason).toBe('length');
    expect(result.usage).toEqual({
      promptTokens: 17,
      completionTokens: 2,
      prefillTokensPerSecond: 400,
      decodeTokensPerSecond: 31.5,
      timeToFirstTokenSeconds: 0.02,
      latencySeconds: 0.5,
    });
  });

  it('interrupts on abort mid-stream and reports abort', async () => {
    const fake = new RecordingEngine({ deltas: ['one', ' two', ' three', ' four', ' five'], usage: usage() });
    const controller = new AbortController();
    const seen: string[] = [];
    const result = await new WebLLMTextEngine(fake).complete(request(), {
      signal: controller.signal,
      onDelta: (d) => {
        seen.push(d);
        if (seen.length === 2) controller.abort();
      },
    });
    expect(fake.interruptCalls).toBe(1);
    expect(result.finishReason).toBe('abort');
    expect(seen).toEqual(['one', ' two']);
    expect(result.text).toBe('one two');
  });

  it('sends nothing when the signal is already aborted', async () => {
    const fake = new RecordingEngine({ deltas: ['x'] });
    const controller = new AbortController();
    controller.abort();
    const result = await new WebLLMTextEngine(fake).complete(request(), { signal: controller.signal });
    expect(fake.requests).toHaveLength(0);
    expect(fake.interruptCalls).toBe(0);
    expect(result).toEqual({ text: '', finishReason: 'abort', usage: { promptTokens: 0, completionTokens: 0 } });
  });

  it('re-sends the interrupt once the request has started when the abort came during setup', async () => {
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const fake = new RecordingEngine({ deltas: ['a', 'b', 'c', 'd'], createGate: gate, usage: usage() });
    const controller = new AbortController();
    const pending = new WebLLMTextEngine(fake).complete(request(), { signal: controller.signal });
    await Promise.resolve();
    controller.abort();
    open();
    const result = await pending;
    // The fake clears the flag when the stream starts (as WebLLM does), so only a later interrupt stops it.
    expect(fake.interruptCalls).toBe(1);
    expect(result.text).toBe('a');
    expect(result.finishReason).toBe('abort');
  });

  it.each([
    ['DeviceLostError', 'The WebGPU device was lost while loading the model.', 'device-lost'],
    ['ContextWindowSizeExceededError', 'Prompt tokens exceed context window size: 5000; 4096', 'context-window'],
    ['Error', 'Unable to find a compatible GPU. This issue might be because your computer doesn’t have a GPU', 'no-adapter'],
  ])('classifies %s from create() as %s', async (name, message, kind) => {
    const fake = new RecordingEngine({ deltas: [], createError: named(name, message) });
    const err = await new WebLLMTextEngine(fake).complete(request()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).kind).toBe(kind);
    expect((err as EngineError).message).toBe(message);
    expect(((err as EngineError).cause as Error).name).toBe(name);
  });

  it('classifies an error thrown in the middle of the stream', async () => {
    const fake = new RecordingEngine({ deltas: ['a', 'b', 'c'], streamError: { index: 2, error: named('DeviceLostError', 'lost') } });
    const seen: string[] = [];
    const err = await new WebLLMTextEngine(fake).complete(request(), { onDelta: (d) => seen.push(d) }).catch((e: unknown) => e);
    expect(seen).toEqual(['a', 'b']);
    expect((err as EngineError).kind).toBe('device-lost');
  });

  it.each([
    [{ seed: 1.5 }, /seed must be an integer/i],
    [{ maxTokens: 0 }, /max tokens/i],
    [{ maxTokens: 2.5 }, /max tokens/i],
    [{ temperature: -0.1 }, /temperature/i],
    [{ topP: 0 }, /top-p/i],
    [{ topP: 1.01 }, /top-p/i],
    [{ logitBias: { '2': -101 } }, /logit bias/i],
  ] as Array<[Partial<CompletionRequest>, RegExp]>)('rejects %o before sending anything', async (over, message) => {
    const fake = new RecordingEngine({ deltas: ['x'] });
    const err = await new WebLLMTextEngine(fake).complete(request(over)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).kind).toBe('invalid-request');
    expect((err as EngineError).message).toMatch(message);
    expect(fake.requests).toHaveLength(0);
  });

  it('accepts the boundary values temperature 0 and top-p 1', async () => {
    const fake = new RecordingEngine({ deltas: ['x'] });
    await expect(new WebLLMTextEngine(fake).complete(request({ temperature: 0, topP: 1, maxTokens: 1 }))).resolves.toMatchObject({
      text: 'x',
    });
  });
});

describe('cutAtStop', () => {
  it('cuts at the earliest of several stop strings', () => {
    expect(cutAtStop('abc<|eot_id|>def assistant', ['assistant', '<|eot_id|>'])).toBe('abc');
    expect(cutAtStop('no stops here', ['\n'])).toBe('no stops here');
  });
});

describe('WebLLMTextEngine against ScriptedMLCEngine', () => {
  it('writes an instruction for the pre-query template and reports usage', async () => {
    const engine = await loadedScripted();
    const deltas: string[] = [];
    const result = await new WebLLMTextEngine(engine).complete(request({ seed: 7 }), { onDelta: (d) => deltas.push(d) });
    expect(result.finishReason).toBe('stop');
    expect(result.text.length).toBeGreaterThan(10);
    expect(result.text).not.toContain('<|eot_id|>');
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.join('')).toBe(result.text);
    // <|begin_of_text|>, <|start_header_id|>, "user", <|end_header_id|>, "\n\n": 5, as Llama-3's tokenizer counts.
    expect(result.usage.promptTokens).toBe(5);
    expect(result.usage.completionTokens).toBe(deltas.length + 1);
    expect(result.usage.decodeTokensPerSecond).toBeGreaterThan(0);
  });

  it('cuts at a multi-token stop string even though its first pieces were streamed', async () => {
    const engine = await loadedScripted();
    const prompt = `<|begin_of_text|>${USER}Why is the sky blue?<|eot_id|>${ASSISTANT}`;
    const deltas: string[] = [];
    const result = await new WebLLMTextEngine(engine).complete(request({ prompt, stop: [', so I will'] }), {
      onDelta: (d) => deltas.push(d),
    });
    const streamed = deltas.join('');
    expect(result.finishReason).toBe('stop');
    expect(result.text).toMatch(/You asked about "Why is the sky blue"$/);
    expect(streamed.startsWith(result.text)).toBe(true);
    expect(streamed.length).toBeGreaterThan(result.text.length);
  });

  it('stops at max tokens with finish reason length', async () => {
    const engine = await loadedScripted();
    const result = await new WebLLMTextEngine(engine).complete(request({ maxTokens: 3, seed: 1 }));
    expect(result.finishReason).toBe('length');
    expect(result.usage.completionTokens).toBe(3);
  });

  it('aborts mid-stream through interruptGenerate', async () => {
    const engine = await loadedScripted();
    const prompt = `<|begin_of_text|>${USER}Explain how a hash map handles collisions.<|eot_id|>${ASSISTANT}`;
    const controller = new AbortController();
    let n = 0;
    const result = await new WebLLMTextEngine(engine).complete(request({ prompt, stop: ['<|eot_id|>'] }), {
      signal: controller.signal,
      onDelta: () => {
        if (++n === 4) controller.abort();
      },
    });
    expect(result.finishReason).toBe('abort');
    expect(result.usage.completionTokens).toBe(4);
  });

  it('turns a lost device into device-lost, then model-not-loaded on the next call', async () => {
    const engine = await loadedScripted({ failAfterTokens: { n: 2, error: named('DeviceLostError', 'lost') } });
    const text = new WebLLMTextEngine(engine);
    await expect(text.complete(request())).rejects.toMatchObject({ kind: 'device-lost' });
    await expect(text.complete(request())).rejects.toMatchObject({ kind: 'model-not-loaded' });
  });

  it('rejects a prompt longer than the context window', async () => {
    const engine = await loadedScripted({ contextWindow: 8 });
    const prompt = `<|begin_of_text|>${USER}one two three four five<|eot_id|>${ASSISTANT}`;
    await expect(new WebLLMTextEngine(engine).complete(request({ prompt }))).rejects.toMatchObject({ kind: 'context-window' });
  });
});
