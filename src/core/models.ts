/**
 * The model picker's options: the Llama-3 Instruct family from WebLLM's prebuilt model list (passed in as data,
 * so this stays pure), in the quantization this GPU can run.
 */

/** A WebLLM ModelRecord, structurally; the context window may also come flattened (as the worker lists it). */
export interface ModelRecordLike {
  model_id: string;
  vram_required_MB?: number;
  low_resource_required?: boolean;
  overrides?: { context_window_size?: number };
  context_window_size?: number;
}

export type ModelFamily = 'Llama-3' | 'Llama-3.1' | 'Llama-3.2';
export type ModelQuant = 'q4f16_1' | 'q4f32_1';

export interface ModelOption {
  id: string;
  family: ModelFamily;
  /** e.g. "Llama 3.2 3B Instruct" or "Llama 3 8B Instruct, 1k context". */
  label: string;
  /** Parameter count as named, e.g. "8B". */
  params: string;
  quant: ModelQuant;
  /** WebLLM's estimate of GPU memory; informational, nothing checks it before loading. 0 when unknown. */
  vramMB: number;
  /** Approximate: parameter count × bits per weight of the quantization; the real download differs a little. */
  approxDownloadMB: number;
  contextWindow: number;
  /** Chat template id in src/core/templates. */
  templateId: string;
  /** WebLLM marks it as suitable for low-resource devices. */
  lowResource: boolean;
  /** The deterministic test engine (test builds only), not a real model. */
  scripted: boolean;
}

/** The paper's generator, for the picker's note. */
export const PAPER_MODEL_BASE = 'Llama-3-8B-Instruct';
export const PAPER_MODEL_NOTE =
  'The Magpie paper generated its data with Llama-3-8B-Instruct (and 70B). Llama 3.2 3B is the default here ' +
  'because it fits most GPUs; pick Llama 3 8B to match the paper.';

const SUPPORTED: Record<ModelFamily, readonly string[]> = {
  'Llama-3': ['8B'],
  'Llama-3.1': ['8B'],
  'Llama-3.2': ['1B', '3B'],
};

/** Real parameter counts behind the size names (Meta's model cards). */
const PARAMETERS: Record<string, number> = { '1B': 1.24e9, '3B': 3.21e9, '8B': 8.03e9 };

/** 4-bit weights plus one scale per group of 32: f16 scales add 0.5 bit per weight, f32 scales 1 bit. */
const BITS_PER_WEIGHT: Record<ModelQuant, number> = { q4f16_1: 4.5, q4f32_1: 5 };

const TEMPLATE_ID: Record<ModelFamily, string> = { 'Llama-3': 'llama-3', 'Llama-3.1': 'llama-3.1', 'Llama-3.2': 'llama-3.2' };

const MODEL_ID =
  /^(scripted:)?(Llama-3(?:\.1|\.2)?)-(\d+B)-Instruct-(q4f16_1|q4f32_1)-MLC(-1k)?(?:\?.*)?$/;

function isFamily(x: string): x is ModelFamily {
  return x === 'Llama-3' || x === 'Llama-3.1' || x === 'Llama-3.2';
}

function isQuant(x: string): x is ModelQuant {
  return x === 'q4f16_1' || x === 'q4f32_1';
}

export function approxDownloadMB(params: string, quant: ModelQuant): number {
  const n = PARAMETERS[params];
  if (n === undefined) return 0;
  return Math.round((n * BITS_PER_WEIGHT[quant]) / 8 / (1024 * 1024) / 10) * 10;
}

/** One record → option, or undefined when it is not one of the supported Llama-3 Instruct builds. */
export function toModelOption(record: ModelRecordLike): ModelOption | undefined {
  const m = MODEL_ID.exec(record.model_id);
  if (!m) return undefined;
  const [, scriptedPrefix, family = '', params = '', quant = '', small] = m;
  if (!isFamily(family) || !isQuant(quant) || !SUPPORTED[family].includes(params)) return undefined;
  const oneK = small !== undefined;
  const scripted = scriptedPrefix !== undefined;
  const name = `Llama ${family.slice('Llama-'.length)} ${params} Instruct`;
  const label = `${name}${oneK ? ', 1k context' : ''}${scripted ? ' (scripted test engine)' : ''}`;
  return {
    id: record.model_id,
    family,
    label,
    params,
    quant,
    vramMB: Math.round(record.vram_required_MB ?? 0),
    approxDownloadMB: scripted ? 0 : approxDownloadMB(params, quant),
    contextWindow: record.overrides?.context_window_size ?? record.context_window_size ?? (oneK ? 1024 : 4096),
    templateId: TEMPLATE_ID[family],
    lowResource: record.low_resource_required ?? false,
    scripted,
  };
}

/** The quantization to run: q4f16_1 needs the adapter feature shader-f16, which WebLLM does not check for us. */
export function preferredQuant(shaderF16: boolean): ModelQuant {
  return shaderF16 ? 'q4f16_1' : 'q4f32_1';
}

/** The same model in another quantization has the same id apart from the quant part. */
function variantKey(o: ModelOption): string {
  return o.id.replace(o.quant, '*');
}

/**
 * One option per model (family, size, context): the preferred quantization, or q4f32_1 when only that exists.
 * Without shader-f16, q4f16_1 builds are dropped, since they would fail to compile their shaders.
 */
export function pickVariant(options: readonly ModelOption[], shaderF16: boolean): ModelOption[] {
  const want = preferredQuant(shaderF16);
  const usable = options.filter((o) => shaderF16 || o.quant === 'q4f32_1');
  const chosen = new Map<string, ModelOption>();
  for (const o of usable) {
    const key = variantKey(o);
    const had = chosen.get(key);
    if (!had || (had.quant !== want && o.quant === want)) chosen.set(key, o);
  }
  const keep = new Set(chosen.values());
  return usable.filter((o) => keep.has(o));
}

/**
 * Picker options from WebLLM's model list, smallest VRAM first. With `shaderF16` given, only the variant this
 * GPU should run is listed for each model; without it, both quantizations are.
 */
export function buildModelOptions(records: readonly ModelRecordLike[], shaderF16?: boolean): ModelOption[] {
  const all = records.map(toModelOption).filter((o): o is ModelOption => o !== undefined);
  const listed = shaderF16 === undefined ? all : pickVariant(all, shaderF16);
  return listed
    .map((o, i) => ({ o, i }))
    .sort((a, b) => Number(a.o.scripted) - Number(b.o.scripted) || a.o.vramMB - b.o.vramMB || a.i - b.i)
    .map(({ o }) => o);
}

/** Llama-3.2-3B-Instruct (4k context) in the quantization this GPU runs: fits most GPUs. */
export function defaultModelId(options: readonly ModelOption[], shaderF16: boolean): string | undefined {
  const quant = preferredQuant(shaderF16);
  const is3B = (o: ModelOption): boolean =>
    !o.scripted && o.family === 'Llama-3.2' && o.params === '3B' && o.contextWindow >= 4096 && !o.id.endsWith('-1k');
  return (options.find((o) => is3B(o) && o.quant === quant) ?? options.find((o) => is3B(o) && o.quant === 'q4f32_1'))?.id;
}
