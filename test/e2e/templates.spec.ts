import { readFile } from 'node:fs/promises';
import { expect, test, type Page } from '@playwright/test';
import { withPreQuery } from '../../src/core/custom-template';
import { parseRecipe, recipeHash } from '../../src/core/recipe';
import { downloadFormat, fillSettings, modelSelect, startButton } from './helpers';

const LLAMA31 = 'scripted:Llama-3.1-8B-Instruct-q4f32_1-MLC';

interface MagpieLine {
  magpie_web: {
    template: string;
    quirks?: {
      first_token_ban: { token_ids: number[]; strings: string[] } | null;
      early_stop_newline: boolean;
      assistant_stop_word: boolean;
      sanitize: boolean;
    };
    instruction: { stop: string[]; prompt: string };
  };
  gen_input_configs: { pre_query_template: string };
}

async function optgroupLabels(page: Page): Promise<string[]> {
  return modelSelect(page)
    .locator('optgroup')
    .evaluateAll((groups) => groups.map((g) => (g as HTMLOptGroupElement).label));
}

function quirk(page: Page, label: string) {
  return page.getByRole('checkbox', { name: label });
}

async function stopList(page: Page): Promise<string[]> {
  return page.getByTestId('stop-list').locator('li').allTextContents();
}

test('the picker groups models by family, marks the f32 choice and shows hidden models on request', async ({ page }) => {
  await page.goto('/');
  await expect(modelSelect(page).locator('optgroup').first()).toBeAttached();
  const labels = await optgroupLabels(page);
  for (const family of ['Llama-3', 'Llama-3.1', 'Llama-3.2', 'Qwen2.5', 'Phi-3.5', 'Gemma-2', 'SmolLM2', 'Test engine (scripted)']) {
    expect(labels).toContain(family);
  }
  // Every option sits in its own family's group.
  const qwen = await modelSelect(page).locator('optgroup[label="Qwen2.5"] option').allTextContents();
  expect(qwen.length).toBeGreaterThan(1);
  expect(qwen.every((t) => t.startsWith('Qwen2.5 ') && t.includes('q4f32_1') && t.includes('VRAM'))).toBe(true);
  // Sizes ascend within a family.
  const sizes = qwen.map((t) => Number(/Qwen2\.5 (\d+(?:\.\d+)?)B/.exec(t)?.[1]));
  expect(sizes).toEqual([...sizes].sort((a, b) => a - b));
  // SwiftShader has no shader-f16: the q4f32_1 builds are chosen, and said so.
  await expect(page.getByTestId('quant-choice')).toContainText('q4f32_1');
  await expect(page.getByTestId('quant-choice')).toContainText('no shader-f16');
  const values = await modelSelect(page).locator('option').evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value));
  expect(values.filter((v) => v.includes('q4f16'))).toEqual([]);
  // The 1k-context builds are offered, labelled for small GPUs.
  const oneK = await modelSelect(page).locator('option[value$="-1k"]').allTextContents();
  expect(oneK.length).toBeGreaterThan(0);
  expect(oneK.every((t) => t.includes('1k context') && t.includes('for small GPUs'))).toBe(true);

  expect(labels.some((l) => l.includes('hidden'))).toBe(false);
  await page.getByRole('checkbox', { name: /Show all models/ }).check();
  await expect(modelSelect(page).locator('optgroup[label*="hidden: code-only"]')).toBeAttached();
  const coder = await modelSelect(page).locator('optgroup[label*="hidden: code-only"] option').first().getAttribute('value');
  expect(coder).toMatch(/Coder/);
  await modelSelect(page).selectOption(coder ?? '');
  await expect(page.getByTestId('hidden-reason')).toContainText('code-only');
  await page.getByRole('checkbox', { name: /Show all models/ }).uncheck();
  await expect(modelSelect(page).locator('optgroup[label*="hidden"]')).toHaveCount(0);
});

