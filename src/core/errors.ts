/**
 * Engine failures, classified by what the user can do about them. WebLLM's errors are matched on `name`
 * (only IntegrityError is exported), and errors that crossed a worker boundary may arrive as strings.
 */
export type EngineErrorKind =
  | 'webgpu-unavailable'
  | 'no-adapter'
  | 'shader-f16'
  | 'feature-unsupported'
  | 'device-lost'
  // The engine worker stopped answering liveness pings (killed by the browser, a GPU process crash).
  | 'engine-unresponsive'
  | 'model-not-found'
  | 'model-not-loaded'
  | 'context-window'
  | 'out-of-memory'
  | 'network'
  | 'integrity'
  // A model file (wasm library, JSON config) that is not what WebLLM expects, e.g. a web page at a wrong URL.
  | 'model-files'
  | 'aborted'
  | 'invalid-request'
  // Remote (OpenAI-compatible) server failures.
  | 'unauthorized'
  | 'unknown-model'
  | 'prompt-too-long'
  | 'cors'
  | 'rate-limited'
  | 'server-error'
  | 'timeout'
  | 'unknown';

export interface ClassifiedError {
  kind: EngineErrorKind;
  /** The original message, for the details view. */
  message: string;
  /** One sentence telling the user what to do. */
  advice: string;
  /** Whether reloading the model (or the page) can help without the user changing anything. */
  recoverable: boolean;
}

const ADVICE: Record<EngineErrorKind, { advice: string; recoverable: boolean }> = {
  'webgpu-unavailable': {
    advice: 'This browser has no WebGPU. Use a recent Chrome or Edge (113+) on desktop, or Safari 26+.',
    recoverable: false,
  },
  'no-adapter': {
    advice: 'No compatible GPU was found. Enable hardware acceleration in the browser settings, or try another browser or machine.',
    recoverable: false,
  },
  'shader-f16': {
    advice: 'Your GPU does not support 16-bit shaders. Pick the q4f32_1 variant of the model.',
    recoverable: false,
  },
  'feature-unsupported': {
    advice: 'Your GPU lacks a feature this model needs. Pick another model or the q4f32_1 variant.',
    recoverable: false,
  },
  'device-lost': {
    advice: 'The GPU was lost (out of memory or a driver reset). Reload the model, or pick a smaller model or a -1k context variant.',
    recoverable: true,
  },
  'engine-unresponsive': {
    advice:
      'The engine stopped responding (the browser may have stopped its worker, or the GPU process crashed). It restarts on the next call: reload the model, or pick a smaller model or a -1k context variant if it happens again.',
    recoverable: true,
  },
  'model-not-found': {
    advice: 'This model id is not known to the engine. Pick a model from the list.',
    recoverable: false,
  },
  'model-not-loaded': {
    advice: 'The model is not loaded (it may have been unloaded after a GPU error). Load it again.',
    recoverable: true,
  },
  'context-window': {
    advice: 'The prompt is longer than the model’s context window. Lower max tokens or use a shorter system prompt.',
    recoverable: false,
  },
  'out-of-memory': {
    advice: 'The GPU ran out of memory. Close other GPU-heavy tabs, or pick a smaller model or a -1k context variant.',
    recoverable: true,
  },
  network: {
    advice: 'Downloading the model failed. Check the connection and try again; finished parts stay cached.',
    recoverable: true,
  },
  integrity: {
    advice: 'A downloaded model file did not match its checksum. Delete the cached model and download it again.',
    recoverable: true,
  },
  'model-files': {
    advice:
      'A model file is not what WebLLM expects (the details name it). Check the model’s weights and library URLs, or delete the model from the cache and load it again.',
    recoverable: false,
  },
  aborted: { advice: 'Stopped.', recoverable: true },
  'invalid-request': {
    advice: 'The engine refused the request settings. Check the run settings.',
    recoverable: false,
  },
  unauthorized: {
    advice: 'The server refused the API key. Check the API key set for this server.',
    recoverable: false,
  },
  'unknown-model': {
    advice: 'The server does not serve this model. Pick a model from the server’s model list (/v1/models).',
    recoverable: false,
  },
  'prompt-too-long': {
    advice: 'The prompt plus max tokens exceeds the server model’s context length. Lower max tokens or shorten the system prompt.',
    recoverable: false,
  },
  cors: {
    advice:
      'Network error or CORS: check the server is running, and start it with the app’s origin allowed (see README).',
    recoverable: true,
  },
  'rate-limited': {
    advice: 'The server kept answering “too many requests”. Lower the number of parallel requests or wait a moment.',
    recoverable: true,
  },
  'server-error': {
    advice: 'The server kept failing (5xx or a broken stream). Check the server’s log, then try again.',
    recoverable: true,
  },
  timeout: {
    advice: 'The server did not answer in time. Check it is not overloaded, or raise the request timeout.',
    recoverable: true,
  },
  unknown: { advice: 'Something went wrong in the engine. Reload the model; if it repeats, reload the page.', recoverable: true },
};

