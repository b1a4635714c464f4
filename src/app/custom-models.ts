/**
 * Models the registry does not know: added by URL (weights + model library) or picked from WebLLM's prebuilt list,
 * each with the pre-query template derived from its conv_template (or written by the user). Saved in localStorage;
 * the storage is injected, so everything but `browserCustomModelStore` runs in Node.
 */
import { parseConvTemplate, type MlcConvTemplate } from '../core/conv-template';
import { buildCustomTemplate, customBaseTemplate, withPreQuery, type CustomTemplateSpec } from '../core/custom-template';
import type { FamilyTemplate } from '../core/templates/types';
import type { CustomModelRecord } from '../engine/worker-api';

export const CUSTOM_MODELS_KEY = 'magpie-web:custom-models';

export interface CustomModel {
  /** The WebLLM model_id and the picker value (for a prebuilt model, its prebuilt id). */
  modelId: string;
  /** 'url': weights and library URLs given by the user; 'prebuilt': in WebLLM's list, but not in the registry. */
  kind: 'url' | 'prebuilt';
  /** The weights URL as typed (absolute); WebLLM loads from effectiveModelUrl(modelUrl). */
  modelUrl: string;
  /** The model library (wasm) URL; empty for prebuilt models. */
  modelLibUrl: string;
  vramMB?: number;
  contextWindow?: number;
  template: CustomTemplateSpec;
  /** ms since epoch. */
  addedAt: number;
}