test('Llama-3.1 quirks: reference defaults, a changed stop list, stored on the run and in the full export', async ({ page }) => {
  await page.goto('/');
  await expect(modelSelect(page).locator(`option[value="${LLAMA31}"]`)).toBeAttached();
  await modelSelect(page).selectOption(LLAMA31);
  const panel = page.getByTestId('quirks-settings');
  await expect(panel).toBeVisible();

  // The reference's Llama-3.1 defaults.
  await expect(quirk(page, 'Ban markdown headers as the first token')).toBeChecked();
  await expect(quirk(page, 'Stop queries at the first newline')).not.toBeChecked();
  await expect(quirk(page, 'Stop queries at the word "assistant"')).toBeChecked();
  await expect(quirk(page, 'Sanitize queries')).toBeChecked();
  await expect(panel).toContainText('ids 2, 567, 14711, 827');

  // The official pre-query opens with the date system block; the reference variant is the bare user header.
  await expect(page.getByRole('radio', { name: /Official chat template/ })).toBeChecked();
  await expect(page.getByTestId('pre-query')).toContainText('Cutting Knowledge Date: December 2023\\n');
  await page.getByRole('radio', { name: /Magpie reference/ }).check();
  await expect(page.getByTestId('pre-query')).toHaveText('<|start_header_id|>user<|end_header_id|>\\n\\n');

  expect(await stopList(page)).not.toContain('\\n');
  expect(await stopList(page)).toContain('assistant');
  await quirk(page, 'Stop queries at the first newline').check();
  await expect.poll(() => stopList(page)).toContain('\\n');
  await quirk(page, 'Stop queries at the first newline').uncheck();
  await expect.poll(() => stopList(page)).not.toContain('\\n');
  // Stored choice for the run: newline stop on, "assistant" stop off, ban off.
  await quirk(page, 'Stop queries at the first newline').check();
  await quirk(page, 'Stop queries at the word "assistant"').uncheck();
  await quirk(page, 'Ban markdown headers as the first token').uncheck();
  await expect.poll(() => stopList(page)).not.toContain('assistant');

  await page.getByRole('button', { name: 'Load model' }).click();
  await expect(page.getByTestId('loaded-model')).toContainText(LLAMA31);
  await fillSettings(page, { count: '2', seed: '4242' });
  await startButton(page).click();
  await expect(page.getByTestId('accepted')).toHaveText('2 / 2', { timeout: 30_000 });
  await expect(page.getByTestId('run-template')).toHaveText('llama-3.1-bare-query');
  await expect(page.getByTestId('run-quirks')).toHaveText(
    'quirks: header ban off · newline stop on · "assistant" stop off · sanitizer on',
  );

  const full = await downloadFormat(page, 'Full metadata');
  const lines = full.lines as MagpieLine[];
  expect(lines).toHaveLength(2);
  for (const line of lines) {
    expect(line.magpie_web.template).toBe('llama-3.1-bare-query');
    expect(line.magpie_web.quirks).toEqual({
      first_token_ban: null,
      early_stop_newline: true,
      assistant_stop_word: false,
      sanitize: true,
    });
    expect(line.magpie_web.instruction.stop).toContain('\n');
    expect(line.magpie_web.instruction.stop).not.toContain('assistant');
    expect(line.gen_input_configs.pre_query_template).toBe('<|start_header_id|>user<|end_header_id|>\n\n');
  }
});

test('the first-token ban runs end to end and is recorded', async ({ page }) => {
  await page.goto('/');
  await expect(modelSelect(page).locator(`option[value="${LLAMA31}"]`)).toBeAttached();
  await modelSelect(page).selectOption(LLAMA31);
  await expect(quirk(page, 'Ban markdown headers as the first token')).toBeChecked();
  await page.getByRole('button', { name: 'Load model' }).click();
  await expect(page.getByTestId('loaded-model')).toContainText(LLAMA31);
  await fillSettings(page, { count: '1', seed: '7' });
  await startButton(page).click();
  await expect(page.getByTestId('accepted')).toHaveText('1 / 1', { timeout: 30_000 });
  const full = await downloadFormat(page, 'Full metadata');
  const [line] = full.lines as MagpieLine[];
  expect(line?.magpie_web.template).toBe('llama-3.1');
  expect(line?.magpie_web.quirks?.first_token_ban).toEqual({ token_ids: [2, 567, 14711, 827], strings: ['#', '##', '###', '####'] });
  expect(line?.magpie_web.instruction.prompt).toContain('Cutting Knowledge Date');
});

