// Bad model files, as WebLLM reports them (bare WebAssembly / JSON errors), become a named, classified failure that
// says which URL to check; and the worker deletes an added model's cache with its record.
import { describe, expect, test } from 'vitest';
import { classifyEngineError } from '../../src/core/errors';
import { explainLoadFailure, MODEL_FILE_ERROR } from '../../src/engine/load-failure';
import { engineErrorFrom, type MLCEngineLike } from '../../src/engine/webllm-adapter';
import type { CustomModelRecord } from '../../src/engine/worker-api';
import { createEngineWorkerApi } from '../../src/engine/worker-core';

const RECORD: CustomModelRecord = {
  model: 'http://localhost:5173/models/My-Llama',
  model_id: 'My-Llama-q4f32_1-MLC',
  model_lib: 'http://localhost:5173/libs/my-llama.wasm',
};

/** The errors the browser really raises for these files (Node's V8 words them the same way). */
function compileErrorFor(bytes: string): Error {
  try {
    new WebAssembly.Module(new TextEncoder().encode(bytes));
  } catch (err) {
    return err as Error;
  }
  throw new Error('compiled?');
}
function jsonErrorFor(text: string): Error {
  try {
    JSON.parse(text);
  } catch (err) {
    return err as Error;
  }
  throw new Error('parsed?');
}

describe('explainLoadFailure', () => {
  test('a model library that is a web page: names the library URL and says a page came back', () => {
    const original = compileErrorFor('<!doctype html><title>Not found</title>');
    expect(original.name).toBe('CompileError');
    const err = explainLoadFailure(original, RECORD.model_id, RECORD) as Error;
    expect(err.name).toBe(MODEL_FILE_ERROR);
    expect(err.message).toContain(`The model library ${RECORD.model_lib} is not a WebLLM model library`);
    expect(err.message).toContain(original.message);
    expect(err.message).toContain('web page instead of a .wasm file');
    expect(classifyEngineError(err)).toMatchObject({ kind: 'model-files', recoverable: false });
  });

  test('a library of other bytes is still named, without the web-page hint; a prebuilt model is named by id', () => {
    const err = explainLoadFailure(compileErrorFor('garbage bytes'), 'Llama-3.2-1B-Instruct-q4f32_1-MLC') as Error;
    expect(err.message).toMatch(/^The model library of Llama-3\.2-1B-Instruct-q4f32_1-MLC is not a WebLLM model library/);
    expect(err.message).not.toContain('web page');
  });

  test('a config that is a web page: names the weights URL', () => {
    const err = explainLoadFailure(jsonErrorFor('<!doctype html>'), RECORD.model_id, RECORD) as Error;
    expect(err.name).toBe(MODEL_FILE_ERROR);
    expect(err.message).toContain(`A model file under ${RECORD.model}`);
    expect(err.message).toContain('check the weights URL');
    expect(classifyEngineError(err).kind).toBe('model-files');
  });

  test('other failures pass through unchanged', () => {
    const lost = Object.assign(new Error('GPU gone'), { name: 'DeviceLostError' });
    expect(explainLoadFailure(lost, RECORD.model_id, RECORD)).toBe(lost);
    const type = new TypeError("Cannot read properties of undefined (reading 'buffer')");
    expect(explainLoadFailure(type, RECORD.model_id, RECORD)).toBe(type);
    expect(explainLoadFailure('text', RECORD.model_id)).toBe('text');
  });

  test('an unexplained CompileError that crossed the worker boundary still classifies as model-files', () => {
    expect(classifyEngineError(compileErrorFor('x')).kind).toBe('model-files');
    expect(engineErrorFrom('CompileError: WebAssembly.Module(): expected magic word').kind).toBe('model-files');
  });
});

function failingEngine(err: unknown): MLCEngineLike {
  return {
    completions: { create: () => Promise.reject(new Error('not used')) },
    interruptGenerate: async () => undefined,
    reload: () => Promise.reject(err),
    unload: async () => undefined,
    setInitProgressCallback: () => undefined,
  };
}

describe('the worker core with a failing load and cache deletion', () => {
  test('load rejects with the named error across the wire (name and message only)', async () => {
    const api = createEngineWorkerApi(() => failingEngine(compileErrorFor('<html>')), {
      capabilities: async () => ({ webgpu: true }),
      listModels: () => [],
      isCached: async () => false,
      contextWindow: () => 4096,
    });
    const err = await api.load(RECORD.model_id, '<|eot_id|>', undefined, RECORD).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe(MODEL_FILE_ERROR);
    expect((err as Error).message).toContain(RECORD.model_lib);
    expect(engineErrorFrom(err).kind).toBe('model-files');
  });

  test('deleteCachedModel hands the record to the cache, and refuses a record for another id', async () => {
    const deleted: Array<[string, CustomModelRecord | undefined]> = [];
    const api = createEngineWorkerApi(() => failingEngine(new Error('not used')), {
      capabilities: async () => ({ webgpu: true }),
      listModels: () => [],
      isCached: async () => false,
      contextWindow: () => 4096,
      deleteCached: async (id, custom) => {
        deleted.push([id, custom]);
      },
    });
    await api.deleteCachedModel(RECORD.model_id, RECORD);
    await api.deleteCachedModel('Llama-3.2-1B-Instruct-q4f32_1-MLC');
    await expect(api.deleteCachedModel('Other-MLC', RECORD)).rejects.toMatchObject({ name: 'ModelNotFoundError' });
    expect(deleted).toEqual([
      [RECORD.model_id, RECORD],
      ['Llama-3.2-1B-Instruct-q4f32_1-MLC', undefined],
    ]);
  });
});
