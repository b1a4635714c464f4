import { describe, expect, it } from 'vitest';
import { prebuiltAppConfig } from '@mlc-ai/web-llm';
import {
  buildModelOptions,
  defaultModelId,
  PAPER_MODEL_BASE,
  PAPER_MODEL_NOTE,
  pickVariant,
  toModelOption,
  type ModelOption,
} from '../../src/core/models';

const all = buildModelOptions(prebuiltAppConfig.model_list);
const byId = (id: string): ModelOption | undefined => all.find((o) => o.id === id);
// Other chat families are listed too (test/unit/model-families.test.ts); these tests pin the Llama-3 rows.
const llama = all.filter((o) => o.family.startsWith('Llama'));

describe('model options from the real prebuiltAppConfig', () => {
  it.each(['Llama-3-8B-Instruct', 'Llama-3.1-8B-Instruct', 'Llama-3.2-1B-Instruct', 'Llama-3.2-3B-Instruct'])(
    '%s exists in q4f16_1 and q4f32_1',
    (name) => {
      expect(byId(`${name}-q4f16_1-MLC`)).toBeDefined();
      expect(byId(`${name}-q4f32_1-MLC`)).toBeDefined();
    },
  );

  it('has the Llama-3 family in 4-bit quants, including the -1k variants of the 8B models', () => {
    expect(llama.every((o) => /^Llama-3(\.1|\.2)?-\d+B-Instruct-q4f(16|32)_1-MLC(-1k)?$/.test(o.id))).toBe(true);
    expect(llama.map((o) => o.id).sort()).toEqual(
      [
        'Llama-3-8B-Instruct-q4f16_1-MLC', 'Llama-3-8B-Instruct-q4f32_1-MLC',
        'Llama-3-8B-Instruct-q4f16_1-MLC-1k', 'Llama-3-8B-Instruct-q4f32_1-MLC-1k',
        'Llama-3.1-8B-Instruct-q4f16_1-MLC', 'Llama-3.1-8B-Instruct-q4f32_1-MLC',
        'Llama-3.1-8B-Instruct-q4f16_1-MLC-1k', 'Llama-3.1-8B-Instruct-q4f32_1-MLC-1k',
        'Llama-3.2-1B-Instruct-q4f16_1-MLC', 'Llama-3.2-1B-Instruct-q4f32_1-MLC',
        'Llama-3.2-3B-Instruct-q4f16_1-MLC', 'Llama-3.2-3B-Instruct-q4f32_1-MLC',
      ].sort(),
    );
  });

  it('carries the VRAM numbers of webllm-facts.md', () => {
    const vram = (id: string) => byId(id)?.vramMB;
    expect(vram('Llama-3.2-1B-Instruct-q4f16_1-MLC')).toBe(879);
    expect(vram('Llama-3.2-1B-Instruct-q4f32_1-MLC')).toBe(1129);
    expect(vram('Llama-3.2-3B-Instruct-q4f16_1-MLC')).toBe(2264);
    expect(vram('Llama-3.2-3B-Instruct-q4f32_1-MLC')).toBe(2952);
    for (const family of ['Llama-3', 'Llama-3.1']) {
      expect(vram(`${family}-8B-Instruct-q4f16_1-MLC`)).toBe(5001);
      expect(vram(`${family}-8B-Instruct-q4f32_1-MLC`)).toBe(6101);
      expect(vram(`${family}-8B-Instruct-q4f16_1-MLC-1k`)).toBe(4598);
      expect(vram(`${family}-8B-Instruct-q4f32_1-MLC-1k`)).toBe(5296);
    }
  });

  it('fills context window, template id, params and an approximate download size', () => {
    expect(byId('Llama-3-8B-Instruct-q4f16_1-MLC-1k')).toMatchObject({
      family: 'Llama-3', params: '8B', quant: 'q4f16_1', contextWindow: 1024, templateId: 'llama-3',
      label: 'Llama 3 8B Instruct, 1k context',
    });
    expect(byId('Llama-3.1-8B-Instruct-q4f32_1-MLC')).toMatchObject({ contextWindow: 4096, templateId: 'llama-3.1' });
    expect(byId('Llama-3.2-1B-Instruct-q4f16_1-MLC')).toMatchObject({ templateId: 'llama-3.2', label: 'Llama 3.2 1B Instruct' });
    // 8.03e9 weights × 4.5 bits ≈ 4.3 GB; f32 scales make q4f32_1 larger.
    const f16 = byId('Llama-3-8B-Instruct-q4f16_1-MLC')?.approxDownloadMB ?? 0;
    const f32 = byId('Llama-3-8B-Instruct-q4f32_1-MLC')?.approxDownloadMB ?? 0;
    expect(f16).toBeGreaterThan(4000);
    expect(f16).toBeLessThan(4600);
    expect(f32).toBeGreaterThan(f16);
    expect(byId('Llama-3.2-1B-Instruct-q4f16_1-MLC')?.approxDownloadMB).toBeLessThan(800);
  });

  it('sorts by VRAM, smallest first', () => {
    const vrams = all.map((o) => o.vramMB);
    expect(vrams).toEqual([...vrams].sort((a, b) => a - b));
  });
});

