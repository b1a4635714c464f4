/**
 * The Mode settings form as the user typed it (strings), and its validation into ModeSettings: every problem is
 * reported at its field, system prompts are checked against the loaded template by rendering them.
 */
import {
  MAX_CANDIDATES,
  MAX_TURNS,
  validateForTemplate,
  type ImportedInstruction,
  type ModeKind,
  type ModeSettings,
  type SamplingShare,
  type SystemPromptChoice,
} from '../recipe';
import type { ChatTemplate } from '../templates/types';
import type { InstructionFileError } from './instructions-file';
import { DEFAULT_FOLLOW_UP_SYSTEM, presetChoice } from './system-prompts';

export interface SystemPromptRow {
  key: string;
  prompt: string;
  weight: string;
}

export interface MixRow {
  temperature: string;
  topP: string;
  share: string;
}

export interface ImportedFile {
  fileName: string;
  instructions: ImportedInstruction[];
  errors: InstructionFileError[];
}

export interface ModeForm {
  mode: ModeKind;
  turns: string;
  followUpSystem: string;
  endWithUser: boolean;
  candidates: string;
  preferenceTemperature: string;
  preferenceTopP: string;
  judge: 'model' | 'manual';
  steer: boolean;
  prompts: SystemPromptRow[];
  includeSystem: boolean;
  source: 'generated' | 'imported';
  imported: ImportedFile | null;
  mix: boolean;
  mixRows: MixRow[];
}

export function defaultModeForm(): ModeForm {
  return {
    mode: 'pair',
    turns: '2',
    followUpSystem: DEFAULT_FOLLOW_UP_SYSTEM,
    endWithUser: false,
    candidates: '5',
    preferenceTemperature: '0.8',
    preferenceTopP: '1',
    judge: 'model',
    steer: false,
    prompts: [{ ...presetChoice('general'), weight: '1' }],
    includeSystem: true,
    source: 'generated',
    imported: null,
    mix: false,
    mixRows: [
      { temperature: '1', topP: '1', share: '1' },
      { temperature: '1.25', topP: '0.99', share: '1' },
    ],
  };
}

/** The form showing a recipe's mode settings (for an imported recipe). */
export function modeFormFrom(modes: ModeSettings): ModeForm {
  const form = defaultModeForm();
  form.mode = modes.mode.kind;
  if (modes.mode.kind === 'multi-turn') {
    form.turns = String(modes.mode.turns);
    form.followUpSystem = modes.mode.followUpSystem ?? '';
    form.endWithUser = modes.mode.endWithUser;
  }
  if (modes.mode.kind === 'preference') {
    form.candidates = String(modes.mode.candidates);
    form.preferenceTemperature = String(modes.mode.temperature);
    form.preferenceTopP = String(modes.mode.topP);
    form.judge = modes.mode.judge;
  }
  form.steer = modes.system !== null;
  if (modes.system) {
    form.prompts = modes.system.prompts.map((p) => ({ key: p.key, prompt: p.prompt, weight: String(p.weight) }));
    form.includeSystem = modes.system.includeInExport;
  }
  if (modes.source.kind === 'imported') {
    form.source = 'imported';
    form.imported = { fileName: modes.source.fileName, instructions: modes.source.instructions, errors: [] };
  }
  form.mix = modes.instructionMix.length > 0;
  if (form.mix) form.mixRows = modes.instructionMix.map((m) => ({ temperature: String(m.temperature), topP: String(m.topP), share: String(m.share) }));
  return form;
}

export type ModeFormErrors = Record<string, string>;
export type ModeFormResult = { ok: true; modes: ModeSettings; warnings: string[] } | { ok: false; errors: ModeFormErrors; warnings: string[] };

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const num = (text: string): number | undefined => (NUMBER.test(text.trim()) ? Number(text.trim()) : undefined);

/** Field ids of the errors a recipe path maps to, so template problems show at the right input. */
function fieldOfPath(path: string): string {
  const prompt = /^system\.prompts\[(\d+)\]\.prompt$/.exec(path);
  if (prompt) return `prompt-${prompt[1]}`;
  if (path === 'mode.followUpSystem') return 'followUpSystem';
  return path;
}

