/**
 * The template and quirks a run will use, as the user sees and changes them: the family's official pre-query or
 * the Magpie reference's variant, each quirk on or off (defaults from the family), and the sampling the family's
 * reference used, prefilled into the settings form where the user has not typed. Pure: no DOM.
 */
import { LLAMA3_HEADER_BAN, instructionStopFor, type FirstTokenBan, type Quirks } from '../core/quirks';
import type { SettingsField, SettingsForm } from '../core/settings';
import { getTemplate, listTemplates, type TemplateInfo } from '../core/templates/registry';
import type { DefaultSampling, FamilyTemplate } from '../core/templates/types';

export interface TemplateChoice {
  /** The picker value the choice belongs to (a prebuilt id, a scripted id or a custom-model id). */
  modelId: string;
  /** A registry template id, or a custom model's template id. */
  templateId: string;
  quirks: Quirks;
}

/** The registry id of the family's official template for a (possibly reference-variant) template id. */
export function officialTemplateId(templateId: string): string {
  const all = listTemplates();
  const self = all.find((t) => t.id === templateId);
  if (!self || self.preQuery === 'official') return templateId;
  // Reference variants are named `{official}-{suffix}`; the longest official prefix is the family.
  const officials = all.filter((t) => t.preQuery === 'official' && templateId.startsWith(`${t.id}-`));
  officials.sort((a, b) => b.id.length - a.id.length);
  return officials[0]?.id ?? templateId;
}

/** The official template and the reference pre-query variants of one family, official first. */
export function familyVariants(templateId: string): TemplateInfo[] {
  const official = officialTemplateId(templateId);
  const all = listTemplates();
  const longer = all.filter((t) => t.preQuery === 'official' && t.id !== official && t.id.startsWith(`${official}-`));
  return all.filter(
    (t) =>
      t.id === official ||
      (t.preQuery === 'reference' && t.id.startsWith(`${official}-`) && !longer.some((o) => t.id.startsWith(`${o.id}-`))),
  );
}

/**
 * The header ban this family's tokenizer supports: the family's own default, or the Llama-3 header ids for every
 * template on the Llama-3 tokenizer (Llama-3.0 and Hermes-3 default to no ban, but may turn it on).
 */
export function availableBan(template: Pick<FamilyTemplate, 'id' | 'quirks'>): FirstTokenBan | null {
  if (template.quirks.firstTokenBan) return template.quirks.firstTokenBan;
  return /^(llama-3|hermes-3)/.test(template.id) ? LLAMA3_HEADER_BAN : null;
}

export function defaultChoice(modelId: string, template: Pick<FamilyTemplate, 'id' | 'quirks'>): TemplateChoice {
  return { modelId, templateId: template.id, quirks: copyQuirks(template.quirks) };
}

function copyQuirks(q: Quirks): Quirks {
  return {
    ...q,
    firstTokenBan: q.firstTokenBan
      ? { tokenIds: [...q.firstTokenBan.tokenIds], strings: [...q.firstTokenBan.strings] }
      : null,
  };
}

export type QuirkKey = keyof Quirks;

/** Turns one quirk on or off; the ban cannot be turned on for a tokenizer without a known ban list. */
export function withQuirk(choice: TemplateChoice, key: QuirkKey, on: boolean, template: Pick<FamilyTemplate, 'id' | 'quirks'>): TemplateChoice {
  const quirks = copyQuirks(choice.quirks);
  if (key === 'firstTokenBan') {
    const ban = on ? availableBan(template) : null;
    quirks.firstTokenBan = ban ? { tokenIds: [...ban.tokenIds], strings: [...ban.strings] } : null;
  } else {
    quirks[key] = on;
  }
  return { ...choice, quirks };
}

export function isQuirkOn(quirks: Quirks, key: QuirkKey): boolean {
  return key === 'firstTokenBan' ? quirks.firstTokenBan !== null : quirks[key];
}

/** The stop strings the instruction step will send with these quirks. */
export function instructionStops(template: Pick<FamilyTemplate, 'instructionStop'>, quirks: Quirks): string[] {
  return instructionStopFor(template, quirks);
}

/**
 * Template text with nothing hidden: newlines as "\n", tabs "\t", other control characters as \uXXXX, and a space
 * at either end as "␠" (Mistral's pre-query ends in one). Special tokens are plain text already.
 */
export function showTemplateText(text: string): string {
  let escaped = '';
  for (const c of text) {
    const code = c.charCodeAt(0);
    if (c === '\n') escaped += '\\n';
    else if (c === '\t') escaped += '\\t';
    else if (c === '\r') escaped += '\\r';
    else if (code < 0x20 || code === 0x7f) escaped += `\\u${code.toString(16).padStart(4, '0')}`;
    else escaped += c;
  }
  return escaped.replace(/^ /, '␠').replace(/ $/, '␠');
}

/** The registry template for a choice (dated templates use their default date). */
export function registryTemplate(templateId: string): FamilyTemplate | undefined {
  try {
    return getTemplate(templateId);
  } catch {
    return undefined;
  }
}

const SAMPLING_FIELDS: ReadonlyArray<[SettingsField, (s: DefaultSampling) => number]> = [
  ['instructionTemperature', (s) => s.instruction.temperature],
  ['instructionTopP', (s) => s.instruction.topP],
  ['instructionMaxTokens', (s) => s.instruction.maxTokens],
  ['responseTemperature', (s) => s.response.temperature],
  ['responseTopP', (s) => s.response.topP],
  ['responseMaxTokens', (s) => s.response.maxTokens],
];

/** The form with the family's reference sampling in every sampling field the user has not edited. */
export function prefillSampling(form: SettingsForm, edited: ReadonlySet<SettingsField>, sampling: DefaultSampling): SettingsForm {
  const next = { ...form };
  for (const [field, read] of SAMPLING_FIELDS) {
    if (!edited.has(field)) next[field] = String(read(sampling));
  }
  return next;
}

/** One line for a run's header, e.g. "header ban on · newline stop off · "assistant" stop on · sanitizer on". */
export function quirksSummary(quirks: Quirks): string {
  const onOff = (on: boolean): string => (on ? 'on' : 'off');
  return [
    `header ban ${onOff(quirks.firstTokenBan !== null)}`,
    `newline stop ${onOff(quirks.earlyStopNewline)}`,
    `"assistant" stop ${onOff(quirks.assistantStopWord)}`,
    `sanitizer ${onOff(quirks.sanitize)}`,
  ].join(' · ');
}
