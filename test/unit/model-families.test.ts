import { prebuiltAppConfig } from '@mlc-ai/web-llm';
import { describe, expect, test } from 'vitest';
import { approxDownloadMB, buildModelOptions, defaultModelId, toModelOption, type ModelOption } from '../../src/core/models';
import { getTemplate, templateIdForModel } from '../../src/core/templates/registry';

const records = prebuiltAppConfig.model_list;
const all = buildModelOptions(records, undefined, { showAll: true });
const byId = new Map(all.map((o) => [o.id, o]));
const option = (id: string): ModelOption => {
  const o = byId.get(id);
  if (!o) throw new Error(`${id} is not listed`);
  return o;
};

describe('every chat family WebLLM ships is recognised', () => {
  test.each([
    ['Llama-3-8B-Instruct-q4f16_1-MLC', 'Llama-3', 'llama-3', 'Llama 3 8B Instruct'],
    ['Llama-3.1-8B-Instruct-q4f32_1-MLC-1k', 'Llama-3.1', 'llama-3.1', 'Llama 3.1 8B Instruct, 1k context'],
    ['Hermes-3-Llama-3.1-8B-q4f16_1-MLC', 'Hermes-3', 'hermes-3', 'Hermes 3 (Llama 3.1 8B)'],
    ['Hermes-3-Llama-3.2-3B-q4f32_1-MLC', 'Hermes-3', 'hermes-3', 'Hermes 3 (Llama 3.2 3B)'],
    ['Qwen2-1.5B-Instruct-q4f32_1-MLC', 'Qwen2', 'qwen2', 'Qwen2 1.5B Instruct'],
    ['Qwen2.5-7B-Instruct-q4f16_1-MLC', 'Qwen2.5', 'qwen2.5', 'Qwen2.5 7B Instruct'],
    ['Qwen3-0.6B-q4f32_1-MLC', 'Qwen3', 'qwen3', 'Qwen3 0.6B (thinking off)'],
    ['Phi-3-mini-4k-instruct-q4f16_1-MLC-1k', 'Phi-3', 'phi-3', 'Phi-3 mini Instruct, 1k context'],
    ['Phi-3.5-mini-instruct-q4f32_1-MLC', 'Phi-3.5', 'phi-3.5', 'Phi-3.5 mini Instruct'],
    ['gemma-2-2b-it-q4f16_1-MLC-1k', 'Gemma-2', 'gemma-2', 'Gemma 2 2B it, 1k context'],
    ['gemma-2-9b-it-q4f32_1-MLC', 'Gemma-2', 'gemma-2', 'Gemma 2 9B it'],
    ['gemma-2-2b-jpn-it-q4f16_1-MLC', 'Gemma-2', 'gemma-2', 'Gemma 2 2B it (Japanese)'],
    ['Mistral-7B-Instruct-v0.3-q4f32_1-MLC', 'Mistral-v0.3', 'mistral-v0.3', 'Mistral 7B Instruct v0.3'],
    ['SmolLM2-1.7B-Instruct-q4f16_1-MLC', 'SmolLM2', 'smollm2', 'SmolLM2 1.7B Instruct'],
    ['SmolLM2-360M-Instruct-q4f32_1-MLC', 'SmolLM2', 'smollm2', 'SmolLM2 360M Instruct'],
  ])('%s → %s (%s)', (id, family, templateId, label) => {
    const o = option(id);
    expect(o).toMatchObject({ family, templateId, label, hidden: false });
    expect(getTemplate(templateId).id).toBe(templateId);
  });

  test('the picker and the template registry agree on every listed model', () => {
    for (const o of all) expect(o.templateId, o.id).toBe(templateIdForModel(o.id));
  });

  test('every q4 build of a model the registry has a template for is offered, and visible', () => {
    const expected = records
      .map((r) => r.model_id)
      .filter((id) => /-q4f(16|32)_1-MLC(-1k)?$/.test(id) && templateIdForModel(id) !== undefined);
    expect(expected.length).toBeGreaterThan(40);
    for (const id of expected) expect(option(id).hidden, id).toBe(false);
  });
});

