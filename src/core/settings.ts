/** Run settings: the reference's defaults and validation of what a user types (never silently clamped). */
import type { RunSettings, SamplingSettings } from './record';

/** Instruction step: the reference samples freely (temperature 1, top_p 1). */
export const DEFAULT_INSTRUCTION: SamplingSettings = { temperature: 1.0, topP: 1.0, maxTokens: 1024 };
/** Response step: greedy, as in the reference. */
export const DEFAULT_RESPONSE: SamplingSettings = { temperature: 0, topP: 1.0, maxTokens: 2048 };
export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1_000_000;
/** WebLLM requires an integer seed; keep it in the non-negative 31-bit range every engine accepts. */
export const MAX_SEED = 2 ** 31 - 1;

export function defaultSettings(seed: number | null = null): RunSettings {
  return { count: DEFAULT_COUNT, seed, instruction: { ...DEFAULT_INSTRUCTION }, response: { ...DEFAULT_RESPONSE } };
}

/** The settings form as the user typed it (strings), field name → text. */
export interface SettingsForm {
  count: string;
  seed: string;
  instructionTemperature: string;
  instructionTopP: string;
  instructionMaxTokens: string;
  responseTemperature: string;
  responseTopP: string;
  responseMaxTokens: string;
}

export type SettingsField = keyof SettingsForm;

export type SettingsResult =
  | { ok: true; settings: RunSettings }
  | { ok: false; errors: Partial<Record<SettingsField, string>> };

export function settingsToForm(s: RunSettings): SettingsForm {
  return {
    count: String(s.count),
    seed: s.seed === null ? '' : String(s.seed),
    instructionTemperature: String(s.instruction.temperature),
    instructionTopP: String(s.instruction.topP),
    instructionMaxTokens: String(s.instruction.maxTokens),
    responseTemperature: String(s.response.temperature),
    responseTopP: String(s.response.topP),
    responseMaxTokens: String(s.response.maxTokens),
  };
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseNumber(text: string): number | undefined {
  const t = text.trim();
  return NUMBER.test(t) ? Number(t) : undefined;
}

function integerIn(text: string, min: number, max: number, what: string): number | string {
  const n = parseNumber(text);
  if (n === undefined) return `${what} must be a whole number.`;
  if (!Number.isInteger(n)) return `${what} must be a whole number, not ${text.trim()}.`;
  if (n < min || n > max) return `${what} must be between ${min} and ${max}.`;
  return n;
}

function temperature(text: string): number | string {
  const n = parseNumber(text);
  if (n === undefined) return 'Temperature must be a number.';
  if (n < 0 || n > 2) return 'Temperature must be between 0 and 2.';
  return n;
}

function topP(text: string): number | string {
  const n = parseNumber(text);
  if (n === undefined) return 'top_p must be a number.';
  if (n <= 0 || n > 1) return 'top_p must be greater than 0 and at most 1.';
  return n;
}

/**
 * Validate the form. `contextWindow` bounds max tokens (a completion cannot be longer than the model's context).
 * Every problem is reported at its field; nothing is clamped.
 */
export function parseSettings(form: SettingsForm, contextWindow = 4096): SettingsResult {
  const errors: Partial<Record<SettingsField, string>> = {};
  const take = <T>(field: SettingsField, v: T | string): T | undefined => {
    if (typeof v === 'string') {
      errors[field] = v;
      return undefined;
    }
    return v;
  };
  const count = take('count', integerIn(form.count, 1, MAX_COUNT, 'Count'));
  const seed =
    form.seed.trim() === '' ? null : take('seed', integerIn(form.seed, 0, MAX_SEED, 'Seed'));
  const iTemp = take('instructionTemperature', temperature(form.instructionTemperature));
  const iTopP = take('instructionTopP', topP(form.instructionTopP));
  const iMax = take('instructionMaxTokens', integerIn(form.instructionMaxTokens, 1, contextWindow, 'Max tokens'));
  const rTemp = take('responseTemperature', temperature(form.responseTemperature));
  const rTopP = take('responseTopP', topP(form.responseTopP));
  const rMax = take('responseMaxTokens', integerIn(form.responseMaxTokens, 1, contextWindow, 'Max tokens'));
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return {
    ok: true,
    settings: {
      count: count as number,
      seed: seed ?? null,
      instruction: { temperature: iTemp as number, topP: iTopP as number, maxTokens: iMax as number },
      response: { temperature: rTemp as number, topP: rTopP as number, maxTokens: rMax as number },
    },
  };
}

/** A fresh random run seed, for reproducible runs by default. */
export function randomSeed(random: () => number = Math.random): number {
  return Math.floor(random() * MAX_SEED);
}