test('a custom model\'s recipe carries its template: "Start identical run" rebuilds it after the model was edited', async ({ page }) => {
  // The scripted 1B model added as a custom model (stored the way the "Add a model" form saves it), with its own
  // pre-query: a system block about birds on the Llama-3 format.
  const modelId = 'scripted:Llama-3.2-1B-Instruct-q4f32_1-MLC';
  const birds = '<|start_header_id|>system<|end_header_id|>\n\nAsk about birds.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n';
  const saved = (preQuery: string) =>
    JSON.stringify([{ modelId, kind: 'prebuilt', modelUrl: 'https://example.org/m', modelLibUrl: '', template: withPreQuery({ baseTemplateId: 'llama-3' }, preQuery), addedAt: 1 }]);
  await page.addInitScript((text) => {
    if (localStorage.getItem('magpie-web:custom-models') === null) localStorage.setItem('magpie-web:custom-models', text);
  }, saved(birds));
  await page.goto('/');
  await expect(modelSelect(page).locator(`option[value="${modelId}"]`)).toBeAttached();
  await modelSelect(page).selectOption(modelId);
  await page.getByRole('button', { name: 'Load model' }).click();
  await expect(page.getByTestId('loaded-model')).toContainText(modelId);
  await fillSettings(page, { count: '2', seed: '31' });
  await startButton(page).click();
  await expect(page.getByTestId('accepted')).toHaveText('2 / 2', { timeout: 30_000 });
  const first = (await downloadFormat(page, 'Full metadata')).lines as MagpieLine[];
  expect(first.map((l) => l.gen_input_configs.pre_query_template)).toEqual([birds, birds]);
  expect(first.every((l) => l.magpie_web.template === 'llama-3+custom-pre-query')).toBe(true);

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download recipe' }).click()]);
  const recipeText = await readFile(await download.path(), 'utf8');
  const parsed = parseRecipe(recipeText);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  expect(parsed.recipe.version).toBe(2);
  expect(parsed.recipe.template.custom?.preQuery).toBe(birds);

  // The saved model changes its pre-query; the recipe still makes the birds prompts, byte for byte.
  await page.evaluate((text) => localStorage.setItem('magpie-web:custom-models', text), saved(birds.replace('birds', 'fish')));
  await page.reload();
  await modelSelect(page).selectOption(modelId);
  await page.getByRole('button', { name: 'Load model' }).click();
  await expect(page.getByTestId('loaded-model')).toContainText(modelId);
  await page.getByLabel('Import recipe').setInputFiles({ name: 'recipe.json', mimeType: 'application/json', buffer: Buffer.from(recipeText) });
  await expect(page.getByTestId('recipe-hash')).toContainText(recipeHash(parsed.recipe).slice(0, 12));
  await page.getByRole('button', { name: 'Start identical run' }).click();
  await expect(page.getByTestId('accepted')).toHaveText('2 / 2', { timeout: 30_000 });
  await expect(page.getByTestId('run-status')).toHaveText('done');
  const again = (await downloadFormat(page, 'Full metadata')).lines as Array<MagpieLine & { instruction: string; magpie_web: { run_id: string; recipe_hash?: string } }>;
  const firstFull = first as Array<MagpieLine & { instruction: string; magpie_web: { run_id: string; recipe_hash?: string } }>;
  expect(again[0]?.magpie_web.run_id).not.toBe(firstFull[0]?.magpie_web.run_id);
  expect(again.map((l) => l.gen_input_configs.pre_query_template)).toEqual([birds, birds]);
  expect(again.map((l) => l.magpie_web.instruction.prompt)).toEqual(first.map((l) => l.magpie_web.instruction.prompt));
  expect(again.map((l) => l.instruction)).toEqual(firstFull.map((l) => l.instruction));
  expect(again.map((l) => l.magpie_web.recipe_hash)).toEqual(firstFull.map((l) => l.magpie_web.recipe_hash));
});