describe('VRAM and download size come from the model list', () => {
  test.each([
    ['gemma-2-2b-it-q4f16_1-MLC', 1895],
    ['gemma-2-2b-it-q4f32_1-MLC', 2509],
    ['gemma-2-9b-it-q4f16_1-MLC', 6422],
    ['gemma-2-9b-it-q4f32_1-MLC', 8383],
    ['Phi-3.5-mini-instruct-q4f16_1-MLC', 3672],
    ['Phi-3.5-mini-instruct-q4f32_1-MLC', 5483],
    ['SmolLM2-1.7B-Instruct-q4f16_1-MLC', 1774],
    ['SmolLM2-1.7B-Instruct-q4f32_1-MLC', 2692],
    ['Mistral-7B-Instruct-v0.3-q4f16_1-MLC', 4573],
    ['Mistral-7B-Instruct-v0.3-q4f32_1-MLC', 5619],
    ['Qwen2.5-0.5B-Instruct-q4f16_1-MLC', 945],
    ['Qwen2.5-7B-Instruct-q4f16_1-MLC', 5107],
  ])('%s needs %i MB', (id, vram) => {
    expect(option(id).vramMB).toBe(vram);
  });

  test('download estimates grow with parameters and with f32 scales', () => {
    expect(option('Qwen2.5-7B-Instruct-q4f16_1-MLC').approxDownloadMB).toBe(approxDownloadMB(7.62e9, 'q4f16_1'));
    expect(option('Qwen2.5-7B-Instruct-q4f32_1-MLC').approxDownloadMB).toBeGreaterThan(
      option('Qwen2.5-7B-Instruct-q4f16_1-MLC').approxDownloadMB,
    );
    expect(option('SmolLM2-360M-Instruct-q4f16_1-MLC').approxDownloadMB).toBeLessThan(
      option('SmolLM2-1.7B-Instruct-q4f16_1-MLC').approxDownloadMB,
    );
    // The size-name form still works for the Llama sizes.
    expect(approxDownloadMB('8B', 'q4f16_1')).toBe(approxDownloadMB(8.03e9, 'q4f16_1'));
  });

  test('-1k variants carry a 1024-token context', () => {
    for (const id of ['gemma-2-2b-it-q4f32_1-MLC-1k', 'Phi-3.5-mini-instruct-q4f16_1-MLC-1k', 'Llama-3.1-8B-Instruct-q4f16_1-MLC-1k']) {
      expect(option(id).contextWindow).toBe(1024);
    }
    expect(option('gemma-2-2b-it-q4f32_1-MLC').contextWindow).toBe(4096);
  });
});

describe('hidden models', () => {
  test.each([
    ['Qwen2.5-Coder-7B-Instruct-q4f16_1-MLC', 'code-only'],
    ['Qwen2-Math-7B-Instruct-q4f32_1-MLC', 'math-only'],
    ['Qwen2.5-Math-1.5B-Instruct-q4f16_1-MLC', 'math-only'],
    ['DeepSeek-R1-Distill-Qwen-7B-q4f16_1-MLC', 'reasoning distill'],
    ['DeepSeek-R1-Distill-Llama-8B-q4f32_1-MLC', 'reasoning distill'],
    ['Phi-3.5-vision-instruct-q4f16_1-MLC', 'vision'],
    ['Ministral-3-3B-Base-2512-q4f16_1-MLC', 'base or reasoning model'],
    ['Ministral-3-3B-Reasoning-2512-q4f32_1-MLC', 'base or reasoning model'],
    ['WizardMath-7B-V1.1-q4f16_1-MLC', 'math-only'],
    ['phi-2-q4f32_1-MLC', 'base model'],
  ])('%s is hidden (%s) and has no template', (id, reason) => {
    const o = option(id);
    expect(o.hidden).toBe(true);
    expect(o.hiddenReason).toBe(reason);
    expect(o.templateId).toBeUndefined();
    expect(buildModelOptions(records).some((x) => x.id === id)).toBe(false);
  });

  test('the default list has no hidden model; "show all" adds them', () => {
    const visible = buildModelOptions(records);
    expect(visible.every((o) => !o.hidden)).toBe(true);
    expect(all.length).toBeGreaterThan(visible.length);
  });

  test('models without a family here are not listed at all', () => {
    for (const id of ['Qwen3.5-2B-q4f16_1-MLC', 'gemma3-1b-it-q4f16_1-MLC', 'Llama-2-7b-chat-hf-q4f16_1-MLC', 'Qwen2.5-0.5B-Instruct-q0f16-MLC']) {
      expect(byId.has(id), id).toBe(false);
    }
    expect(toModelOption({ model_id: 'OLMo-2-1124-7B-Instruct-q4f16_1-MLC' })).toBeUndefined();
  });
});

describe('quantization choice', () => {
  test('with shader-f16 each model is offered once, in q4f16_1; without it only q4f32_1 builds', () => {
    const f16 = buildModelOptions(records, true);
    const f32 = buildModelOptions(records, false);
    expect(f32.every((o) => o.quant === 'q4f32_1')).toBe(true);
    const gemma = f16.filter((o) => o.id.startsWith('gemma-2-9b-it'));
    expect(gemma.map((o) => o.id)).toEqual(['gemma-2-9b-it-q4f16_1-MLC']);
    // Qwen2-0.5B ships only as q4f16_1: it cannot run without shader-f16.
    expect(f16.some((o) => o.id === 'Qwen2-0.5B-Instruct-q4f16_1-MLC')).toBe(true);
    expect(f32.some((o) => o.id.startsWith('Qwen2-0.5B'))).toBe(false);
  });

  test('the default model is still Llama 3.2 3B in the quantization the GPU runs', () => {
    expect(defaultModelId(buildModelOptions(records, true), true)).toBe('Llama-3.2-3B-Instruct-q4f16_1-MLC');
    expect(defaultModelId(buildModelOptions(records, false), false)).toBe('Llama-3.2-3B-Instruct-q4f32_1-MLC');
  });

  test('scripted test models keep working for any family', () => {
    const o = toModelOption({ model_id: 'scripted:Qwen2.5-0.5B-Instruct-q4f16_1-MLC?addsBos=0' });
    expect(o).toMatchObject({ family: 'Qwen2.5', scripted: true, approxDownloadMB: 0, templateId: 'qwen2.5' });
    expect(o?.label).toBe('Qwen2.5 0.5B Instruct (scripted test engine)');
  });
});
