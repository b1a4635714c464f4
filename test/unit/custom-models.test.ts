import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  bosTokenFor,
  buildCustomModel,
  checkAbsoluteUrl,
  checkModelName,
  CustomModelStore,
  derivedPreQuery,
  effectiveModelUrl,
  fetchConvTemplate,
  mlcChatConfigUrl,
  parseCustomModel,
  parseVram,
  toWorkerRecord,
  type CustomModel,
  type CustomModelForm,
  type KeyValueStorage,
} from '../../src/app/custom-models';
import { parseConvTemplate } from '../../src/core/conv-template';
import { buildCustomTemplate, convTemplateSpec, withPreQuery } from '../../src/core/custom-template';
import { templateMetadata } from '../../src/core/export-template';
import { getTemplate } from '../../src/core/templates/registry';

const FIXTURE = JSON.parse(
  readFileSync(new URL('../fixtures/custom-model/resolve/main/mlc-chat-config.json', import.meta.url), 'utf8'),
) as unknown;
const conv = parseConvTemplate(FIXTURE);
const llama3 = getTemplate('llama-3');

function memoryStorage(): KeyValueStorage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
}

const form = (over: Partial<CustomModelForm> = {}): CustomModelForm => ({
  kind: 'url',
  name: 'My-Llama-q4f16_1-MLC',
  modelUrl: 'https://example.org/me/My-Llama-q4f16_1-MLC',
  modelLibUrl: 'https://example.org/libs/my-llama.wasm',
  vram: '',
  preQuery: llama3.preQuery(),
  bosToken: '<|begin_of_text|>',
  ...over,
});

describe('model URLs as WebLLM resolves them', () => {
  test.each([
    ['https://huggingface.co/u/M-MLC', 'https://huggingface.co/u/M-MLC/resolve/main/'],
    ['https://huggingface.co/u/M-MLC/', 'https://huggingface.co/u/M-MLC/resolve/main/'],
    ['https://huggingface.co/u/M-MLC/resolve/v2/', 'https://huggingface.co/u/M-MLC/resolve/v2/'],
    ['https://huggingface.co/u/M-MLC/resolve/main', 'https://huggingface.co/u/M-MLC/resolve/main/'],
  ])('%s → %s', (input, effective) => {
    expect(effectiveModelUrl(input)).toBe(effective);
    expect(mlcChatConfigUrl(input)).toBe(`${effective}mlc-chat-config.json`);
  });

  test('relative and non-http URLs are refused with a reason', () => {
    expect(checkAbsoluteUrl('models/m', 'weights URL')).toMatch(/absolute URL/);
    expect(checkAbsoluteUrl('ftp://x/y', 'weights URL')).toMatch(/https:\/\//);
    expect(checkAbsoluteUrl('', 'weights URL')).toBe('Enter the weights URL.');
    expect(checkAbsoluteUrl('https://x.org/m', 'weights URL')).toBeNull();
  });

  test('names and VRAM', () => {
    expect(checkModelName('a b', [])).toMatch(/letters/);
    expect(checkModelName('Llama-3-8B-Instruct-q4f16_1-MLC', ['Llama-3-8B-Instruct-q4f16_1-MLC'])).toMatch(/already listed/);
    expect(checkModelName('ok.name_1-x', [])).toBeNull();
    expect(parseVram('')).toBeUndefined();
    expect(parseVram('5001')).toBe(5001);
    expect(parseVram('5.5')).toMatch(/whole number/);
    expect(parseVram('0')).toMatch(/whole number/);
  });
});

describe('the derived template', () => {
  test('the fixture conv_template derives the registry Llama-3 pre-query and response prompt', () => {
    const spec = convTemplateSpec(conv, bosTokenFor(conv));
    expect(spec.source).toBe('conv_template');
    expect(spec.preQuery).toBe(llama3.preQuery());
    const template = buildCustomTemplate(spec);
    expect(template.bosToken).toBe('<|begin_of_text|>');
    const msgs = [{ role: 'user' as const, content: 'Hi' }];
    expect(template.render(msgs, { addGenerationPrompt: true })).toBe(llama3.render(msgs, { addGenerationPrompt: true }));
  });

  test('BOS text is known for the common prefix ids only', () => {
    expect(bosTokenFor({ system_prefix_token_ids: [128000] })).toBe('<|begin_of_text|>');
    expect(bosTokenFor({ system_prefix_token_ids: [2] })).toBe('<bos>');
    expect(bosTokenFor({ system_prefix_token_ids: [99999] })).toBe('');
    expect(bosTokenFor({})).toBe('');
  });

  test('an edited pre-query is "custom"; one ending inside the assistant turn is refused', () => {
    expect(withPreQuery({ convTemplate: conv }, llama3.preQuery()).source).toBe('conv_template');
    const system = `<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>${llama3.userHeader}`;
    expect(withPreQuery({ convTemplate: conv }, system)).toMatchObject({ source: 'custom', preQuery: system });
    expect(() => withPreQuery({ convTemplate: conv }, `${llama3.userHeader}Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n`)).toThrow(
      /assistant turn/,
    );
    expect(derivedPreQuery({ baseTemplateId: 'qwen2.5' }, '')).toBe(getTemplate('qwen2.5').preQuery());
  });
});

describe('buildCustomModel', () => {
  test('a valid form becomes a model with its template spec', () => {
    const result = buildCustomModel(form({ vram: '5001' }), { convTemplate: conv }, [], 42);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.model).toMatchObject({
      modelId: 'My-Llama-q4f16_1-MLC',
      kind: 'url',
      vramMB: 5001,
      addedAt: 42,
      template: { source: 'conv_template', preQuery: llama3.preQuery(), bosToken: '<|begin_of_text|>' },
    });
    expect(toWorkerRecord(result.model)).toEqual({
      model: 'https://example.org/me/My-Llama-q4f16_1-MLC',
      model_id: 'My-Llama-q4f16_1-MLC',
      model_lib: 'https://example.org/libs/my-llama.wasm',
      vram_required_MB: 5001,
    });
  });

  test('every problem is reported at its field', () => {
    const result = buildCustomModel(
      form({ name: '', modelUrl: 'relative/path', modelLibUrl: '', vram: 'lots', preQuery: `${llama3.userHeader}x<|eot_id|>` }),
      { convTemplate: conv },
      [],
      0,
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(Object.keys(result.errors).sort()).toEqual(['modelLibUrl', 'modelUrl', 'name', 'preQuery', 'vram']);
    expect(result.errors.preQuery).toMatch(/end-of-turn/);
  });

  test('without a template base the form says how to get one', () => {
    const result = buildCustomModel(form(), undefined, [], 0);
    expect(result.ok ? '' : result.errors.base).toMatch(/mlc-chat-config\.json/);
  });

  test('a prebuilt model needs no library URL and gets no worker record', () => {
    const result = buildCustomModel(
      form({ kind: 'prebuilt', name: 'RedPajama-INCITE-Chat-3B-v1-q4f32_1-MLC', modelLibUrl: '' }),
      { baseTemplateId: 'llama-3' },
      [],
      0,
    );
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.model.template).toEqual({ source: 'custom', preQuery: llama3.preQuery(), baseTemplateId: 'llama-3' });
      expect(toWorkerRecord(result.model)).toBeUndefined();
    }
  });
});

