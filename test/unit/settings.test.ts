import { describe, expect, test } from 'vitest';
import { defaultSettings, parseSettings, settingsToForm, type SettingsForm } from '../../src/core/settings';
import { deriveSeed } from '../../src/core/seed';
import { RateMeter } from '../../src/core/stats';
import { classifyEngineError } from '../../src/core/errors';
import { probeAddsBos } from '../../src/core/engine';
import { QueueEngine } from '../support/echo-engine';

const form = (over: Partial<SettingsForm> = {}): SettingsForm => ({ ...settingsToForm(defaultSettings(5)), ...over });

describe('settings', () => {
  test('the defaults are the reference defaults and round-trip through the form', () => {
    const s = defaultSettings(5);
    expect(s.instruction).toEqual({ temperature: 1, topP: 1, maxTokens: 1024 });
    expect(s.response).toEqual({ temperature: 0, topP: 1, maxTokens: 2048 });
    expect(parseSettings(settingsToForm(s))).toEqual({ ok: true, settings: s });
  });

  test('blank seed means no seed', () => {
    const r = parseSettings(form({ seed: ' ' }));
    expect(r.ok && r.settings.seed).toBe(null);
  });

  test.each<[Partial<SettingsForm>, keyof SettingsForm, RegExp]>([
    [{ count: 'abc' }, 'count', /whole number/],
    [{ count: '0' }, 'count', /between 1/],
    [{ count: '2.5' }, 'count', /whole number/],
    [{ seed: '-1' }, 'seed', /between 0/],
    [{ instructionTemperature: '2.5' }, 'instructionTemperature', /between 0 and 2/],
    [{ instructionTopP: '0' }, 'instructionTopP', /greater than 0/],
    [{ responseTopP: '1.01' }, 'responseTopP', /at most 1/],
    [{ responseMaxTokens: '5000' }, 'responseMaxTokens', /between 1 and 4096/],
    [{ instructionMaxTokens: '' }, 'instructionMaxTokens', /whole number/],
  ])('refuses %o at its field, never clamps', (over, field, message) => {
    const r = parseSettings(form(over));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(Object.keys(r.errors)).toEqual([field]);
      expect(r.errors[field]).toMatch(message);
    }
  });

  test('max tokens are bounded by the model context window', () => {
    expect(parseSettings(form({ responseMaxTokens: '1000' }), 1024).ok).toBe(true);
    expect(parseSettings(form({ responseMaxTokens: '2048' }), 1024).ok).toBe(false);
  });
});

describe('seeds', () => {
  test('derived seeds are integers in range, stable, and differ by attempt and step', () => {
    const seen = new Set<number>();
    for (let k = 1; k <= 1000; k++) {
      for (const step of ['instruction', 'response'] as const) {
        const s = deriveSeed(42, k, step);
        expect(Number.isInteger(s) && s >= 0 && s < 2 ** 31).toBe(true);
        seen.add(s);
      }
    }
    expect(seen.size).toBe(2000);
    expect(deriveSeed(42, 7, 'instruction')).toBe(deriveSeed(42, 7, 'instruction'));
    expect(deriveSeed(43, 7, 'instruction')).not.toBe(deriveSeed(42, 7, 'instruction'));
  });
});

describe('rate meter', () => {
  test('tokens/s, records/min and ETA from a fake clock', () => {
    let t = 0;
    const m = new RateMeter(60_000, () => t);
    t = 10_000;
    m.addTokens(200);
    m.addRecord();
    t = 20_000;
    m.addTokens(200);
    m.addRecord();
    const s = m.stats(8);
    expect(s.tokensPerSecond).toBeCloseTo(20);
    expect(s.recordsPerMinute).toBeCloseTo(6);
    expect(s.etaSeconds).toBeCloseTo(80);
  });

  test('no ETA before the first record', () => {
    let t = 0;
    const m = new RateMeter(60_000, () => t);
    t = 1000;
    m.addTokens(5);
    expect(m.stats(3).etaSeconds).toBeUndefined();
  });
});

describe('error classification', () => {
  test.each([
    [Object.assign(new Error('x'), { name: 'DeviceLostError' }), 'device-lost'],
    [Object.assign(new Error('x'), { name: 'ContextWindowSizeExceededError' }), 'context-window'],
    [new Error('Unable to find a compatible GPU.'), 'no-adapter'],
    ['ShaderF16SupportError: This model requires WebGPU extension shader-f16', 'shader-f16'],
    [Object.assign(new Error('x'), { name: 'WebGPUNotAvailableError' }), 'webgpu-unavailable'],
    [new TypeError('Failed to fetch'), 'network'],
    [new Error('something odd'), 'unknown'],
  ])('%s → %s', (err, kind) => {
    const c = classifyEngineError(err);
    expect(c.kind).toBe(kind);
    expect(c.advice.length).toBeGreaterThan(10);
  });
});

describe('BOS probe', () => {
  test.each([
    [1, false],
    [2, true],
  ])('prompt_tokens %i → addsBos %s', async (n, expected) => {
    const engine = new QueueEngine(() => ({ text: 'x' }));
    const wrapped = {
      complete: async (...args: Parameters<QueueEngine['complete']>) => {
        const r = await engine.complete(...args);
        return { ...r, usage: { ...r.usage, promptTokens: n } };
      },
    };
    expect(await probeAddsBos(wrapped, '<|start_header_id|>')).toBe(expected);
    expect(engine.requests[0]).toMatchObject({ prompt: '<|start_header_id|>', maxTokens: 1 });
  });

  test('an unexpected count is an error, not a guess', async () => {
    const engine = { complete: async () => ({ text: '', finishReason: 'stop' as const, usage: { promptTokens: 4, completionTokens: 1 } }) };
    await expect(probeAddsBos(engine, 'x')).rejects.toThrow(/cannot tell/);
  });
});