describe('pickVariant and defaultModelId', () => {
  it('prefers q4f16_1 with shader-f16 and drops it without', () => {
    const withF16 = pickVariant(llama, true);
    const withoutF16 = pickVariant(llama, false);
    expect(withF16.every((o) => o.quant === 'q4f16_1')).toBe(true);
    expect(withoutF16.every((o) => o.quant === 'q4f32_1')).toBe(true);
    expect(withF16).toHaveLength(6);
    expect(withoutF16).toHaveLength(6);
  });

  it('keeps a q4f32_1-only model on a shader-f16 GPU', () => {
    const only32 = all.filter((o) => o.id !== 'Llama-3.2-1B-Instruct-q4f16_1-MLC');
    expect(pickVariant(only32, true).map((o) => o.id)).toContain('Llama-3.2-1B-Instruct-q4f32_1-MLC');
  });

  it('defaults to Llama-3.2-3B-Instruct in the quant the GPU runs', () => {
    expect(defaultModelId(all, true)).toBe('Llama-3.2-3B-Instruct-q4f16_1-MLC');
    expect(defaultModelId(all, false)).toBe('Llama-3.2-3B-Instruct-q4f32_1-MLC');
    expect(defaultModelId(buildModelOptions(prebuiltAppConfig.model_list, false), false)).toBe('Llama-3.2-3B-Instruct-q4f32_1-MLC');
    expect(defaultModelId([], true)).toBeUndefined();
  });

  it('with shader-f16 given, buildModelOptions lists only the runnable variant', () => {
    expect(buildModelOptions(prebuiltAppConfig.model_list, false).every((o) => o.quant === 'q4f32_1')).toBe(true);
  });

  it('notes the paper model', () => {
    expect(PAPER_MODEL_BASE).toBe('Llama-3-8B-Instruct');
    expect(PAPER_MODEL_NOTE).toContain('Llama-3-8B-Instruct');
  });
});

describe('toModelOption', () => {
  it('accepts the flattened context window the worker sends and scripted ids', () => {
    expect(toModelOption({ model_id: 'Llama-3.2-1B-Instruct-q4f32_1-MLC', context_window_size: 2048 })?.contextWindow).toBe(2048);
    const scripted = toModelOption({ model_id: 'scripted:Llama-3.2-1B-Instruct-q4f32_1-MLC?addsBos=1' });
    expect(scripted).toMatchObject({ scripted: true, family: 'Llama-3.2', templateId: 'llama-3.2', approxDownloadMB: 0 });
    expect(toModelOption({ model_id: 'Llama-3.1-70B-Instruct-q3f16_1-MLC' })).toBeUndefined();
    expect(toModelOption({ model_id: 'Llama-3.2-1B-Instruct-q0f16-MLC' })).toBeUndefined();
    expect(toModelOption({ model_id: 'OLMo-2-1124-7B-Instruct-q4f16_1-MLC' })).toBeUndefined();
  });
});
