/**
 * A run's complete recipe: everything that decides its prompts and sampling (model, template, quirks, mode, system
 * prompts and weights, sampling settings and mixes, seed, engine) as one JSON object. Exported as a file and
 * imported to start an identical run; its hash is stored on every record and in the full-metadata export.
 */
import { buildCustomTemplate, parseCustomTemplateSpec, type CustomTemplateSpec } from './custom-template';
import type { Quirks } from './quirks';
import type { RunSettings, SamplingSettings } from './record';
import { MAX_COUNT, MAX_SEED } from './settings';
import { sha256Hex } from './sha256';
import { getTemplate, listTemplates } from './templates/registry';
import type { ChatTemplate, FamilyTemplate } from './templates/types';

/**
 * The newest recipe version this app reads. Version 2 adds `template.custom` (a custom model's template); a recipe
 * without one is still written as version 1, so its hash stays what it was and older apps still read it.
 */
export const RECIPE_VERSION = 2;
export type RecipeVersion = 1 | 2;
/** Conversations longer than this are refused; above WARN_TURNS quality drops (magpie-method.md §4). */
export const MAX_TURNS = 10;
export const WARN_TURNS = 4;
export const MAX_CANDIDATES = 16;

export interface SystemPromptChoice {
  /** Stored on each record that drew it, e.g. "math" or "custom-1". */
  key: string;
  prompt: string;
  /** Relative weight (> 0); draws are proportional to it. */
  weight: number;
}

export interface SystemPromptMixture {
  prompts: SystemPromptChoice[];
  /** Write the drawn system prompt into exported conversations (it always steers generation). */
  includeInExport: boolean;
}

/** One instruction-sampling setting of a mixed run; `share` is relative, like a weight. */
export interface SamplingShare {
  temperature: number;
  topP: number;
  share: number;
}

export type ModeOptions =
  | { kind: 'pair' }
  | { kind: 'instruction-only' }
  | {
      kind: 'multi-turn';
      /** Number of user turns (1..MAX_TURNS). */
      turns: number;
      /** Used only when writing follow-up queries (turn ≥ 2); null: the conversation's own system prompt. */
      followUpSystem: string | null;
      /** The last turn is a user query with no response. */
      endWithUser: boolean;
    }
  | {
      kind: 'preference';
      /** Responses per instruction (2..MAX_CANDIDATES). */
      candidates: number;
      temperature: number;
      topP: number;
      /** 'model': the loaded model scores the candidates; 'manual': the user marks chosen/rejected. */
      judge: 'model' | 'manual';
    };

export type ModeKind = ModeOptions['kind'];

export interface ImportedInstruction {
  /** 1-based line number in the imported file. */
  line: number;
  text: string;
}

export type InstructionSource =
  | { kind: 'generated' }
  /** Attempt k answers instructions[k - 1]. */
  | { kind: 'imported'; fileName: string; instructions: ImportedInstruction[] };

export interface RecipeTemplate {
  id: string;
  dateString?: string;
  /** Version 2: the template of a model the registry does not know, with what rebuilds it (run.customTemplate). */
  custom?: CustomTemplateSpec;
}

export interface Recipe {
  version: RecipeVersion;
  model: string;
  engine: string;
  template: RecipeTemplate;
  quirks?: Quirks;
  seed: number | null;
  count: number;
  sampling: { instruction: SamplingSettings; response: SamplingSettings; instructionMix: SamplingShare[] };
  mode: ModeOptions;
  source: InstructionSource;
  system: SystemPromptMixture | null;
}

/** The part of a recipe the Mode settings edit (the rest comes from the model and the run settings). */
export interface ModeSettings {
  mode: ModeOptions;
  source: InstructionSource;
  system: SystemPromptMixture | null;
  instructionMix: SamplingShare[];
}

export const DEFAULT_MODE_SETTINGS: ModeSettings = {
  mode: { kind: 'pair' },
  source: { kind: 'generated' },
  system: null,
  instructionMix: [],
};

export interface RecipeInput {
  model: string;
  engine: string;
  template: ChatTemplate;
  settings: RunSettings;
  modes: ModeSettings;
  quirks?: Quirks;
  /** The run's custom template (a model the registry does not know); `template` must be the one it builds. */
  customTemplate?: CustomTemplateSpec;
}

