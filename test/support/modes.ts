/** Helpers for generation-mode tests: a recipe builder and an attempt context over a seeded run. */
import { DEFAULT_MODE_SETTINGS, buildRecipe, type ModeSettings, type Recipe } from '../../src/core/recipe';
import type { RunSettings } from '../../src/core/record';
import type { AttemptContext, RunEvents } from '../../src/core/runner';
import { deriveSeed } from '../../src/core/seed';
import type { ChatTemplate } from '../../src/core/templates/types';

export function makeRecipe(template: ChatTemplate, modes: Partial<ModeSettings> = {}, settings: Partial<RunSettings> = {}): Recipe {
  return buildRecipe({
    model: 'Test-Model-Instruct',
    engine: 'webllm',
    template,
    settings: {
      count: 3,
      seed: 7,
      instruction: { temperature: 1, topP: 1, maxTokens: 256 },
      response: { temperature: 0, topP: 1, maxTokens: 512 },
      ...settings,
    },
    modes: { ...DEFAULT_MODE_SETTINGS, ...modes },
  });
}

export function attemptContext(attempt: number, seed: number | null = 7, events: RunEvents = {}): AttemptContext {
  return {
    attempt,
    seedFor: (step) => (seed === null ? null : deriveSeed(seed, attempt, step)),
    signal: new AbortController().signal,
    events,
    now: () => 0,
  };
}
