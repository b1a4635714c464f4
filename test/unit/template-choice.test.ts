import { describe, expect, test } from 'vitest';
import {
  availableBan,
  defaultChoice,
  familyVariants,
  instructionStops,
  isQuirkOn,
  officialTemplateId,
  prefillSampling,
  quirksSummary,
  showTemplateText,
  withQuirk,
} from '../../src/app/template-choice';
import { LLAMA3_HEADER_BAN } from '../../src/core/quirks';
import { defaultSettings, settingsToForm, type SettingsField } from '../../src/core/settings';
import { getTemplate } from '../../src/core/templates/registry';

describe('template variants of a family', () => {
  test('official first, then the reference pre-query variants; families never mix', () => {
    expect(familyVariants('llama-3.1').map((t) => t.id)).toEqual(['llama-3.1', 'llama-3.1-bare-query']);
    expect(familyVariants('llama-3.1-bare-query').map((t) => t.id)).toEqual(['llama-3.1', 'llama-3.1-bare-query']);
    expect(familyVariants('llama-3').map((t) => t.id)).toEqual(['llama-3']);
    expect(familyVariants('phi-3').map((t) => t.id)).toEqual(['phi-3', 'phi-3-spaced-query']);
    expect(familyVariants('qwen2').map((t) => t.id)).toEqual(['qwen2', 'qwen2-bare-query']);
    expect(familyVariants('qwen2.5').map((t) => t.id)).toEqual(['qwen2.5']);
    expect(officialTemplateId('gemma-2-double-newline-query')).toBe('gemma-2');
  });
});

describe('quirk choices', () => {
  const llama31 = getTemplate('llama-3.1');
  const llama3 = getTemplate('llama-3');
  const qwen = getTemplate('qwen2.5');

  test('defaults are the family reference values', () => {
    const c = defaultChoice('scripted:Llama-3.1-8B-Instruct-q4f32_1-MLC', llama31);
    expect(c.templateId).toBe('llama-3.1');
    expect(isQuirkOn(c.quirks, 'firstTokenBan')).toBe(true);
    expect(isQuirkOn(c.quirks, 'earlyStopNewline')).toBe(false);
    expect(isQuirkOn(c.quirks, 'sanitize')).toBe(true);
    expect(isQuirkOn(defaultChoice('x', qwen).quirks, 'earlyStopNewline')).toBe(true);
  });

  test('toggling a quirk changes the stop list and leaves the template defaults alone', () => {
    const c = defaultChoice('m', llama31);
    expect(instructionStops(llama31, c.quirks)).not.toContain('\n');
    const on = withQuirk(c, 'earlyStopNewline', true, llama31);
    expect(instructionStops(llama31, on.quirks)).toContain('\n');
    const noWord = withQuirk(on, 'assistantStopWord', false, llama31);
    expect(instructionStops(llama31, noWord.quirks)).not.toContain('assistant');
    expect(llama31.quirks.earlyStopNewline).toBe(false);
    expect(c.quirks.earlyStopNewline).toBe(false);
  });

  test('the header ban is offered for Llama-3-tokenizer families only', () => {
    expect(availableBan(llama3)).toEqual(LLAMA3_HEADER_BAN);
    expect(availableBan(qwen)).toBeNull();
    const off = withQuirk(defaultChoice('m', llama31), 'firstTokenBan', false, llama31);
    expect(off.quirks.firstTokenBan).toBeNull();
    expect(withQuirk(off, 'firstTokenBan', true, llama31).quirks.firstTokenBan).toEqual(LLAMA3_HEADER_BAN);
    expect(withQuirk(defaultChoice('m', qwen), 'firstTokenBan', true, qwen).quirks.firstTokenBan).toBeNull();
    expect(quirksSummary(off.quirks)).toBe('header ban off · newline stop off · "assistant" stop on · sanitizer on');
  });
});

describe('showTemplateText', () => {
  test('newlines, tabs and edge spaces are visible; special tokens stay as text', () => {
    expect(showTemplateText('<|start_header_id|>user<|end_header_id|>\n\n')).toBe('<|start_header_id|>user<|end_header_id|>\\n\\n');
    expect(showTemplateText('[INST] ')).toBe('[INST]␠');
    expect(showTemplateText('a\tb\u0001')).toBe('a\\tb\\u0001');
  });
});

describe('prefillSampling', () => {
  test('fields the user edited keep their value; the others take the family sampling', () => {
    const form = { ...settingsToForm(defaultSettings(7)), instructionTemperature: '1.3' };
    const edited = new Set<SettingsField>(['instructionTemperature']);
    const qwen = getTemplate('qwen2.5').defaultSampling;
    const next = prefillSampling(form, edited, {
      instruction: { ...qwen.instruction, temperature: 0.7, topP: 0.95 },
      response: { temperature: 0.6, topP: 0.9, maxTokens: 512 },
    });
    expect(next.instructionTemperature).toBe('1.3');
    expect(next.instructionTopP).toBe('0.95');
    expect(next.responseTemperature).toBe('0.6');
    expect(next.responseMaxTokens).toBe('512');
    expect(next.seed).toBe('7');
  });
});