describe('CustomModelStore', () => {
  const model = (name: string): CustomModel => {
    const result = buildCustomModel(form({ name }), { convTemplate: conv }, [], 1);
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    return result.model;
  };

  test('saves, replaces by model id, reloads and removes', () => {
    const storage = memoryStorage();
    const store = new CustomModelStore(storage, 'k');
    store.save(model('A-MLC'));
    store.save(model('B-MLC'));
    store.save({ ...model('A-MLC'), vramMB: 100 });
    const again = new CustomModelStore(storage, 'k').list();
    expect(again.map((m) => [m.modelId, m.vramMB])).toEqual([
      ['B-MLC', undefined],
      ['A-MLC', 100],
    ]);
    expect(again[1]?.template.convTemplate).toEqual(conv);
    expect(store.remove('B-MLC').map((m) => m.modelId)).toEqual(['A-MLC']);
    expect(new CustomModelStore(storage, 'k').list().map((m) => m.modelId)).toEqual(['A-MLC']);
  });

  test('broken entries are dropped, not fatal', () => {
    const storage = memoryStorage();
    const good = model('Good-MLC');
    storage.setItem(
      'k',
      JSON.stringify([
        good,
        { ...good, modelId: 'Bad-base-MLC', template: { source: 'custom', preQuery: 'x', baseTemplateId: 'no-such-template' } },
        { ...good, kind: 'other' },
        'junk',
      ]),
    );
    expect(new CustomModelStore(storage, 'k').list().map((m) => m.modelId)).toEqual(['Good-MLC']);
    storage.setItem('k', '{not json');
    expect(new CustomModelStore(storage, 'k').list()).toEqual([]);
    expect(parseCustomModel(null)).toBeUndefined();
  });

  test('without storage nothing is listed and saving says why', () => {
    const store = new CustomModelStore(undefined);
    expect(store.list()).toEqual([]);
    expect(() => store.save(model('X-MLC'))).toThrow(/local storage/);
  });
});

describe('fetchConvTemplate', () => {
  test('reads the conv_template and reports HTTP and JSON failures with the URL', async () => {
    const ok = await fetchConvTemplate('https://x.org/c.json', async () => new Response(JSON.stringify(FIXTURE)));
    expect(ok).toEqual(conv);
    await expect(fetchConvTemplate('https://x.org/c.json', async () => new Response('nope', { status: 404, statusText: 'Not Found' }))).rejects.toThrow(
      'https://x.org/c.json answered 404 Not Found',
    );
    await expect(fetchConvTemplate('https://x.org/c.json', async () => new Response('<html>'))).rejects.toThrow(/not JSON/);
    await expect(
      fetchConvTemplate('https://x.org/c.json', async () => {
        throw new TypeError('Failed to fetch');
      }),
    ).rejects.toThrow(/CORS/);
    await expect(fetchConvTemplate('https://x.org/c.json', async () => new Response('{"conv_template":{}}'))).rejects.toThrow(/conv_template/);
  });
});

describe('full-metadata export of a custom template', () => {
  test('the run quirks, the template data and the sanitizer note are written in snake_case', () => {
    const spec = convTemplateSpec(conv, '<|begin_of_text|>');
    const meta = templateMetadata(
      { sanitized: { raw: '1. What is X? Answer: Y', rule: 2, ruleName: 'enumerator' } },
      { quirks: llama3.quirks, customTemplate: spec },
    );
    expect(meta).toEqual({
      quirks: { first_token_ban: null, early_stop_newline: true, assistant_stop_word: true, sanitize: false },
      custom_template: { source: 'conv_template', pre_query: llama3.preQuery(), conv_template: conv, bos_token: '<|begin_of_text|>' },
      sanitized: { raw: '1. What is X? Answer: Y', rule: 2, rule_name: 'enumerator' },
    });
    expect(templateMetadata({}, {})).toEqual({});
  });
});
