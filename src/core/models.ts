/**
 * The model picker's options: the chat families of WebLLM's prebuilt model list that have a chat template here
 * (passed in as data, so this stays pure), in the quantization this GPU can run. Base, math-only, code-only,
 * vision and reasoning-distill builds are listed as hidden (shown only with "show all").
 */

/** A WebLLM ModelRecord, structurally; the context window may also come flattened (as the worker lists it). */
export interface ModelRecordLike {
  model_id: string;
  vram_required_MB?: number;
  low_resource_required?: boolean;
  overrides?: { context_window_size?: number };
  context_window_size?: number;
}

export type ModelFamily =
  | 'Llama-3'
  | 'Llama-3.1'
  | 'Llama-3.2'
  | 'Hermes-3'
  | 'Qwen2'
  | 'Qwen2.5'
  | 'Qwen3'
  | 'Phi-3'
  | 'Phi-3.5'
  | 'Gemma-2'
  | 'Mistral-v0.3'
  | 'SmolLM2'
  // Hidden families: not chat generalists, so not Magpie generators by default.
  | 'Qwen2.5-Coder'
  | 'Qwen2-Math'
  | 'Qwen2.5-Math'
  | 'DeepSeek-R1-Distill'
  | 'Phi-3.5-vision'
  | 'Ministral-3'
  | 'WizardMath'
  | 'Phi-base';
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
  /** Chat template id in src/core/templates; undefined for hidden models whose format has no template here. */
  templateId: string | undefined;
  /** Not a chat generalist (base, math-only, code-only, vision, reasoning distill): listed only with "show all". */
  hidden: boolean;
  /** Why it is hidden, for the "show all" list. */
  hiddenReason?: string;
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

/** How a family's model names look (the part before `-{quant}-MLC`), and what each size really holds. */
interface FamilyRule {
  family: ModelFamily;
  /** Matches the name; group 1 is the size as named (families with one size give it in `fixedSize`). */
  name: RegExp;
  fixedSize?: string;
  label: (size: string, match: RegExpExecArray) => string;
  templateId?: string;
  hidden?: string;
  /** Real parameter counts by size (model cards); a size missing here is not offered. */
  parameters: Readonly<Record<string, number>>;
}

const upper = (size: string): string => size.toUpperCase();

