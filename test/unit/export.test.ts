import { describe, expect, test } from 'vitest';
import { exportFileName, jsonlLines, toMagpie, toOpenAi, toShareGpt, type ExportFormat } from '../../src/core/export';
import type { MagpieRecord, StepInfo } from '../../src/core/record';

const step = (over: Partial<StepInfo> = {}): StepInfo => ({
  prompt: '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n',
  temperature: 1,
  topP: 1,
  maxTokens: 1024,
  stop: ['<|eot_id|>'],
  seed: 11,
  finishReason: 'stop',
  promptTokens: 5,
  completionTokens: 9,
  durationMs: 120.4,
  ...over,
});

const record = (seq: number, instruction = `Question ${seq}?`, response = `Answer ${seq}.`): MagpieRecord => ({
  uuid: `00000000-0000-4000-8000-00000000000${seq}`,
  runId: 'run-1234abcd',
  seq,
  modelId: 'Llama-3-8B-Instruct-q4f32_1-MLC',
  engine: 'webllm',
  templateId: 'llama-3',
  preQueryTemplate: '<|start_header_id|>user<|end_header_id|>\n\n',
  instruction,
  response,
  instructionStep: step(),
  responseStep: step({ temperature: 0, maxTokens: 2048, seed: 12, prompt: 'P' }),
  createdAt: Date.UTC(2026, 10, 23, 12, 0, 0),
});

const run = { id: 'run-1234abcd-ffff', label: 'Llama 3 8B, Nov 23' };

describe('export formats', () => {
  test('ShareGPT: conversations with from/value and a {prefix}_{n} id', () => {
    expect(toShareGpt(record(3), run)).toEqual({
      id: 'llama-3-8b-nov-23_3',
      conversations: [
        { from: 'human', value: 'Question 3?' },
        { from: 'gpt', value: 'Answer 3.' },
      ],
    });
  });

  test('OpenAI: messages with role/content', () => {
    expect(toOpenAi(record(1))).toEqual({
      messages: [
        { role: 'user', content: 'Question 1?' },
        { role: 'assistant', content: 'Answer 1.' },
      ],
    });
  });

  test('full metadata uses the reference field names', () => {
    const line = toMagpie(record(2));
    expect(line).toMatchObject({
      uuid: record(2).uuid,
      model: 'Llama-3-8B-Instruct-q4f32_1-MLC',
      gen_input_configs: {
        temperature: 1,
        top_p: 1,
        input_generator: 'Llama-3-8B-Instruct-q4f32_1-MLC',
        seed: 11,
        pre_query_template: '<|start_header_id|>user<|end_header_id|>\n\n',
      },
      instruction: 'Question 2?',
      response: 'Answer 2.',
      gen_response_configs: { prompt: 'P', temperature: 0, top_p: 1, max_tokens: 2048, engine: 'webllm' },
      instruction_length: 'Question 2?'.length,
      response_length: 'Answer 2.'.length,
    });
    expect(line.magpie_web).toMatchObject({ seq: 2, created_at: '2026-11-23T12:00:00.000Z', instruction: { finish_reason: 'stop', duration_ms: 120 } });
  });

  test.each<ExportFormat>(['sharegpt', 'openai', 'magpie'])('%s: one valid JSON object per line, text kept exact', async (format) => {
    const tricky = 'Line1\nLine2 "quoted" \u2028 <b>not html</b> émoji 🐦 \\ backslash';
    const lines: string[] = [];
    for await (const l of jsonlLines([record(1, tricky), record(2)], format, run)) lines.push(l);
    expect(lines).toHaveLength(2);
    for (const l of lines) {
      expect(l.endsWith('\n')).toBe(true);
      expect(l.slice(0, -1)).not.toContain('\n');
    }
    const parsed = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(JSON.stringify(parsed)).toContain(JSON.stringify(tricky).slice(1, -1));
  });

  test('reads records from an async source one at a time', async () => {
    let produced = 0;
    async function* source() {
      for (let i = 1; i <= 3; i++) {
        produced = i;
        yield record(i);
      }
    }
    const gen = jsonlLines(source(), 'openai', run);
    await gen.next();
    expect(produced).toBe(1);
  });

  test('file name says the run and the format', () => {
    expect(exportFileName(run, 'sharegpt')).toBe('magpie-llama-3-8b-nov-23-run-1234-sharegpt.jsonl');
    expect(exportFileName({ id: 'abcdefghij', label: '***' }, 'magpie')).toBe('magpie-run-abcdefgh-magpie.jsonl');
  });
});