export function parseModeForm(form: ModeForm, context: { template?: ChatTemplate; count?: number } = {}): ModeFormResult {
  const errors: ModeFormErrors = {};
  const warnings: string[] = [];
  const integer = (field: string, text: string, min: number, max: number, what: string): number | undefined => {
    const n = num(text);
    if (n === undefined || !Number.isInteger(n)) errors[field] = `${what} must be a whole number.`;
    else if (n < min || n > max) errors[field] = `${what} must be between ${min} and ${max}.`;
    else return n;
    return undefined;
  };
  const positive = (field: string, text: string, what: string, max = Infinity): number | undefined => {
    const n = num(text);
    if (n === undefined) errors[field] = `${what} must be a number.`;
    else if (!(n > 0) || n > max) errors[field] = max === Infinity ? `${what} must be greater than 0.` : `${what} must be greater than 0 and at most ${max}.`;
    else return n;
    return undefined;
  };
  const temperature = (field: string, text: string, allowZero = true): number | undefined => {
    const n = num(text);
    if (n === undefined) errors[field] = 'Temperature must be a number.';
    else if (n < 0 || n > 2 || (!allowZero && n === 0)) errors[field] = allowZero ? 'Temperature must be between 0 and 2.' : 'Temperature must be greater than 0 and at most 2 (equal samples make no pair).';
    else return n;
    return undefined;
  };

  let mode: ModeSettings['mode'] = { kind: 'pair' };
  if (form.mode === 'instruction-only') mode = { kind: 'instruction-only' };
  if (form.mode === 'multi-turn') {
    const turns = integer('turns', form.turns, 1, MAX_TURNS, 'Turns');
    if (turns !== undefined && turns > 4) warnings.push('More than 4 turns: conversations tend to drift and lose quality.');
    const followUpSystem = form.followUpSystem.trim() === '' ? null : form.followUpSystem;
    mode = { kind: 'multi-turn', turns: turns ?? 2, followUpSystem, endWithUser: form.endWithUser };
  }
  if (form.mode === 'preference') {
    const candidates = integer('candidates', form.candidates, 2, MAX_CANDIDATES, 'Responses per instruction');
    const t = temperature('preferenceTemperature', form.preferenceTemperature, false);
    const p = positive('preferenceTopP', form.preferenceTopP, 'top_p', 1);
    mode = { kind: 'preference', candidates: candidates ?? 5, temperature: t ?? 0.8, topP: p ?? 1, judge: form.judge };
  }

  let system: ModeSettings['system'] = null;
  if (form.steer) {
    if (form.prompts.length === 0) errors.prompts = 'Add at least one system prompt, or turn steering off.';
    const keys = new Set<string>();
    const prompts: SystemPromptChoice[] = form.prompts.map((row, i) => {
      const key = row.key.trim();
      if (key === '') errors[`key-${i}`] = 'Give this system prompt a key.';
      else if (keys.has(key)) errors[`key-${i}`] = `The key "${key}" is used twice.`;
      keys.add(key);
      if (row.prompt.trim() === '') errors[`prompt-${i}`] = 'The system prompt is empty.';
      const weight = positive(`weight-${i}`, row.weight, 'Weight');
      return { key, prompt: row.prompt, weight: weight ?? 1 };
    });
    system = { prompts, includeInExport: form.includeSystem };
  }

  let source: ModeSettings['source'] = { kind: 'generated' };
  if (form.source === 'imported') {
    if (!form.imported || form.imported.instructions.length === 0) {
      errors.imported = 'Choose a file with at least one valid instruction.';
    } else {
      source = { kind: 'imported', fileName: form.imported.fileName, instructions: form.imported.instructions };
      if (context.count !== undefined && context.count > form.imported.instructions.length) {
        errors.imported = `The file has ${form.imported.instructions.length} valid instructions; lower "Records to generate" to at most that.`;
      }
    }
    if (form.mode === 'instruction-only') errors.mode = 'Imported instructions need responses: pick another mode.';
  }

  const instructionMix: SamplingShare[] = [];
  if (form.mix) {
    if (form.mixRows.length === 0) errors.mix = 'Add at least one sampling setting, or turn mixing off.';
    form.mixRows.forEach((row, i) => {
      const t = temperature(`mix-${i}-temperature`, row.temperature);
      const p = positive(`mix-${i}-topP`, row.topP, 'top_p', 1);
      const s = positive(`mix-${i}-share`, row.share, 'Share');
      instructionMix.push({ temperature: t ?? 1, topP: p ?? 1, share: s ?? 1 });
    });
  }

  const modes: ModeSettings = { mode, source, system, instructionMix };
  if (context.template) {
    for (const e of validateForTemplate(modes, context.template)) errors[fieldOfPath(e.path)] ??= e.message;
  }
  return Object.keys(errors).length > 0 ? { ok: false, errors, warnings } : { ok: true, modes, warnings };
}