const FAMILY_RULES: readonly FamilyRule[] = [
  {
    family: 'Llama-3',
    name: /^Llama-3-(\d+B)-Instruct$/,
    label: (size) => `Llama 3 ${size} Instruct`,
    templateId: 'llama-3',
    parameters: { '8B': 8.03e9 },
  },
  {
    family: 'Llama-3.1',
    name: /^Llama-3\.1-(\d+B)-Instruct$/,
    label: (size) => `Llama 3.1 ${size} Instruct`,
    templateId: 'llama-3.1',
    parameters: { '8B': 8.03e9 },
  },
  {
    family: 'Llama-3.2',
    name: /^Llama-3\.2-(\d+B)-Instruct$/,
    label: (size) => `Llama 3.2 ${size} Instruct`,
    templateId: 'llama-3.2',
    parameters: { '1B': 1.24e9, '3B': 3.21e9 },
  },
  {
    family: 'Hermes-3',
    name: /^Hermes-3-Llama-(3\.[12])-(\d+B)$/,
    label: (_size, m) => `Hermes 3 (Llama ${m[1] ?? ''} ${m[2] ?? ''})`,
    templateId: 'hermes-3',
    parameters: { '3B': 3.21e9, '8B': 8.03e9 },
  },
  {
    family: 'Qwen2',
    name: /^Qwen2-(\d+(?:\.\d+)?B)-Instruct$/,
    label: (size) => `Qwen2 ${size} Instruct`,
    templateId: 'qwen2',
    parameters: { '0.5B': 0.49e9, '1.5B': 1.54e9, '7B': 7.62e9 },
  },
  {
    family: 'Qwen2.5',
    name: /^Qwen2\.5-(\d+(?:\.\d+)?B)-Instruct$/,
    label: (size) => `Qwen2.5 ${size} Instruct`,
    templateId: 'qwen2.5',
    parameters: { '0.5B': 0.49e9, '1.5B': 1.54e9, '3B': 3.09e9, '7B': 7.62e9 },
  },
  {
    family: 'Qwen3',
    name: /^Qwen3-(\d+(?:\.\d+)?B)$/,
    label: (size) => `Qwen3 ${size} (thinking off)`,
    templateId: 'qwen3',
    parameters: { '0.6B': 0.6e9, '1.7B': 1.7e9, '4B': 4.0e9, '8B': 8.2e9 },
  },
  {
    family: 'Phi-3',
    name: /^Phi-3-mini-4k-instruct$/,
    fixedSize: '3.8B',
    label: () => 'Phi-3 mini Instruct',
    templateId: 'phi-3',
    parameters: { '3.8B': 3.82e9 },
  },
  {
    family: 'Phi-3.5',
    name: /^Phi-3\.5-mini-instruct$/,
    fixedSize: '3.8B',
    label: () => 'Phi-3.5 mini Instruct',
    templateId: 'phi-3.5',
    parameters: { '3.8B': 3.82e9 },
  },
  {
    family: 'Gemma-2',
    name: /^gemma-2-(\d+b)-(jpn-)?it$/,
    label: (size, m) => `Gemma 2 ${upper(size)} it${m[2] ? ' (Japanese)' : ''}`,
    templateId: 'gemma-2',
    parameters: { '2B': 2.61e9, '9B': 9.24e9 },
  },
  {
    family: 'Mistral-v0.3',
    name: /^Mistral-(7B)-Instruct-v0\.3$/,
    label: () => 'Mistral 7B Instruct v0.3',
    templateId: 'mistral-v0.3',
    parameters: { '7B': 7.25e9 },
  },
  {
    family: 'SmolLM2',
    name: /^SmolLM2-(\d+(?:\.\d+)?[MB])-Instruct$/,
    label: (size) => `SmolLM2 ${size} Instruct`,
    templateId: 'smollm2',
    parameters: { '135M': 0.135e9, '360M': 0.362e9, '1.7B': 1.71e9 },
  },
  {
    family: 'Qwen2.5-Coder',
    name: /^Qwen2\.5-Coder-(\d+(?:\.\d+)?B)-Instruct$/,
    label: (size) => `Qwen2.5 Coder ${size} Instruct`,
    hidden: 'code-only',
    parameters: { '0.5B': 0.49e9, '1.5B': 1.54e9, '3B': 3.09e9, '7B': 7.62e9 },
  },
  {
    family: 'Qwen2-Math',
    name: /^Qwen2-Math-(\d+(?:\.\d+)?B)-Instruct$/,
    label: (size) => `Qwen2 Math ${size} Instruct`,
    hidden: 'math-only',
    parameters: { '1.5B': 1.54e9, '7B': 7.62e9 },
  },
  {
    family: 'Qwen2.5-Math',
    name: /^Qwen2\.5-Math-(\d+(?:\.\d+)?B)-Instruct$/,
    label: (size) => `Qwen2.5 Math ${size} Instruct`,
    hidden: 'math-only',
    parameters: { '1.5B': 1.54e9 },
  },
  {
    family: 'DeepSeek-R1-Distill',
    name: /^DeepSeek-R1-Distill-(?:Qwen|Llama)-(\d+B)$/,
    label: (size, m) => `DeepSeek R1 Distill ${m[0].includes('Qwen') ? 'Qwen' : 'Llama'} ${size}`,
    hidden: 'reasoning distill',
    parameters: { '7B': 7.62e9, '8B': 8.03e9 },
  },
  {
    family: 'Phi-3.5-vision',
    name: /^Phi-3\.5-vision-instruct$/,
    fixedSize: '4.2B',
    label: () => 'Phi-3.5 vision Instruct',
    hidden: 'vision',
    parameters: { '4.2B': 4.15e9 },
  },
  {
    family: 'Ministral-3',
    name: /^Ministral-3-(3B)-(Base|Reasoning)-2512$/,
    label: (size, m) => `Ministral 3 ${size} ${m[2] ?? ''}`,
    hidden: 'base or reasoning model',
    parameters: { '3B': 3.4e9 },
  },
  {
    family: 'WizardMath',
    name: /^WizardMath-(7B)-V1\.1$/,
    label: () => 'WizardMath 7B v1.1',
    hidden: 'math-only',
    parameters: { '7B': 7.24e9 },
  },
  {
    family: 'Phi-base',
    name: /^phi-(2|1_5)$/,
    label: (_size, m) => (m[1] === '2' ? 'Phi-2 (base)' : 'Phi-1.5 (base)'),
    hidden: 'base model',
    parameters: { '2': 2.78e9, '1_5': 1.42e9 },
  },
];

