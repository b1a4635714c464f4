/** Every chat template by id, and which template a model id uses. New families add rows here, not code paths. */
import {
  llama31BareQueryTemplate,
  llama31Template,
  llama32BareQueryTemplate,
  llama32Template,
  llama3Template,
} from './llama3';
import {
  gemma2DoubleNewlineQueryTemplate,
  gemma2Template,
  hermes3Template,
  mistralV03Template,
  phi35Template,
  phi3Template,
  phiSpacedQueryTemplate,
  qwen25Template,
  qwen2BareQueryTemplate,
  qwen2Template,
  qwen3Template,
  smollm2Template,
} from './families';
import type { FamilyTemplate, TemplateSource } from './types';

export { cutPreQuery, PRE_QUERY_SENTINEL } from './turns';

export interface TemplateOptions {
  /** "Today Date" for templates that print one (Llama-3.1/3.2); templates without a date ignore it. */
  dateString?: string;
}

export interface TemplateInfo {
  id: string;
  label: string;
  /** The rendering depends on `TemplateOptions.dateString`. */
  takesDate: boolean;
  /** 'official' renders the pre-query exactly as the model's chat template; 'reference' as the Magpie reference. */
  preQuery: 'official' | 'reference';
  /** What the rendering was checked against: the official template, or a hand-written one (Mistral). */
  source: TemplateSource;
  /** A system prompt can steer the queries (false for Gemma-2, whose template raises on one). */
  supportsSystem: boolean;
}

interface TemplateEntry extends Pick<TemplateInfo, 'takesDate' | 'preQuery'> {
  create: (options: TemplateOptions) => FamilyTemplate;
}

const plain = (create: () => FamilyTemplate, preQuery: TemplateInfo['preQuery'] = 'official'): TemplateEntry => ({
  create,
  takesDate: false,
  preQuery,
});

const TEMPLATES: Readonly<Record<string, TemplateEntry>> = {
  'llama-3': { create: () => llama3Template(), takesDate: false, preQuery: 'official' },
  'llama-3.1': { create: (o) => llama31Template(o), takesDate: true, preQuery: 'official' },
  'llama-3.2': { create: (o) => llama32Template(o), takesDate: true, preQuery: 'official' },
  'llama-3.1-bare-query': { create: (o) => llama31BareQueryTemplate(o), takesDate: true, preQuery: 'reference' },
  'llama-3.2-bare-query': { create: (o) => llama32BareQueryTemplate(o), takesDate: true, preQuery: 'reference' },
  'hermes-3': plain(hermes3Template),
  qwen2: plain(qwen2Template),
  'qwen2-bare-query': plain(qwen2BareQueryTemplate, 'reference'),
  'qwen2.5': plain(qwen25Template),
  qwen3: plain(qwen3Template),
  'phi-3': plain(phi3Template),
  'phi-3-spaced-query': plain(() => phiSpacedQueryTemplate(phi3Template()), 'reference'),
  'phi-3.5': plain(phi35Template),
  'phi-3.5-spaced-query': plain(() => phiSpacedQueryTemplate(phi35Template()), 'reference'),
  'gemma-2': plain(gemma2Template),
  'gemma-2-double-newline-query': plain(gemma2DoubleNewlineQueryTemplate, 'reference'),
  'mistral-v0.3': plain(mistralV03Template),
  smollm2: plain(smollm2Template),
};

/** WebLLM / Hugging Face model names → template id; checked in order against the name without any path prefix. */
const MODEL_PATTERNS: readonly (readonly [RegExp, string])[] = [
  [/^(?:meta-)?llama-3-\d+b-instruct(?:-|$)/i, 'llama-3'],
  [/^(?:meta-)?llama-3\.1-\d+b-instruct(?:-|$)/i, 'llama-3.1'],
  [/^(?:meta-)?llama-3\.2-\d+b-instruct(?:-|$)/i, 'llama-3.2'],
  [/^hermes-3-llama-3\.[12]-\d+b(?:-|$)/i, 'hermes-3'],
  [/^qwen2-\d+(?:\.\d+)?b-instruct(?:-|$)/i, 'qwen2'],
  [/^qwen2\.5-\d+(?:\.\d+)?b-instruct(?:-|$)/i, 'qwen2.5'],
  // Qwen3 releases are hybrid-thinking chat models with no "-Instruct" suffix (Qwen3.5 is a different family).
  [/^qwen3-\d+(?:\.\d+)?b(?:-q\w+-mlc(?:-1k)?)?$/i, 'qwen3'],
  [/^phi-3-mini-(?:4k|128k)-instruct(?:-|$)/i, 'phi-3'],
  [/^phi-3\.5-mini-instruct(?:-|$)/i, 'phi-3.5'],
  [/^gemma-2-\d+b-(?:jpn-)?it(?:-|$)/i, 'gemma-2'],
  [/^mistral-7b-instruct-v0\.3(?:-|$)/i, 'mistral-v0.3'],
  [/^smollm2-\d+(?:\.\d+)?[mb]-instruct(?:-|$)/i, 'smollm2'],
];

export function getTemplate(id: string, options: TemplateOptions = {}): FamilyTemplate {
  const entry = Object.hasOwn(TEMPLATES, id) ? TEMPLATES[id] : undefined;
  if (!entry) {
    throw new Error(`Unknown chat template "${id}". Known templates: ${Object.keys(TEMPLATES).join(', ')}.`);
  }
  return entry.create(options);
}

export function listTemplates(): TemplateInfo[] {
  return Object.entries(TEMPLATES).map(([id, entry]) => {
    const template = entry.create({ dateString: '' });
    return {
      id,
      label: template.label,
      takesDate: entry.takesDate,
      preQuery: entry.preQuery,
      source: template.source,
      supportsSystem: template.supportsSystem,
    };
  });
}

/**
 * The official template id for a model id such as "Llama-3.1-8B-Instruct-q4f16_1-MLC-1k" or
 * "meta-llama/Meta-Llama-3-8B-Instruct"; undefined for models whose family has no template here (including
 * Hermes-2, DeepSeek distills, Qwen coder/math builds, and other formats this registry does not render).
 */
export function templateIdForModel(modelId: string): string | undefined {
  const name = modelId.replace(/\/+$/, '').split('/').pop() ?? '';
  return MODEL_PATTERNS.find(([pattern]) => pattern.test(name))?.[1];
}