export function buildRecipe(input: RecipeInput): Recipe {
  const dated: unknown = (input.template as unknown as Record<string, unknown>).dateString;
  const template: RecipeTemplate = typeof dated === 'string' ? { id: input.template.id, dateString: dated } : { id: input.template.id };
  // Normalized as parseRecipe reads it, so an exported and re-imported recipe keeps its hash.
  if (input.customTemplate) template.custom = parseCustomTemplateSpec(structuredCloneJson(input.customTemplate));
  const recipe: Recipe = {
    version: template.custom ? 2 : 1,
    model: input.model,
    engine: input.engine,
    template,
    seed: input.settings.seed,
    count: input.settings.count,
    sampling: {
      instruction: { ...input.settings.instruction },
      response: { ...input.settings.response },
      instructionMix: input.modes.instructionMix.map((m) => ({ ...m })),
    },
    mode: { ...input.modes.mode },
    source: input.modes.source,
    system: input.modes.system,
  };
  if (input.quirks) recipe.quirks = input.quirks;
  return structuredCloneJson(recipe);
}

/** The template a recipe's prompts are rendered with: its custom template, or the registry's (with its date). */
export function recipeTemplate(recipe: Pick<Recipe, 'template'>): FamilyTemplate {
  const t = recipe.template;
  if (t.custom) return buildCustomTemplate(t.custom);
  return getTemplate(t.id, t.dateString === undefined ? {} : { dateString: t.dateString });
}

/** The run settings a recipe implies (what the runner and the settings form use). */
export function recipeSettings(recipe: Recipe): RunSettings {
  return {
    count: recipe.count,
    seed: recipe.seed,
    instruction: { ...recipe.sampling.instruction },
    response: { ...recipe.sampling.response },
  };
}

export function recipeModes(recipe: Recipe): ModeSettings {
  return {
    mode: recipe.mode,
    source: recipe.source,
    system: recipe.system,
    instructionMix: recipe.sampling.instructionMix,
  };
}

function structuredCloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** JSON with object keys sorted at every level, so equal recipes give equal text whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('canonicalJson: non-finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v: unknown) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** SHA-256 (hex) of the recipe's canonical JSON. */
export function recipeHash(recipe: Recipe): string {
  return sha256Hex(canonicalJson(recipe));
}

// --- validation ------------------------------------------------------------------------------------------------

export interface RecipeFieldError {
  /** Where the problem is, e.g. "system.prompts[1].weight". */
  path: string;
  message: string;
}

export type RecipeParse = { ok: true; recipe: Recipe } | { ok: false; errors: RecipeFieldError[] };

type Obj = Record<string, unknown>;

class Reader {
  readonly errors: RecipeFieldError[] = [];
  fail(path: string, message: string): undefined {
    this.errors.push({ path, message });
    return undefined;
  }
  object(v: unknown, path: string): Obj | undefined {
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : this.fail(path, 'must be an object');
  }
  array(v: unknown, path: string): unknown[] | undefined {
    return Array.isArray(v) ? v : this.fail(path, 'must be a list');
  }
  string(v: unknown, path: string, nonEmpty = false): string | undefined {
    if (typeof v !== 'string') return this.fail(path, 'must be a string');
    if (nonEmpty && v.trim() === '') return this.fail(path, 'must not be empty');
    return v;
  }
  boolean(v: unknown, path: string): boolean | undefined {
    return typeof v === 'boolean' ? v : this.fail(path, 'must be true or false');
  }
  number(v: unknown, path: string, min: number, max: number, opts: { integer?: boolean; exclusiveMin?: boolean } = {}): number | undefined {
    if (typeof v !== 'number' || !Number.isFinite(v)) return this.fail(path, 'must be a number');
    if (opts.integer && !Number.isInteger(v)) return this.fail(path, 'must be a whole number');
    if (opts.exclusiveMin ? v <= min : v < min) return this.fail(path, `must be ${opts.exclusiveMin ? 'greater than' : 'at least'} ${min}`);
    if (v > max) return this.fail(path, `must be at most ${max}`);
    return v;
  }
}

function readSampling(r: Reader, v: unknown, path: string): SamplingSettings | undefined {
  const o = r.object(v, path);
  if (!o) return undefined;
  const temperature = r.number(o.temperature, `${path}.temperature`, 0, 2);
  const topP = r.number(o.topP, `${path}.topP`, 0, 1, { exclusiveMin: true });
  const maxTokens = r.number(o.maxTokens, `${path}.maxTokens`, 1, 1_000_000, { integer: true });
  if (temperature === undefined || topP === undefined || maxTokens === undefined) return undefined;
  return { temperature, topP, maxTokens };
}

function readQuirks(r: Reader, v: unknown): Quirks | undefined {
  const o = r.object(v, 'quirks');
  if (!o) return undefined;
  const earlyStopNewline = r.boolean(o.earlyStopNewline, 'quirks.earlyStopNewline');
  const assistantStopWord = r.boolean(o.assistantStopWord, 'quirks.assistantStopWord');
  const sanitize = r.boolean(o.sanitize, 'quirks.sanitize');
  let firstTokenBan: Quirks['firstTokenBan'] | undefined = null;
  if (o.firstTokenBan !== null) {
    const ban = r.object(o.firstTokenBan, 'quirks.firstTokenBan');
    const ids = ban ? r.array(ban.tokenIds, 'quirks.firstTokenBan.tokenIds') : undefined;
    const strings = ban ? r.array(ban.strings, 'quirks.firstTokenBan.strings') : undefined;
    const okIds = ids?.every((id) => typeof id === 'number' && Number.isInteger(id) && id >= 0);
    const okStrings = strings?.every((s) => typeof s === 'string');
    if (ids && !okIds) r.fail('quirks.firstTokenBan.tokenIds', 'must be a list of token ids');
    if (strings && !okStrings) r.fail('quirks.firstTokenBan.strings', 'must be a list of strings');
    firstTokenBan = ids && strings && okIds && okStrings ? { tokenIds: ids as number[], strings: strings as string[] } : undefined;
  }
  if (earlyStopNewline === undefined || assistantStopWord === undefined || sanitize === undefined || firstTokenBan === undefined) {
    return undefined;
  }
  return { firstTokenBan, earlyStopNewline, assistantStopWord, sanitize };
}

function readMode(r: Reader, v: unknown): ModeOptions | undefined {
  const o = r.object(v, 'mode');
  if (!o) return undefined;
  switch (o.kind) {
    case 'pair':
    case 'instruction-only':
      return { kind: o.kind };
    case 'multi-turn': {
      const turns = r.number(o.turns, 'mode.turns', 1, MAX_TURNS, { integer: true });
      const followUpSystem = o.followUpSystem === null ? null : r.string(o.followUpSystem, 'mode.followUpSystem', true);
      const endWithUser = r.boolean(o.endWithUser, 'mode.endWithUser');
      if (turns === undefined || followUpSystem === undefined || endWithUser === undefined) return undefined;
      return { kind: 'multi-turn', turns, followUpSystem, endWithUser };
    }
    case 'preference': {
      const candidates = r.number(o.candidates, 'mode.candidates', 2, MAX_CANDIDATES, { integer: true });
      // Greedy candidates would all be the same text: a preference pair needs sampling.
      const temperature = r.number(o.temperature, 'mode.temperature', 0, 2, { exclusiveMin: true });
      const topP = r.number(o.topP, 'mode.topP', 0, 1, { exclusiveMin: true });
      const judge = o.judge === 'model' || o.judge === 'manual' ? o.judge : r.fail('mode.judge', 'must be "model" or "manual"');
      if (candidates === undefined || temperature === undefined || topP === undefined || judge === undefined) return undefined;
      return { kind: 'preference', candidates, temperature, topP, judge };
    }
    default:
      return r.fail('mode.kind', 'must be one of pair, instruction-only, multi-turn, preference');
  }
}

function readSource(r: Reader, v: unknown): InstructionSource | undefined {
  const o = r.object(v, 'source');
  if (!o) return undefined;
  if (o.kind === 'generated') return { kind: 'generated' };
  if (o.kind !== 'imported') return r.fail('source.kind', 'must be "generated" or "imported"');
  const fileName = r.string(o.fileName, 'source.fileName');
  const list = r.array(o.instructions, 'source.instructions');
  if (!list) return undefined;
  if (list.length === 0) r.fail('source.instructions', 'must hold at least one instruction');
  const instructions: ImportedInstruction[] = [];
  list.forEach((item, i) => {
    const path = `source.instructions[${i}]`;
    const io = r.object(item, path);
    if (!io) return;
    const line = r.number(io.line, `${path}.line`, 1, Number.MAX_SAFE_INTEGER, { integer: true });
    const text = r.string(io.text, `${path}.text`, true);
    if (line !== undefined && text !== undefined) instructions.push({ line, text });
  });
  if (fileName === undefined || instructions.length !== list.length) return undefined;
  return { kind: 'imported', fileName, instructions };
}

function readSystem(r: Reader, v: unknown): SystemPromptMixture | null | undefined {
  if (v === null) return null;
  const o = r.object(v, 'system');
  if (!o) return undefined;
  const includeInExport = r.boolean(o.includeInExport, 'system.includeInExport');
  const list = r.array(o.prompts, 'system.prompts');
  if (!list) return undefined;
  if (list.length === 0) r.fail('system.prompts', 'must hold at least one system prompt (or set system to null)');
  const prompts: SystemPromptChoice[] = [];
  const keys = new Set<string>();
  list.forEach((item, i) => {
    const path = `system.prompts[${i}]`;
    const io = r.object(item, path);
    if (!io) return;
    const key = r.string(io.key, `${path}.key`, true);
    const prompt = r.string(io.prompt, `${path}.prompt`, true);
    const weight = r.number(io.weight, `${path}.weight`, 0, 1_000_000, { exclusiveMin: true });
    if (key !== undefined && keys.has(key)) r.fail(`${path}.key`, `"${key}" is used twice`);
    if (key !== undefined) keys.add(key);
    if (key !== undefined && prompt !== undefined && weight !== undefined) prompts.push({ key, prompt, weight });
  });
  if (includeInExport === undefined || prompts.length !== list.length) return undefined;
  return { prompts, includeInExport };
}

function readMix(r: Reader, v: unknown): SamplingShare[] | undefined {
  const list = r.array(v, 'sampling.instructionMix');
  if (!list) return undefined;
  const mix: SamplingShare[] = [];
  list.forEach((item, i) => {
    const path = `sampling.instructionMix[${i}]`;
    const o = r.object(item, path);
    if (!o) return;
    const temperature = r.number(o.temperature, `${path}.temperature`, 0, 2);
    const topP = r.number(o.topP, `${path}.topP`, 0, 1, { exclusiveMin: true });
    const share = r.number(o.share, `${path}.share`, 0, 1_000_000, { exclusiveMin: true });
    if (temperature !== undefined && topP !== undefined && share !== undefined) mix.push({ temperature, topP, share });
  });
  return mix.length === list.length ? mix : undefined;
}

/** template.custom (version 2 only); without one, the id must name a registry template. */
function readCustomTemplate(r: Reader, version: RecipeVersion, templateId: string, v: unknown): CustomTemplateSpec | undefined {
  if (v === undefined) {
    if (!listTemplates().some((info) => info.id === templateId)) {
      r.fail(
        'template.id',
        `"${templateId}" is not a known chat template; a recipe from a custom model carries its template in template.custom (recipe version 2)`,
      );
    }
    return undefined;
  }
  if (version < 2) return r.fail('template.custom', 'needs recipe version 2');
  let spec: CustomTemplateSpec;
  try {
    spec = parseCustomTemplateSpec(v);
  } catch (err) {
    return r.fail('template.custom', err instanceof Error ? err.message : String(err));
  }
  const built = buildCustomTemplate(spec).id;
  // The id is stored on every record: it must be the one this template builds.
  if (built !== templateId) return r.fail('template.id', `must be "${built}", the id of template.custom`);
  return spec;
}

/** Validates a recipe (a JSON text or a parsed value); every problem is reported with its field path. */
export function parseRecipe(input: unknown): RecipeParse {
  const r = new Reader();
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input) as unknown;
    } catch (err) {
      return { ok: false, errors: [{ path: '', message: `not valid JSON (${err instanceof Error ? err.message : String(err)})` }] };
    }
  }
  const o = r.object(value, '');
  if (!o) return { ok: false, errors: r.errors };
  if (o.version !== 1 && o.version !== 2) {
    return { ok: false, errors: [{ path: 'version', message: `must be 1 or 2 (this app reads recipe versions 1 to ${RECIPE_VERSION})` }] };
  }
  const version: RecipeVersion = o.version;
  const model = r.string(o.model, 'model', true);
  const engine = r.string(o.engine, 'engine', true);
  const t = r.object(o.template, 'template');
  const templateId = t ? r.string(t.id, 'template.id', true) : undefined;
  const dateString = t && t.dateString !== undefined ? r.string(t.dateString, 'template.dateString') : undefined;
  const custom = t && templateId !== undefined ? readCustomTemplate(r, version, templateId, t.custom) : undefined;
  const quirks = o.quirks === undefined ? undefined : readQuirks(r, o.quirks);
  const seed = o.seed === null ? null : r.number(o.seed, 'seed', 0, MAX_SEED, { integer: true });
  const count = r.number(o.count, 'count', 1, MAX_COUNT, { integer: true });
  const s = r.object(o.sampling, 'sampling');
  const instruction = s ? readSampling(r, s.instruction, 'sampling.instruction') : undefined;
  const response = s ? readSampling(r, s.response, 'sampling.response') : undefined;
  const instructionMix = s ? readMix(r, s.instructionMix) : undefined;
  const mode = readMode(r, o.mode);
  const source = readSource(r, o.source);
  const system = readSystem(r, o.system);

  if (mode?.kind === 'instruction-only' && source?.kind === 'imported') {
    r.fail('mode.kind', 'instruction-only makes no sense with imported instructions: they need responses');
  }
  if (source?.kind === 'imported' && count !== undefined && count > source.instructions.length) {
    r.fail('count', `must be at most ${source.instructions.length}, the number of imported instructions`);
  }
  if (
    r.errors.length > 0 ||
    model === undefined ||
    engine === undefined ||
    templateId === undefined ||
    seed === undefined ||
    count === undefined ||
    instruction === undefined ||
    response === undefined ||
    instructionMix === undefined ||
    mode === undefined ||
    source === undefined ||
    system === undefined
  ) {
    return { ok: false, errors: r.errors };
  }
  const template: RecipeTemplate = dateString === undefined ? { id: templateId } : { id: templateId, dateString };
  if (custom) template.custom = custom;
  const recipe: Recipe = {
    version,
    model,
    engine,
    template,
    seed,
    count,
    sampling: { instruction, response, instructionMix },
    mode,
    source,
    system,
  };
  if (quirks) recipe.quirks = quirks;
  return { ok: true, recipe };
}

