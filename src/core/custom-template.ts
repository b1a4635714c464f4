/**
 * The template of a model the registry does not know, as stored on a run: the pre-query text plus what renders the
 * responses (the model's conv_template, or a registry template), so the template can be rebuilt on resume and an
 * exported dataset names the exact prompts that made it.
 */
import {
  checkPreQueryTemplate,
  customPreQueryTemplate,
  parseConvTemplate,
  templateFromConvTemplate,
  type MlcConvTemplate,
} from './conv-template';
import { getTemplate } from './templates/registry';
import type { FamilyTemplate } from './templates/types';

export interface CustomTemplateSpec {
  /** 'conv_template': derived from the model's mlc-chat-config.json as is; 'custom': a pre-query the user wrote. */
  source: 'conv_template' | 'custom';
  /** What the instruction step continues, without BOS. */
  preQuery: string;
  /** The model's conv_template: renders responses (and derives the pre-query). */
  convTemplate?: MlcConvTemplate;
  /** Or a registry template renders responses (a custom pre-query on a format the registry knows). */
  baseTemplateId?: string;
  /** BOS text (a conv_template keeps only ids): put in front once unless the engine adds it itself. */
  bosToken?: string;
}

/** The template that renders responses for a spec, before any custom pre-query is applied. */
export function customBaseTemplate(spec: Omit<CustomTemplateSpec, 'source' | 'preQuery'>): FamilyTemplate {
  if (spec.convTemplate) {
    return templateFromConvTemplate(spec.convTemplate, spec.bosToken === undefined ? {} : { bosToken: spec.bosToken });
  }
  if (spec.baseTemplateId !== undefined) return getTemplate(spec.baseTemplateId);
  throw new Error('A custom template needs the model\'s conv_template or a base template id to render responses.');
}

/** The spec of a conv_template's own pre-query (no system prompt, no injected default system message). */
export function convTemplateSpec(conv: MlcConvTemplate, bosToken?: string): CustomTemplateSpec {
  const spec: CustomTemplateSpec = { source: 'conv_template', preQuery: '', convTemplate: conv };
  if (bosToken !== undefined && bosToken !== '') spec.bosToken = bosToken;
  spec.preQuery = customBaseTemplate(spec).preQuery();
  return spec;
}

/**
 * The spec for a pre-query text on a base: 'conv_template' when the text is what the base derives, 'custom' when the
 * user changed it. Throws a PreQueryTemplateError when the text does not end where a user message begins.
 */
export function withPreQuery(base: Omit<CustomTemplateSpec, 'source' | 'preQuery'>, preQuery: string): CustomTemplateSpec {
  const template = customBaseTemplate(base);
  checkPreQueryTemplate(preQuery, template);
  const derived = base.convTemplate !== undefined && preQuery === template.preQuery();
  return { ...base, source: derived ? 'conv_template' : 'custom', preQuery };
}

/** Rebuilds the run's template from its stored spec (at start and on resume). */
export function buildCustomTemplate(spec: CustomTemplateSpec): FamilyTemplate {
  const base = customBaseTemplate(spec);
  if (spec.source === 'conv_template' && base.preQuery() === spec.preQuery) return base;
  return customPreQueryTemplate(spec.preQuery, base);
}

/**
 * Reads a spec from unknown JSON (a saved custom model, an imported recipe) into its normalized form, so a spec that
 * is written out and read back is equal to itself (recipe hashes depend on it). Throws when it cannot rebuild.
 */
export function parseCustomTemplateSpec(x: unknown): CustomTemplateSpec {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new Error('expected an object');
  const o = x as Record<string, unknown>;
  if (o.source !== 'conv_template' && o.source !== 'custom') throw new Error('source must be "conv_template" or "custom"');
  if (typeof o.preQuery !== 'string') throw new Error('preQuery must be a string');
  const spec: CustomTemplateSpec = { source: o.source, preQuery: o.preQuery };
  if (o.convTemplate !== undefined) spec.convTemplate = parseConvTemplate(o.convTemplate);
  if (o.baseTemplateId !== undefined) {
    if (typeof o.baseTemplateId !== 'string') throw new Error('baseTemplateId must be a string');
    spec.baseTemplateId = o.baseTemplateId;
  }
  if (o.bosToken !== undefined) {
    if (typeof o.bosToken !== 'string') throw new Error('bosToken must be a string');
    spec.bosToken = o.bosToken;
  }
  buildCustomTemplate(spec);
  return spec;
}
