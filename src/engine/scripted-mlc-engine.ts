/**
 * A deterministic stand-in for web-llm's MLCEngine, for unit tests and the e2e build only (no GPU, no weights).
 * It mimics the behaviour the app depends on: raw-prompt completions streamed token by token, stop strings,
 * max_tokens, interrupts that a new request clears, usage chunks, progress texts during reload and named errors.
 * For a prompt ending in the Llama-3 user header it writes an instruction; after the assistant header, a response.
 * Its chat API (non-streamed) answers response_format json_object with a JSON value valid for the schema; for a judge
 * request ("[Candidate i]" blocks) the scores rank the distinct candidate texts by a hash, so best and worst differ.
 */
import type {
  ChatCompletion,
  ChatCompletionMessageParam,
  ChatCompletionRequestNonStreaming,
  ChatOptions,
  Completion,
  CompletionCreateParamsStreaming,
  InitProgressCallback,
} from '@mlc-ai/web-llm';
import type { MLCEngineLike } from './webllm-adapter';
import { fnv1a32 } from '../core/seed';

export interface ScriptedEngineOptions {
  /** Delay per generated token in ms: a fixed number, or [min, max] picked per token. Default [0, 2]. */
  tokenDelayMs?: number | [number, number];
  /** Count a BOS token in front of every prompt, like engines that prepend it themselves. */
  addsBos?: boolean;
  /** Default 4096; longer prompts throw ContextWindowSizeExceededError. */
  contextWindow?: number;
  /** reload() reports some progress, then throws this. */
  failOnLoad?: Error;
  /** A completion throws `error` once it has generated `n` tokens (a DeviceLostError also unloads the model). */
  failAfterTokens?: { n: number; error: Error };
  /** Throws an uncaught error (outside any promise) after n tokens, as a crashing worker would; the call hangs. */
  uncaughtErrorAfterTokens?: number;
  /** Faults above apply only from this instruction request of this engine on (1-based; responses after it too). */
  faultFromInstruction?: number;
  /** The failAfterTokens fault fires at most this many times in all, counted in `faultLedger` (so across reloads). */
  failTimes?: number;
  /** The uncaught error fires at most this many times in all, counted in `faultLedger`. */
  crashTimes?: number;
  /** Counts spent faults; back it with IndexedDB to survive worker restarts. Default: this thread's memory. */
  faultLedger?: FaultLedger;
  /** This engine's name in the ledger (the model id). */
  faultKey?: string;
  /** Every k-th instruction is empty (the model ends its turn at once). */
  emptyInstructionEvery?: number;
  /** Every k-th instruction rambles on without ending, so max_tokens cuts it (finish_reason 'length'). */
  lengthInstructionEvery?: number;
  /** Parameter shards reported while "fetching" / "loading from cache". Default 4. */
  paramShards?: number;
  /** Shader modules reported while "compiling". Default 6. */
  shaderModules?: number;
  /** Delay between progress reports in ms. Default 0. */
  loadStepDelayMs?: number;
}

const USER_HEADER = '<|start_header_id|>user<|end_header_id|>\n\n';
const ASSISTANT_HEADER = '<|start_header_id|>assistant<|end_header_id|>\n\n';
const END_OF_TURN = '<|eot_id|>';
const SPECIAL_TOKEN = /<\|[a-z0-9_]+\|>/g;
const PIECE = /<\|[a-z0-9_]+\|>|\w+|\s+|[^\w\s]/g;
const SHARD_MB = 30;

/** Model ids that have been "downloaded" in this thread, so a second load reports the cache phase only. */
const downloaded = new Set<string>();

/** Counts how often a limited fault has fired, so "fail once" stays once across model reloads and worker restarts. */
export interface FaultLedger {
  /** Resolves true (and counts it) when `key` has fired fewer than `limit` times. */
  claim(key: string, limit: number): Promise<boolean>;
}

const spentInMemory = new Map<string, number>();

/** The default ledger: module memory, so it survives model reloads but not a new worker. */
export const memoryFaultLedger: FaultLedger = {
  async claim(key, limit) {
    const n = spentInMemory.get(key) ?? 0;
    if (n >= limit) return false;
    spentInMemory.set(key, n + 1);
    return true;
  },
};

