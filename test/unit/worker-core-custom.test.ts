import { describe, expect, test } from 'vitest';
import { ScriptedMLCEngine } from '../../src/engine/scripted-mlc-engine';
import type { CustomModelRecord } from '../../src/engine/worker-api';
import { createEngineWorkerApi } from '../../src/engine/worker-core';

const PROBE = '<|eot_id|>';
const CUSTOM: CustomModelRecord = {
  model: 'https://example.org/u/scripted-custom-MLC',
  model_id: 'scripted:My-Llama-3-8B-q4f16_1-MLC',
  model_lib: 'https://example.org/libs/llama.wasm',
  vram_required_MB: 5001,
  overrides: { context_window_size: 2048 },
};

function setup() {
  const seen: Array<CustomModelRecord | undefined> = [];
  const cachedWith: Array<[string, CustomModelRecord | undefined]> = [];
  const api = createEngineWorkerApi(
    (_id, custom) => {
      seen.push(custom);
      return new ScriptedMLCEngine({ tokenDelayMs: 0 });
    },
    {
      capabilities: async () => ({ webgpu: false }),
      listModels: () => [],
      isCached: async (id, custom) => {
        cachedWith.push([id, custom]);
        return custom !== undefined;
      },
      contextWindow: (_id, custom) => custom?.overrides?.context_window_size ?? 4096,
    },
  );
  return { api, seen, cachedWith };
}

describe('the worker loads a custom model record', () => {
  test('the record reaches the engine factory and sets the context window', async () => {
    const { api, seen } = setup();
    const model = await api.load(CUSTOM.model_id, PROBE, undefined, CUSTOM);
    expect(seen).toEqual([CUSTOM]);
    expect(model).toMatchObject({ modelId: CUSTOM.model_id, contextWindow: 2048 });
    await api.load('scripted:Llama-3.2-1B-Instruct-q4f32_1-MLC', PROBE);
    expect(seen[1]).toBeUndefined();
  });

  test('a record for another id is refused before anything loads', async () => {
    const { api, seen } = setup();
    await expect(api.load('scripted:Other-MLC', PROBE, undefined, CUSTOM)).rejects.toMatchObject({ name: 'ModelNotFoundError' });
    expect(seen).toEqual([]);
  });

  test('the cache check gets the record of each custom id only', async () => {
    const { api, cachedWith } = setup();
    const answer = await api.cachedModels(['a', CUSTOM.model_id], [CUSTOM]);
    expect(answer).toEqual({ a: false, [CUSTOM.model_id]: true });
    expect(cachedWith).toEqual([
      ['a', undefined],
      [CUSTOM.model_id, CUSTOM],
    ]);
  });
});
