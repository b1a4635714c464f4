import { describe, expect, test } from 'vitest';
import { runLabel, shortModelName } from '../../src/app/session';
import { exportFileName } from '../../src/core/export';

describe('run labels', () => {
  test('drop the quantization, MLC suffix, Instruct and the scripted prefix', () => {
    expect(shortModelName('Llama-3.2-3B-Instruct-q4f32_1-MLC')).toBe('Llama-3.2-3B');
    expect(shortModelName('Llama-3-8B-Instruct-q4f16_1-MLC-1k')).toBe('Llama-3-8B');
    expect(shortModelName('scripted:Llama-3.2-1B-Instruct-q4f32_1-MLC')).toBe('Llama-3.2-1B');
  });

  test('read "model date time" in local time, zero-padded', () => {
    expect(runLabel('Llama-3.2-3B-Instruct-q4f32_1-MLC', new Date(2026, 10, 3, 4, 5))).toBe('Llama-3.2-3B 2026-11-03 04:05');
  });

  test('give export file names that say the model and the format', () => {
    const label = runLabel('Llama-3.2-3B-Instruct-q4f32_1-MLC', new Date(2026, 10, 23, 14, 5));
    expect(exportFileName({ id: 'abcdef123456', label }, 'sharegpt')).toBe(
      'magpie-llama-3-2-3b-2026-11-23-14-05-abcdef12-sharegpt.jsonl',
    );
  });
});