/** What WebLLM does to ModelRecord.model: a trailing "/" and "resolve/main/" unless a resolve/…/ part is there. */
export function effectiveModelUrl(modelUrl: string): string {
  let url = modelUrl.endsWith('/') ? modelUrl : `${modelUrl}/`;
  if (!/.+\/resolve\/.+\//.test(url)) url += 'resolve/main/';
  return new URL(url).href;
}

/** Where the model's mlc-chat-config.json is fetched from. */
export function mlcChatConfigUrl(modelUrl: string): string {
  return new URL('mlc-chat-config.json', effectiveModelUrl(modelUrl)).href;
}

/** An absolute http(s) URL, or why not. */
export function checkAbsoluteUrl(text: string, what: string): string | null {
  const t = text.trim();
  if (t === '') return `Enter the ${what}.`;
  let url: URL;
  try {
    url = new URL(t);
  } catch {
    return `The ${what} must be an absolute URL (https://…); WebLLM cannot resolve a relative one inside its worker.`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `The ${what} must start with https:// or http://.`;
  return null;
}

/** WebLLM model ids name files in the cache: keep them to safe characters. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function checkModelName(name: string, taken: readonly string[]): string | null {
  const t = name.trim();
  if (t === '') return 'Give the model a name (its WebLLM model_id).';
  if (!MODEL_NAME.test(t)) return 'Use letters, digits, ".", "_" and "-" only.';
  if (taken.includes(t)) return `A model named ${t} is already listed.`;
  return null;
}

/** An optional positive whole number of megabytes. */
export function parseVram(text: string): number | undefined | string {
  const t = text.trim();
  if (t === '') return undefined;
  if (!/^\d+$/.test(t) || Number(t) <= 0) return 'VRAM must be a whole number of megabytes.';
  return Number(t);
}

/**
 * BOS token text by its id in system_prefix_token_ids: the conv_template keeps only the id, and a raw prompt needs the
 * text. Unknown ids leave it to the user (and to the BOS probe).
 */
const KNOWN_BOS: Readonly<Record<number, string>> = {
  128000: '<|begin_of_text|>', // Llama 3.x
  1: '<s>', // Llama 2, Mistral, Phi-3 (SentencePiece)
  2: '<bos>', // Gemma
};

export function bosTokenFor(conv: Pick<MlcConvTemplate, 'system_prefix_token_ids'>): string {
  const first = conv.system_prefix_token_ids?.[0];
  return first === undefined ? '' : (KNOWN_BOS[first] ?? '');
}

/** Reads the conv_template from a fetched mlc-chat-config.json. */
export async function fetchConvTemplate(
  configUrl: string,
  fetchImpl: (url: string) => Promise<Response> = (url) => fetch(url),
): Promise<MlcConvTemplate> {
  let response: Response;
  try {
    response = await fetchImpl(configUrl);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`Could not fetch ${configUrl} (${why}). Check the URL, and that the server allows this origin (CORS).`);
  }
  if (!response.ok) throw new Error(`Fetching ${configUrl} answered ${response.status} ${response.statusText}.`.trim());
  let json: unknown;
  try {
    json = await response.json();
  } catch {
    throw new Error(`${configUrl} is not JSON: is it an MLC model folder?`);
  }
  return parseConvTemplate(json);
}

/** The record the worker appends to its appConfig; undefined for prebuilt models (WebLLM already has them). */
export function toWorkerRecord(model: CustomModel): CustomModelRecord | undefined {
  if (model.kind !== 'url') return undefined;
  const record: CustomModelRecord = { model: model.modelUrl, model_id: model.modelId, model_lib: model.modelLibUrl };
  if (model.vramMB !== undefined) record.vram_required_MB = model.vramMB;
  if (model.contextWindow !== undefined) record.overrides = { context_window_size: model.contextWindow };
  return record;
}

export function templateForCustomModel(model: CustomModel): FamilyTemplate {
  return buildCustomTemplate(model.template);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** One stored entry, or undefined when it is not a usable custom model (it is dropped, not fatal). */
export function parseCustomModel(x: unknown): CustomModel | undefined {
  if (!isObject(x)) return undefined;
  const { modelId, kind, modelUrl, modelLibUrl, vramMB, contextWindow, template, addedAt } = x;
  if (typeof modelId !== 'string' || modelId === '') return undefined;
  if (kind !== 'url' && kind !== 'prebuilt') return undefined;
  if (typeof modelUrl !== 'string' || typeof modelLibUrl !== 'string') return undefined;
  if (!isObject(template) || (template.source !== 'conv_template' && template.source !== 'custom')) return undefined;
  if (typeof template.preQuery !== 'string') return undefined;
  const spec: CustomTemplateSpec = { source: template.source, preQuery: template.preQuery };
  try {
    if (template.convTemplate !== undefined) spec.convTemplate = parseConvTemplate(template.convTemplate);
    if (typeof template.baseTemplateId === 'string') spec.baseTemplateId = template.baseTemplateId;
    if (typeof template.bosToken === 'string') spec.bosToken = template.bosToken;
    // A stored template that no longer builds (e.g. a base id this version dropped) cannot run.
    buildCustomTemplate(spec);
  } catch {
    return undefined;
  }
  const model: CustomModel = {
    modelId,
    kind,
    modelUrl,
    modelLibUrl,
    template: spec,
    addedAt: typeof addedAt === 'number' ? addedAt : 0,
  };
  if (typeof vramMB === 'number' && vramMB > 0) model.vramMB = vramMB;
  if (typeof contextWindow === 'number' && contextWindow > 0) model.contextWindow = contextWindow;
  return model;
}

/** The subset of Web Storage used here. */
export type KeyValueStorage = Pick<Storage, 'getItem' | 'setItem'>;

/** Custom models saved under one localStorage key, as a JSON list. */
export class CustomModelStore {
  constructor(
    private readonly storage: KeyValueStorage | undefined,
    private readonly key: string = CUSTOM_MODELS_KEY,
  ) {}

  list(): CustomModel[] {
    const text = this.storage?.getItem(this.key);
    if (!text) return [];
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return [];
    }
    if (!Array.isArray(json)) return [];
    return json.map(parseCustomModel).filter((m): m is CustomModel => m !== undefined);
  }

  /** Adds the model, or replaces the one with the same model id. */
  save(model: CustomModel): CustomModel[] {
    const models = [...this.list().filter((m) => m.modelId !== model.modelId), model];
    this.write(models);
    return models;
  }

  remove(modelId: string): CustomModel[] {
    const models = this.list().filter((m) => m.modelId !== modelId);
    this.write(models);
    return models;
  }

  private write(models: CustomModel[]): void {
    if (!this.storage) throw new Error('This browser gives no local storage: custom models cannot be saved.');
    this.storage.setItem(this.key, JSON.stringify(models));
  }
}

/** The page's store (localStorage); without it (blocked site data) nothing is saved. */
export function browserCustomModelStore(): CustomModelStore {
  let storage: KeyValueStorage | undefined;
  try {
    storage = typeof localStorage === 'undefined' ? undefined : localStorage;
  } catch {
    // Reading localStorage throws when site data is blocked.
    storage = undefined;
  }
  return new CustomModelStore(storage);
}

/** The "Add a model" form as typed. */
export interface CustomModelForm {
  kind: 'url' | 'prebuilt';
  /** The model_id: a new name (by URL) or the prebuilt id. */
  name: string;
  modelUrl: string;
  modelLibUrl: string;
  vram: string;
  /** The pre-query template text (raw: real newlines). */
  preQuery: string;
  /** BOS token text for a conv_template base. */
  bosToken: string;
}

export type CustomModelField = keyof CustomModelForm;

/** What renders responses for the new model: its fetched conv_template, or a registry template the user picked. */
export type CustomTemplateBase = { convTemplate: MlcConvTemplate } | { baseTemplateId: string };

export type CustomModelResult =
  | { ok: true; model: CustomModel }
  | { ok: false; errors: Partial<Record<CustomModelField | 'base', string>> };

/** Validates the form; every problem is reported at its field. `taken`: ids the new name may not reuse. */
export function buildCustomModel(
  form: CustomModelForm,
  base: CustomTemplateBase | undefined,
  taken: readonly string[],
  now: number,
): CustomModelResult {
  const errors: Partial<Record<CustomModelField | 'base', string>> = {};
  const name = form.name.trim();
  const nameError = form.kind === 'url' ? checkModelName(name, taken) : name === '' ? 'Pick a prebuilt model.' : null;
  if (nameError) errors.name = nameError;
  const urlError = checkAbsoluteUrl(form.modelUrl, 'model weights URL');
  if (urlError) errors.modelUrl = urlError;
  if (form.kind === 'url') {
    const libError = checkAbsoluteUrl(form.modelLibUrl, 'model library (wasm) URL');
    if (libError) errors.modelLibUrl = libError;
  }
  const vram = parseVram(form.vram);
  if (typeof vram === 'string') errors.vram = vram;
  let template: CustomTemplateSpec | undefined;
  if (!base) {
    errors.base = 'Read the chat template from the model (mlc-chat-config.json), or pick a known format.';
  } else {
    const spec: Omit<CustomTemplateSpec, 'source' | 'preQuery'> =
      'convTemplate' in base ? { convTemplate: base.convTemplate } : { baseTemplateId: base.baseTemplateId };
    const bos = form.bosToken.trim();
    if ('convTemplate' in base && bos !== '') spec.bosToken = bos;
    try {
      template = withPreQuery(spec, form.preQuery);
    } catch (err) {
      errors.preQuery = err instanceof Error ? err.message : String(err);
    }
  }
  if (Object.keys(errors).length > 0 || !template) return { ok: false, errors };
  const model: CustomModel = {
    modelId: name,
    kind: form.kind,
    modelUrl: form.modelUrl.trim(),
    modelLibUrl: form.kind === 'url' ? form.modelLibUrl.trim() : '',
    template,
    addedAt: now,
  };
  if (typeof vram === 'number') model.vramMB = vram;
  return { ok: true, model };
}

/** The pre-query a base derives (the form's starting text), or the error that stops it. */
export function derivedPreQuery(base: CustomTemplateBase, bosToken: string): string {
  const spec: Omit<CustomTemplateSpec, 'source' | 'preQuery'> =
    'convTemplate' in base ? { convTemplate: base.convTemplate } : { baseTemplateId: base.baseTemplateId };
  if ('convTemplate' in base && bosToken.trim() !== '') spec.bosToken = bosToken.trim();
  return customBaseTemplate(spec).preQuery();
}
