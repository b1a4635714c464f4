import { emptyCounters, type Run } from '../../src/core/record';
import { defaultSettings } from '../../src/core/settings';

export function testRun(overrides: Partial<Run> = {}): Run {
  const now = 1_700_000_000_000;
  return {
    id: 'run-0001-aaaa',
    label: 'Test run',
    createdAt: now,
    updatedAt: now,
    status: 'queued',
    modelId: 'Llama-3-8B-Instruct-q4f32_1-MLC',
    engine: 'webllm',
    templateId: 'llama-3',
    engineAddsBos: false,
    settings: { ...defaultSettings(42), count: 5 },
    counters: emptyCounters(),
    ...overrides,
  };
}