/** A ledger in IndexedDB (one small database per origin), for faults that must stay spent after a worker crash. */
export function indexedDbFaultLedger(dbName = 'magpie-scripted-faults'): FaultLedger {
  const open = (): Promise<IDBDatabase> =>
    new Promise((resolve, reject) => {
      const req = indexedDB.open(dbName, 1);
      req.onupgradeneeded = () => req.result.createObjectStore('spent');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error('fault ledger: open failed'));
    });
  return {
    async claim(key, limit) {
      const db = await open();
      try {
        return await new Promise<boolean>((resolve, reject) => {
          // One readwrite transaction: read and count in one step, so two engines cannot both claim the last one.
          const tx = db.transaction('spent', 'readwrite');
          const store = tx.objectStore('spent');
          let granted = false;
          const get = store.get(key);
          get.onsuccess = () => {
            const n = typeof get.result === 'number' ? get.result : 0;
            if (n < limit) {
              granted = true;
              store.put(n + 1, key);
            }
          };
          tx.oncomplete = () => resolve(granted);
          tx.onerror = () => reject(tx.error ?? new Error('fault ledger: write failed'));
        });
      } finally {
        db.close();
      }
    },
  };
}

const INSTRUCTIONS: readonly string[] = [
  'How do I make a sourdough starter from scratch, and how long does it take before I can bake with it?',
  'Write a short poem about the first snowfall in a quiet mountain village.',
  'Can you explain the difference between a stack and a queue, with an example of when to use each?',
  'I am planning a three-day trip to Lisbon in April. What should I not miss?',
  'What are some effective ways to stay focused while working from home?',
  'Solve for x: 3x + 7 = 25. Please show each step.',
  'Write a Python function that checks whether a string is a palindrome, ignoring spaces and punctuation.',
  'What caused the fall of the Western Roman Empire?',
  'My tomato plants have yellow leaves at the bottom. What could be wrong and how do I fix it?',
  'Summarize the main arguments for and against a four-day work week.',
  'Translate "Where is the nearest train station?" into French, Spanish and German.',
  'Give me a weekly meal plan for a vegetarian who wants more protein.',
  'How does compound interest work? Please use a simple example.',
  'Draft a polite email asking my landlord to fix a leaking kitchen faucet.',
  'What is the difference between weather and climate?',
  'Suggest five names for a small coffee shop that also sells used books.',
  'Explain how a hash map handles collisions.',
  'I keep waking up at 4 a.m. and cannot fall back asleep. Any advice?',
  'Write a SQL query that returns the ten customers with the highest total order value.',
  'What are the rules of chess for castling?',
  'Help me outline a ten-minute talk about renewable energy for high school students.',
  'Why is the sky blue during the day but red at sunset?',
  'Create a short story opening set on a spaceship where the crew has lost contact with Earth.',
  'How can I politely decline a job offer after I already accepted it?',
  'Compare electric cars and hybrid cars for someone who drives 60 km a day.',
  'What is a good beginner routine for learning to play the guitar?',
  'A train leaves at 9:40 and arrives at 13:15. How long is the journey in minutes?',
  'Explain the role of mitochondria in a cell as if I were twelve years old.',
  'Review this sentence for grammar: "Me and him goes to the store every days."',
  'What questions should I ask at the end of a job interview for a data analyst role?',
  'How do I set up a monthly budget if my income changes from month to month?',
];

const RAMBLE =
  'I also want to add some more context about my situation because it matters and there are many details ' +
  'that could change the answer so let me describe everything carefully before you respond ';

const OPENINGS: readonly string[] = [
  'Good question.',
  'Here is a practical answer.',
  'Let me walk you through it.',
  'Happy to help with that.',
];

const BODY: readonly string[] = [
  'First, it helps to be clear about the goal and the constraints that matter most.',
  'Start with the simplest approach that works, then refine it once you see the result.',
  'Break the task into small steps and check each one before moving on.',
  'A common mistake is to skip the basics, so spend a moment on them.',
  'If something does not fit your situation, adjust the details rather than the whole plan.',
  'Keep notes as you go, because they make the next attempt much easier.',
];

const CLOSINGS: readonly string[] = [
  'I hope this helps, and feel free to ask a follow-up question.',
  'Let me know if you would like more detail on any step.',
  'With a little practice this becomes second nature.',
];