const BY_NAME: Record<string, EngineErrorKind> = {
  WebGPUNotAvailableError: 'webgpu-unavailable',
  WebGPUNotFoundError: 'no-adapter',
  ShaderF16SupportError: 'shader-f16',
  FeatureSupportError: 'feature-unsupported',
  DeviceLostError: 'device-lost',
  ModelNotFoundError: 'model-not-found',
  ModelNotLoadedError: 'model-not-loaded',
  ContextWindowSizeExceededError: 'context-window',
  IntegrityError: 'integrity',
  // Named by src/engine/load-failure.ts; WebAssembly's own errors when they arrive unexplained.
  ModelFileError: 'model-files',
  CompileError: 'model-files',
  LinkError: 'model-files',
  AbortError: 'aborted',
  UnsupportedFieldsError: 'invalid-request',
  StreamingCountError: 'invalid-request',
  SeedTypeError: 'invalid-request',
};

/** Message patterns for errors that carry no useful name (plain Error, or strings from another thread). */
const BY_MESSAGE: Array<[RegExp, EngineErrorKind]> = [
  [/WebGPU is not (available|supported)|navigator\.gpu/i, 'webgpu-unavailable'],
  [/Unable to find a compatible GPU|requestAdapter.*null|no (gpu )?adapter/i, 'no-adapter'],
  [/shader-f16|shaderf16/i, 'shader-f16'],
  [/device (was |is )?lost|DeviceLost/i, 'device-lost'],
  [/out of memory|OOM|allocation failed|createBuffer.*(exceed|fail)/i, 'out-of-memory'],
  [/context window|ContextWindowSizeExceeded/i, 'context-window'],
  [/not loaded|ModelNotLoaded/i, 'model-not-loaded'],
  [/Failed to fetch|NetworkError|network error|ERR_INTERNET|fetch failed/i, 'network'],
];

export class EngineError extends Error {
  readonly kind: EngineErrorKind;
  readonly advice: string;
  readonly recoverable: boolean;
  constructor(c: ClassifiedError) {
    super(c.message);
    this.name = 'EngineError';
    this.kind = c.kind;
    this.advice = c.advice;
    this.recoverable = c.recoverable;
  }
}

function nameAndMessage(err: unknown): { name: string; message: string } {
  if (err instanceof Error) return { name: err.name, message: err.message };
  if (typeof err === 'string') {
    // Errors relayed as text look like "ShaderF16SupportError: ...".
    const m = /^(\w+Error):\s*([\s\S]*)$/.exec(err);
    return m ? { name: m[1] ?? '', message: m[2] ?? '' } : { name: '', message: err };
  }
  if (err && typeof err === 'object') {
    const o = err as { name?: unknown; message?: unknown; kind?: unknown };
    return { name: typeof o.name === 'string' ? o.name : '', message: typeof o.message === 'string' ? o.message : String(err) };
  }
  return { name: '', message: String(err) };
}

export function classifyEngineError(err: unknown): ClassifiedError {
  if (err instanceof EngineError) {
    return { kind: err.kind, message: err.message, advice: err.advice, recoverable: err.recoverable };
  }
  if (err && typeof err === 'object' && 'kind' in err && typeof (err as { kind: unknown }).kind === 'string') {
    const kind = (err as { kind: string }).kind;
    if (kind in ADVICE) {
      const k = kind as EngineErrorKind;
      return { kind: k, message: nameAndMessage(err).message, ...ADVICE[k] };
    }
  }
  const { name, message } = nameAndMessage(err);
  let kind: EngineErrorKind = BY_NAME[name] ?? 'unknown';
  if (kind === 'unknown') {
    const text = `${name}: ${message}`;
    kind = BY_MESSAGE.find(([re]) => re.test(text))?.[1] ?? 'unknown';
  }
  return { kind, message: message || name || 'Unknown error', ...ADVICE[kind] };
}

export function toEngineError(err: unknown): EngineError {
  return err instanceof EngineError ? err : new EngineError(classifyEngineError(err));
}