/**
 * Checks the recipe's system prompts against the template by rendering them, so a family without a system role
 * (Gemma-2) is refused at validation time with the template's own message, not halfway through a run.
 */
export function validateForTemplate(recipe: Pick<Recipe, 'system' | 'mode'>, template: ChatTemplate): RecipeFieldError[] {
  const errors: RecipeFieldError[] = [];
  const tryRender = (path: string, system: string) => {
    try {
      template.render([{ role: 'system', content: system }, { role: 'user', content: 'x' }], { addGenerationPrompt: true });
      template.preQuery({ system });
    } catch (err) {
      errors.push({ path, message: err instanceof Error ? err.message : String(err) });
    }
  };
  recipe.system?.prompts.forEach((p, i) => tryRender(`system.prompts[${i}].prompt`, p.prompt));
  if (recipe.mode.kind === 'multi-turn' && recipe.mode.followUpSystem !== null && recipe.mode.turns > 1) {
    tryRender('mode.followUpSystem', recipe.mode.followUpSystem);
  }
  return errors;
}

/** Warnings that do not block a run. */
export function recipeWarnings(recipe: Pick<Recipe, 'mode'>): string[] {
  const warnings: string[] = [];
  if (recipe.mode.kind === 'multi-turn' && recipe.mode.turns > WARN_TURNS) {
    warnings.push(`Conversations longer than ${WARN_TURNS} turns tend to drift off topic and lose quality.`);
  }
  return warnings;
}

/** A readable one-line summary of the errors, for a notice. */
export function describeRecipeErrors(errors: readonly RecipeFieldError[]): string {
  return errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; ');
}