/** 4-bit weights plus one scale per group of 32: f16 scales add 0.5 bit per weight, f32 scales 1 bit. */
const BITS_PER_WEIGHT: Record<ModelQuant, number> = { q4f16_1: 4.5, q4f32_1: 5 };

const MODEL_ID = /^(scripted:)?(.+)-(q4f16_1|q4f32_1)-MLC(-1k)?(?:\?.*)?$/;

function isQuant(x: string): x is ModelQuant {
  return x === 'q4f16_1' || x === 'q4f32_1';
}

/** Parameter counts of the Llama sizes, for callers that only know a size name. */
const LLAMA_PARAMETERS: Readonly<Record<string, number>> = { '1B': 1.24e9, '3B': 3.21e9, '8B': 8.03e9 };

/** Download estimate from a parameter count (or a Llama size name) and the quantization. */
export function approxDownloadMB(params: string | number, quant: ModelQuant): number {
  const n = typeof params === 'number' ? params : LLAMA_PARAMETERS[params];
  if (n === undefined) return 0;
  return Math.round((n * BITS_PER_WEIGHT[quant]) / 8 / (1024 * 1024) / 10) * 10;
}

function matchFamily(name: string): { rule: FamilyRule; size: string; match: RegExpExecArray } | undefined {
  for (const rule of FAMILY_RULES) {
    const match = rule.name.exec(name);
    if (!match) continue;
    const size = rule.fixedSize ?? (rule.family === 'Hermes-3' ? match[2] : match[1]) ?? '';
    const key = rule.family === 'Gemma-2' ? upper(size) : size;
    if (rule.parameters[key] === undefined) return undefined;
    return { rule, size: key, match };
  }
  return undefined;
}

/** One record → option, or undefined when it is not a q4 build of a family listed here. */
export function toModelOption(record: ModelRecordLike): ModelOption | undefined {
  const m = MODEL_ID.exec(record.model_id);
  if (!m) return undefined;
  const [, scriptedPrefix, name = '', quant = '', small] = m;
  const found = matchFamily(name);
  if (!found || !isQuant(quant)) return undefined;
  const { rule, size, match } = found;
  const oneK = small !== undefined;
  const scripted = scriptedPrefix !== undefined;
  const label = `${rule.label(size, match)}${oneK ? ', 1k context' : ''}${scripted ? ' (scripted test engine)' : ''}`;
  const option: ModelOption = {
    id: record.model_id,
    family: rule.family,
    label,
    params: size,
    quant,
    vramMB: Math.round(record.vram_required_MB ?? 0),
    approxDownloadMB: scripted ? 0 : approxDownloadMB(rule.parameters[size] ?? 0, quant),
    contextWindow: record.overrides?.context_window_size ?? record.context_window_size ?? (oneK ? 1024 : 4096),
    templateId: rule.templateId,
    lowResource: record.low_resource_required ?? false,
    scripted,
    hidden: rule.hidden !== undefined,
  };
  if (rule.hidden !== undefined) option.hiddenReason = rule.hidden;
  return option;
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
 * GPU should run is listed for each model; without it, both quantizations are. Hidden models only with `showAll`.
 */
export function buildModelOptions(
  records: readonly ModelRecordLike[],
  shaderF16?: boolean,
  options: { showAll?: boolean } = {},
): ModelOption[] {
  const all = records
    .map(toModelOption)
    .filter((o): o is ModelOption => o !== undefined && (options.showAll === true || !o.hidden));
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
