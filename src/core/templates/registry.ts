/** Every chat template by id, and which template a model id uses. New families add rows here, not code paths. */
import {
  llama31BareQueryTemplate,
  llama31Template,
  llama32BareQueryTemplate,
  llama32Template,
  llama3Template,
} from './llama3';
import type { ChatTemplate } from './types';

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
}

interface TemplateEntry extends Omit<TemplateInfo, 'id' | 'label'> {
  create: (options: TemplateOptions) => ChatTemplate;
}

const TEMPLATES: Readonly<Record<string, TemplateEntry>> = {
  'llama-3': { create: () => llama3Template(), takesDate: false, preQuery: 'official' },
  'llama-3.1': { create: (o) => llama31Template(o), takesDate: true, preQuery: 'official' },
  'llama-3.2': { create: (o) => llama32Template(o), takesDate: true, preQuery: 'official' },
  'llama-3.1-bare-query': { create: (o) => llama31BareQueryTemplate(o), takesDate: true, preQuery: 'reference' },
  'llama-3.2-bare-query': { create: (o) => llama32BareQueryTemplate(o), takesDate: true, preQuery: 'reference' },
};

/** WebLLM / Hugging Face model names → template id; checked in order against the name without any path prefix. */
const MODEL_PATTERNS: readonly (readonly [RegExp, string])[] = [
  [/^(?:meta-)?llama-3-\d+b-instruct(?:-|$)/i, 'llama-3'],
  [/^(?:meta-)?llama-3\.1-\d+b-instruct(?:-|$)/i, 'llama-3.1'],
  [/^(?:meta-)?llama-3\.2-\d+b-instruct(?:-|$)/i, 'llama-3.2'],
];

export function getTemplate(id: string, options: TemplateOptions = {}): ChatTemplate {
  const entry = Object.hasOwn(TEMPLATES, id) ? TEMPLATES[id] : undefined;
  if (!entry) {
    throw new Error(`Unknown chat template "${id}". Known templates: ${Object.keys(TEMPLATES).join(', ')}.`);
  }
  return entry.create(options);
}

export function listTemplates(): TemplateInfo[] {
  return Object.entries(TEMPLATES).map(([id, entry]) => ({
    id,
    label: entry.create({ dateString: '' }).label,
    takesDate: entry.takesDate,
    preQuery: entry.preQuery,
  }));
}

/**
 * The official template id for a model id such as "Llama-3.1-8B-Instruct-q4f16_1-MLC-1k" or
 * "meta-llama/Meta-Llama-3-8B-Instruct"; undefined for models whose family has no template here (including
 * fine-tunes like Hermes or DeepSeek distills, which use their own formats).
 */
export function templateIdForModel(modelId: string): string | undefined {
  const name = modelId.replace(/\/+$/, '').split('/').pop() ?? '';
  return MODEL_PATTERNS.find(([pattern]) => pattern.test(name))?.[1];
}