function namedError(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}


function pick<T>(list: readonly T[], h: number): T {
  const item = list[h % list.length];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

/** The scripted tokenizer: special tokens are one token each; other text splits into words, spaces, symbols. */
export function scriptedTokenize(text: string): string[] {
  return text.match(PIECE) ?? [];
}

/** Prompt token count as the scripted engine reports it in usage.prompt_tokens. */
export function countScriptedTokens(text: string, addsBos = false): number {
  const special = text.match(SPECIAL_TOKEN)?.length ?? 0;
  const rest = text.replace(SPECIAL_TOKEN, '').match(/\w+|\s+|[^\w\s]/g)?.length ?? 0;
  return special + rest + (addsBos ? 1 : 0);
}

/** The last user turn's text in a rendered Llama-3 prompt. */
function lastInstruction(prompt: string): string | undefined {
  const at = prompt.lastIndexOf(USER_HEADER);
  if (at === -1) return undefined;
  const rest = prompt.slice(at + USER_HEADER.length);
  const end = rest.indexOf(END_OF_TURN);
  return (end === -1 ? rest : rest.slice(0, end)).trim();
}

function responseFor(instruction: string | undefined, h: number): string {
  const topic = (instruction ?? 'your request')
    .replace(/\s+/g, ' ')
    .split(' ')
    .slice(0, 8)
    .join(' ')
    .replace(/[?.!:,;]+$/, '');
  const sentences = [
    pick(OPENINGS, h),
    `You asked about "${topic}", so I will keep the answer focused on that.`,
    pick(BODY, h >>> 3),
    pick(BODY, (h >>> 3) + 1 + ((h >>> 7) % (BODY.length - 1))),
    pick(CLOSINGS, h >>> 11),
  ];
  return sentences.join(' ');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isStopReason(x: unknown): x is 'stop' | 'length' | 'abort' {
  return x === 'stop' || x === 'length' || x === 'abort';
}

export class ScriptedMLCEngine implements MLCEngineLike {
  readonly completions: MLCEngineLike['completions'];
  readonly chat: NonNullable<MLCEngineLike['chat']>;
  private loadedModelId: string | undefined;
  private initProgressCallback: InitProgressCallback | undefined;
  private interruptSignal = false;
  private instructionRequests = 0;
  private unseededRequests = 0;
  private lock: Promise<void> = Promise.resolve();
  private currentMessage = '';
  private readonly options: ScriptedEngineOptions;

  constructor(options: ScriptedEngineOptions = {}) {
    this.options = options;
    this.completions = { create: (request) => this.createCompletion(request) };
    this.chat = { completions: { create: (request) => this.createChatCompletion(request) } };
  }

  /** Whether `reload(modelId)` has "downloaded" this model before, in this thread. */
  static hasInCache(modelId: string): boolean {
    return downloaded.has(modelId);
  }

  get modelId(): string | undefined {
    return this.loadedModelId;
  }

  setInitProgressCallback(callback: InitProgressCallback): void {
    this.initProgressCallback = callback;
  }

  /** Like WebLLM: the text of the current (or last) request, stop string cut, kept until the next one starts. */
  async getMessage(): Promise<string> {
    if (this.loadedModelId === undefined) throw namedError('ModelNotLoadedError', 'Model not loaded before getMessage.');
    return this.currentMessage;
  }

  async interruptGenerate(): Promise<void> {
    this.interruptSignal = true;
  }

  async unload(): Promise<void> {
    this.loadedModelId = undefined;
  }

  async reload(modelId: string, _chatOpts?: ChatOptions): Promise<void> {
    await this.unload();
    const started = Date.now();
    const secs = (): number => Math.ceil((Date.now() - started) / 1000);
    const report = async (progress: number, text: string, timeElapsed = secs()): Promise<void> => {
      this.initProgressCallback?.({ progress, timeElapsed, text });
      await sleep(this.options.loadStepDelayMs ?? 0);
    };
    const shards = Math.max(1, this.options.paramShards ?? 4);
    const modules = Math.max(1, this.options.shaderModules ?? 6);
    const totalMB = shards * SHARD_MB;

    await report(0, 'Start to fetch params', 0);
    if (this.options.failOnLoad) throw this.options.failOnLoad;
    if (!downloaded.has(modelId)) {
      for (let i = 1; i <= shards; i++) {
        const mb = i * SHARD_MB;
        await report(
          mb / totalMB,
          `Fetching param cache[${i}/${shards}]: ${mb}MB fetched. ${Math.floor((mb * 100) / totalMB)}% completed, ` +
            `${secs()} secs elapsed. It can take a while when we first visit this page to populate the cache. ` +
            'Later refreshes will become faster.',
        );
      }
      downloaded.add(modelId);
    }
    for (let i = 1; i <= shards; i++) {
      const mb = i * SHARD_MB;
      await report(
        mb / totalMB,
        `Loading model from cache[${i}/${shards}]: ${mb}MB loaded. ${Math.floor((mb * 100) / totalMB)}% completed, ` +
          `${secs()} secs elapsed.`,
      );
    }
    for (let k = 1; k <= modules; k++) {
      const p = k / modules;
      await report(p, `Loading GPU shader modules[${k}/${modules}]: ${Math.floor(p * 100)}% completed, ${secs()} secs elapsed.`);
    }
    this.loadedModelId = modelId;
    await report(1, 'Finish loading on WebGPU - scripted engine (no GPU used)', (Date.now() - started) / 1000);
  }

  private async createCompletion(request: CompletionCreateParamsStreaming): Promise<AsyncIterable<Completion>> {
    // Same order of checks as WebLLM: model loaded, request fields, then the generation starts lazily.
    const model = this.loadedModelId;
    if (model === undefined) {
      throw namedError(
        'ModelNotLoadedError',
        'Model not loaded before trying to complete CompletionCreateParams. Please ensure you have called ' +
          'MLCEngine.reload(model) to load the model before initiating APIs.',
      );
    }
    if (request.stream !== true) {
      throw namedError('UnsupportedFieldsError', 'The scripted engine supports only streaming completions.');
    }
    if (request.seed !== undefined && request.seed !== null && !Number.isInteger(request.seed)) {
      throw namedError('SeedTypeError', '`seed` should be an integer, but got ' + String(request.seed));
    }
    if (request.max_tokens !== undefined && request.max_tokens !== null && !(request.max_tokens > 0)) {
      throw namedError('MinValueError', 'Make sure `max_tokens` > 0.');
    }
    return this.generate(request, model);
  }

  /**
   * Non-streamed chat completions, checked in WebLLM's order (model loaded, message order, seed, response format).
   * With response_format json_object and a schema the answer is scripted JSON valid for the schema; otherwise an
   * answer to the last user message. Decodes token by token, so max_tokens and interrupts behave as in complete.
   */
  private async createChatCompletion(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion> {
    const model = this.loadedModelId;
    if (model === undefined) {
      throw namedError('ModelNotLoadedError', 'Model not loaded before trying to complete ChatCompletionRequest.');
    }
    if ((request as { stream?: unknown }).stream === true) {
      throw namedError('UnsupportedFieldsError', 'The scripted engine supports only non-streamed chat completions.');
    }
    const { messages } = request;
    messages.forEach((m, i) => {
      if (m.role === 'system' && i !== 0) throw namedError('SystemMessageOrderError', 'System prompt should always be the first message in `messages`.');
    });
    const last = messages[messages.length - 1];
    if (last?.role !== 'user' && last?.role !== 'tool') {
      throw namedError('MessageOrderError', 'Last message should be from either `user` or `tool`.');
    }
    if (request.seed !== undefined && request.seed !== null && !Number.isInteger(request.seed)) {
      throw namedError('SeedTypeError', '`seed` should be an integer, but got ' + String(request.seed));
    }
    const format = request.response_format;
    if (format?.schema !== undefined && format.schema !== null && format.type !== 'json_object') {
      throw namedError('InvalidResponseFormatError', 'JSON schema is only supported with `json_object` response format.');
    }
    const userText = messageText(last);
    let text: string;
    if (format?.type === 'json_object') {
      let schema: unknown = { type: 'object' };
      if (typeof format.schema === 'string') {
        try {
          schema = JSON.parse(format.schema);
        } catch (err) {
          throw namedError('GrammarMatcherInitError', `Failed to compile the JSON schema: ${String(err)}`);
        }
      }
      text = JSON.stringify(scriptedJsonFor(schema, userText));
    } else {
      const seedPart = request.temperature === 0 ? 'greedy' : String(request.seed ?? `unseeded-${++this.unseededRequests}`);
      text = responseFor(userText, fnv1a32(`${seedPart}\u0000${userText}`));
    }

    const release = await this.acquire();
    try {
      const received = performance.now();
      this.interruptSignal = false;
      this.currentMessage = '';
      const rendered = messages.map((m) => `<|start_header_id|>${m.role}<|end_header_id|>\n\n${messageText(m)}<|eot_id|>`).join('');
      const promptTokens = countScriptedTokens(`<|begin_of_text|>${rendered}${ASSISTANT_HEADER}`);
      const contextWindow = this.options.contextWindow ?? 4096;
      if (promptTokens > contextWindow) {
        throw namedError(
          'ContextWindowSizeExceededError',
          `Prompt tokens exceed context window size: number of prompt tokens: ${promptTokens}; context window size: ${contextWindow}`,
        );
      }
      const maxTokens = request.max_tokens ?? Infinity;
      const pieces = scriptedTokenize(text);
      let out = '';
      let sampled = 0;
      let finish: 'stop' | 'length' | 'abort' = 'stop';
      for (;;) {
        if (sampled > 0 && this.interruptSignal) {
          finish = 'abort';
          break;
        }
        await this.tokenDelay();
        const piece = pieces[sampled];
        sampled += 1;
        // Past the last piece the model samples its end-of-turn token (counted, not shown).
        if (piece === undefined) break;
        out += piece;
        this.currentMessage = out;
        // As in complete: reaching max_tokens before the end-of-turn token is 'length', even on the last piece.
        if (sampled >= maxTokens) {
          finish = 'length';
          break;
        }
      }
      const done = performance.now();
      const seconds = Math.max((done - received) / 1000, 1e-3);
      return {
        id: `scripted-chat-${fnv1a32(rendered + String(received))}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [{ index: 0, finish_reason: finish, logprobs: null, message: { role: 'assistant', content: out } }],
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: sampled,
          total_tokens: promptTokens + sampled,
          extra: {
            e2e_latency_s: seconds,
            prefill_tokens_per_s: promptTokens / seconds,
            decode_tokens_per_s: sampled / seconds,
            time_to_first_token_s: 0,
            time_per_output_token_s: seconds / Math.max(sampled, 1),
          },
        },
      };
    } finally {
      release();
    }
  }

  /** What the "model" writes for this prompt: a finite piece list, or an endless one for rambling. */
  private script(request: CompletionCreateParamsStreaming): Iterable<string> {
    const prompt = request.prompt;
    const greedy = request.temperature === 0;
    const seedPart = greedy ? 'greedy' : String(request.seed ?? `unseeded-${++this.unseededRequests}`);
    const h = fnv1a32(`${seedPart}\u0000${prompt}`);
    if (prompt.endsWith(USER_HEADER)) {
      const n = ++this.instructionRequests;
      const { emptyInstructionEvery: empty, lengthInstructionEvery: long } = this.options;
      if (empty && n % empty === 0) return [END_OF_TURN];
      if (long && n % long === 0) return endless(scriptedTokenize(RAMBLE));
      return [...scriptedTokenize(pick(INSTRUCTIONS, h)), END_OF_TURN];
    }
    if (prompt.endsWith(ASSISTANT_HEADER)) {
      return [...scriptedTokenize(responseFor(lastInstruction(prompt), h)), END_OF_TURN];
    }
    // An open user turn that already has text (e.g. the second phase of a first-token ban): finish the same
    // instruction the bare header would have started, so a two-phase query reads like a one-phase one.
    const at = prompt.lastIndexOf(USER_HEADER);
    const partial = at >= 0 ? prompt.slice(at + USER_HEADER.length) : '';
    if (at >= 0 && !/<\|(eot_id|start_header_id|end_header_id)\|>/.test(partial)) {
      const instruction = pick(INSTRUCTIONS, fnv1a32(`${seedPart}\u0000${prompt.slice(0, at + USER_HEADER.length)}`));
      if (instruction.startsWith(partial)) return [...scriptedTokenize(instruction.slice(partial.length)), END_OF_TURN];
    }
    return [...scriptedTokenize('This is a scripted continuation of the text.'), END_OF_TURN];
  }

  private async tokenDelay(): Promise<void> {
    const d = this.options.tokenDelayMs ?? [0, 2];
    const ms = typeof d === 'number' ? d : d[0] + Math.random() * (d[1] - d[0]);
    await sleep(ms);
  }

  private async acquire(): Promise<() => void> {
    let release: () => void = () => undefined;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const before = this.lock;
    this.lock = before.then(() => mine);
    await before;
    return release;
  }

  private async *generate(request: CompletionCreateParamsStreaming, model: string): AsyncGenerator<Completion> {
    const release = await this.acquire();
    try {
      const received = performance.now();
      const id = `scripted-${fnv1a32(request.prompt + String(received))}`;
      const created = Math.floor(Date.now() / 1000);
      const chunk = (text: string, finish: 'stop' | 'length' | 'abort' | null): Completion => ({
        id,
        created,
        model,
        object: 'text_completion',
        choices: [{ text, finish_reason: finish, index: 0 }],
      });
      // Like WebLLM: a request clears any interrupt raised before it started.
      this.interruptSignal = false;
      this.currentMessage = '';
      const promptTokens = countScriptedTokens(request.prompt, this.options.addsBos);
      const contextWindow = this.options.contextWindow ?? 4096;
      if (promptTokens > contextWindow) {
        throw namedError(
          'ContextWindowSizeExceededError',
          `Prompt tokens exceed context window size: number of prompt tokens: ${promptTokens}; ` +
            `context window size: ${contextWindow}`,
        );
      }
      const maxTokens = request.max_tokens ?? Infinity;
      const stops = request.stop === undefined || request.stop === null ? [] : [request.stop].flat();
      const pieces = this.script(request)[Symbol.iterator]();
      const output: string[] = [];
      let message = '';
      let sentLength = 0;
      let sampled = 0;
      let finish: 'stop' | 'length' | 'abort' | null = null;
      let firstTokenAt = received;

      const commitNextToken = (): void => {
        const next = pieces.next();
        sampled += 1;
        if (next.done || next.value === END_OF_TURN) {
          finish = 'stop';
          return;
        }
        output.push(next.value);
        let text = output.join('');
        for (const s of stops) {
          const at = s === '' ? -1 : text.lastIndexOf(s);
          if (at !== -1) {
            text = text.slice(0, at);
            finish = 'stop';
            break;
          }
        }
        message = text;
        this.currentMessage = text;
        if (finish === null && output.length >= maxTokens) finish = 'length';
      };
      const failure = this.options.failAfterTokens;
      const from = this.options.faultFromInstruction;
      const armed = from === undefined || this.instructionRequests >= from;
      const ledger = this.options.faultLedger ?? memoryFaultLedger;
      const key = this.options.faultKey ?? model;
      // A limited fault asks the ledger once per request, when it is due; unlimited faults always fire.
      let failDue: boolean | undefined;
      const maybeFail = async (): Promise<void> => {
        if (!failure || !armed || sampled < failure.n) return;
        const times = this.options.failTimes;
        failDue ??= times === undefined ? true : await ledger.claim(`fail:${key}`, times);
        if (!failDue) return;
        // WebLLM unloads itself when the GPU device is lost; later calls see ModelNotLoadedError.
        if (failure.error.name === 'DeviceLostError') this.loadedModelId = undefined;
        throw failure.error;
      };
      const crashAt = this.options.uncaughtErrorAfterTokens;
      let crashDue: boolean | undefined;
      const maybeCrash = async (): Promise<void> => {
        if (crashAt === undefined || !armed || sampled < crashAt) return;
        const times = this.options.crashTimes;
        crashDue ??= times === undefined ? true : await ledger.claim(`crash:${key}`, times);
        if (!crashDue) return;
        setTimeout(() => {
          throw new Error(`Scripted crash after ${crashAt} tokens.`);
        }, 0);
        await new Promise<never>(() => undefined);
      };
      const delta = (): Completion => {
        const piece = message.slice(sentLength);
        sentLength = message.length;
        return chunk(piece, null);
      };

      // Prefill samples the first token; its delta is the first chunk.
      await this.tokenDelay();
      commitNextToken();
      firstTokenAt = performance.now();
      await maybeFail();
      await maybeCrash();
      yield delta();
      while (finish === null) {
        if (this.interruptSignal) {
          finish = 'abort';
          break;
        }
        await this.tokenDelay();
        commitNextToken();
        await maybeFail();
        await maybeCrash();
        yield delta();
      }
      const done = performance.now();
      const finishReason: 'stop' | 'length' | 'abort' = isStopReason(finish) ? finish : 'stop';
      yield chunk('', finishReason);
      if (request.stream_options?.include_usage === true) {
        const prefillS = Math.max((firstTokenAt - received) / 1000, 1e-3);
        const decodeS = Math.max((done - firstTokenAt) / 1000, 1e-3);
        const decodeTokens = Math.max(sampled - 1, 0);
        yield {
          id,
          created,
          model,
          object: 'text_completion',
          choices: [],
          usage: {
            prompt_tokens: promptTokens,
            completion_tokens: sampled,
            total_tokens: promptTokens + sampled,
            extra: {
              e2e_latency_s: (done - received) / 1000,
              prefill_tokens_per_s: promptTokens / prefillS,
              decode_tokens_per_s: decodeTokens / decodeS,
              time_to_first_token_s: prefillS,
              time_per_output_token_s: decodeTokens > 0 ? decodeS / decodeTokens : 0,
            },
          },
        };
      }
    } finally {
      release();
    }
  }
}

/** The text of a chat message (string content or text parts). */
function messageText(m: ChatCompletionMessageParam): string {
  const c = m.content;
  if (typeof c === 'string') return c;
  if (!Array.isArray(c)) return '';
  return c.map((part) => ('text' in part && typeof part.text === 'string' ? part.text : '')).join('');
}

/** The candidate texts of a judge request: the blocks after "[Candidate i]" lines, the closing paragraph cut off. */
export function judgeCandidatesIn(userText: string): string[] {
  const blocks = userText.split(/\n\[Candidate \d+\]\n/).slice(1);
  const last = blocks.length - 1;
  return blocks.map((b, i) => {
    if (i !== last) return b.trim();
    const cut = b.lastIndexOf('\n\n');
    return (cut === -1 ? b : b.slice(0, cut)).trim();
  });
}

function isSchemaObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A deterministic JSON value valid for the schema (the subset our schemas use: type, properties, items, minItems,
 * maxItems, minimum, maximum, enum, const). An integer array as long as the request's candidate list scores the
 * candidates: distinct texts are ranked by a hash and spread over [minimum, maximum]; equal texts score equal.
 */
export function scriptedJsonFor(schema: unknown, userText: string, path = '$'): unknown {
  if (!isSchemaObject(schema)) return null;
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[0] ?? null;
  const variants = Array.isArray(schema.anyOf) ? schema.anyOf : Array.isArray(schema.oneOf) ? schema.oneOf : undefined;
  if (variants) return scriptedJsonFor(variants[0], userText, path);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  const h = fnv1a32(`${path}\u0000${userText}`);
  const num = (key: string): number | undefined => (typeof schema[key] === 'number' ? (schema[key] as number) : undefined);
  switch (type) {
    case 'object': {
      const props = isSchemaObject(schema.properties) ? schema.properties : {};
      return Object.fromEntries(Object.entries(props).map(([key, sub]) => [key, scriptedJsonFor(sub, userText, `${path}.${key}`)]));
    }
    case 'array': {
      const min = num('minItems') ?? 1;
      const n = Math.max(min, Math.min(num('maxItems') ?? min, min));
      const items = isSchemaObject(schema.items) ? schema.items : {};
      const candidates = judgeCandidatesIn(userText);
      if ((items.type === 'integer' || items.type === 'number') && candidates.length === n && n > 0) {
        const lo = typeof items.minimum === 'number' ? items.minimum : 1;
        const hi = typeof items.maximum === 'number' ? items.maximum : lo + 9;
        const distinct = [...new Set(candidates)].sort((a, b) => fnv1a32(a) - fnv1a32(b) || (a < b ? -1 : 1));
        const step = distinct.length > 1 ? (hi - lo) / (distinct.length - 1) : 0;
        return candidates.map((c) => Math.round(hi - distinct.indexOf(c) * step));
      }
      return Array.from({ length: n }, (_, i) => scriptedJsonFor(items, userText, `${path}[${i}]`));
    }
    case 'integer':
    case 'number': {
      const lo = Math.ceil(num('minimum') ?? 0);
      const hi = Math.floor(num('maximum') ?? lo + 9);
      return hi >= lo ? lo + (h % (hi - lo + 1)) : lo;
    }
    case 'boolean':
      return h % 2 === 0;
    case 'null':
      return null;
    case 'string':
    default:
      return `Scripted ${path.slice(path.lastIndexOf('.') + 1)} ${(h % 1000).toString().padStart(3, '0')}.`;
  }
}

function* endless(pieces: readonly string[]): Generator<string> {
  if (pieces.length === 0) return;
  for (;;) yield* pieces;
}

/**
 * Options encoded in a scripted model id, so a browser test can choose faults through the worker boundary:
 * `scripted:name?addsBos=1&delayMs=5&failAfterTokens=3&failName=DeviceLostError&failOnLoad=ModelNotFoundError
 * &crashAfterTokens=2&emptyEvery=3&lengthEvery=4&contextWindow=1024`; limited faults add
 * `faultFromInstruction=3&failTimes=1` (or `crashTimes=1`): "fail once, at the third instruction".
 */
export function scriptedOptionsFromModelId(modelId: string): ScriptedEngineOptions {
  const q = modelId.indexOf('?');
  const params = new URLSearchParams(q === -1 ? '' : modelId.slice(q + 1));
  const num = (key: string): number | undefined => {
    const v = params.get(key);
    return v === null || v === '' || !Number.isFinite(Number(v)) ? undefined : Number(v);
  };
  const options: ScriptedEngineOptions = {};
  if (params.get('addsBos') === '1' || params.get('addsBos') === 'true') options.addsBos = true;
  const delay = num('delayMs');
  if (delay !== undefined) options.tokenDelayMs = delay;
  const loadDelay = num('loadDelayMs');
  if (loadDelay !== undefined) options.loadStepDelayMs = loadDelay;
  const ctx = num('contextWindow');
  if (ctx !== undefined) options.contextWindow = ctx;
  const failAfter = num('failAfterTokens');
  if (failAfter !== undefined) {
    const name = params.get('failName') ?? 'DeviceLostError';
    options.failAfterTokens = { n: failAfter, error: namedError(name, `Scripted failure: ${name} after ${failAfter} tokens.`) };
  }
  const crash = num('crashAfterTokens');
  if (crash !== undefined) options.uncaughtErrorAfterTokens = crash;
  const faultFrom = num('faultFromInstruction');
  if (faultFrom !== undefined) options.faultFromInstruction = faultFrom;
  const failTimes = num('failTimes');
  if (failTimes !== undefined) options.failTimes = failTimes;
  const crashTimes = num('crashTimes');
  if (crashTimes !== undefined) options.crashTimes = crashTimes;
  if (faultFrom !== undefined || failTimes !== undefined || crashTimes !== undefined) options.faultKey = modelId;
  const failLoad = params.get('failOnLoad');
  if (failLoad) options.failOnLoad = namedError(failLoad, `Scripted failure while loading: ${failLoad}.`);
  const empty = num('emptyEvery');
  if (empty !== undefined) options.emptyInstructionEvery = empty;
  const long = num('lengthEvery');
  if (long !== undefined) options.lengthInstructionEvery = long;
  return options;
}

/** The engine for a scripted model id, with its fault options (the worker's entry point in test builds). */
export function createScriptedEngine(modelId: string, faultLedger?: FaultLedger): ScriptedMLCEngine {
  const options = scriptedOptionsFromModelId(modelId);
  if (faultLedger) options.faultLedger = faultLedger;
  return new ScriptedMLCEngine(options);
}

/** Forgets that a scripted model was "downloaded" (the test stand-in for deleting a model from the cache). */
export function forgetScriptedModel(modelId: string): boolean {
  return downloaded.delete(modelId);
}

/** Whether a scripted model id was "downloaded" in this thread. */
export function scriptedModelInCache(modelId: string): boolean {
  return ScriptedMLCEngine.hasInCache(modelId);
}
