/**
 * Generation modes end to end in the e2e build (scripted engine, no GPU): a 3-turn run whose recipe re-imports to an
 * identical run, a preference run judged by hand that exports DPO JSONL with no identical pairs, one judged by the
 * model through constrained JSON (the scripted chat API), and an imported instruction file with malformed lines. The scripted engine writes an instruction for any prompt ending with the
 * user header (so also after a history) and a response for a prompt ending with the assistant header; its text
 * depends on (seed, prompt) at temperature > 0, so candidates drawn with different seeds can differ.
 */
import { readFile } from 'node:fs/promises';
import { expect, test, type Page } from '@playwright/test';
import { parseRecipe, recipeHash } from '../../src/core/recipe';
import { accepted, downloadFormat, fillSettings, loadScriptedModel, recordItems, startButton } from './helpers';

interface Message {
  role: string;
  content: string;
}
interface ShareGpt {
  conversations: Array<{ from: string; value: string }>;
}
interface FullLine {
  instruction: string;
  response: string;
  [key: string]: unknown;
  magpie_web: {
    seq: number;
    run_id: string;
    recipe_hash?: string;
    mode?: string;
    imported_line?: number;
    turns?: Array<{ turn: number; instruction: { prompt: string; finish_reason: string }; response?: { prompt: string; finish_reason: string } }>;
  };
}

interface Judgement {
  by: string;
  via?: string;
  chosen: number;
  rejected: number;
  scores: number[];
  steps: Array<{ prompt: string; finish_reason: string }>;
}

const USER_HEADER = '<|start_header_id|>user<|end_header_id|>\n\n';
const ASSISTANT_HEADER = '<|start_header_id|>assistant<|end_header_id|>\n\n';

async function selectMode(page: Page, label: string): Promise<void> {
  await page.getByLabel('Generation mode').selectOption({ label });
}

test('a 3-turn run: every turn recorded and exported; its recipe re-imports to an identical run', async ({ page }) => {
  await page.goto('/');
  const { modelId } = await loadScriptedModel(page);
  await fillSettings(page, { count: '3', seed: '4242' });
  await selectMode(page, 'Multi-turn conversations');
  await page.getByLabel('Turns').fill('3');
  await startButton(page).click();
  await expect(page.getByTestId('accepted')).toHaveText('3 / 3', { timeout: 45_000 });
  await expect(page.getByTestId('run-status')).toHaveText('done');

  const share = await downloadFormat(page, 'ShareGPT');
  expect(share.lines).toHaveLength(3);
  for (const line of share.lines as ShareGpt[]) {
    expect(line.conversations.map((c) => c.from)).toEqual(['human', 'gpt', 'human', 'gpt', 'human', 'gpt']);
    expect(line.conversations.every((c) => c.value.trim() !== '')).toBe(true);
  }

  const full = await downloadFormat(page, 'Full metadata');
  const lines = full.lines as FullLine[];
  const hashes = new Set(lines.map((l) => l.magpie_web.recipe_hash));
  expect(hashes.size).toBe(1);
  const hash = [...hashes][0] ?? '';
  expect(hash).toMatch(/^[0-9a-f]{64}$/);
  for (const l of lines) {
    expect(l.magpie_web.mode).toBe('multi-turn');
    expect(typeof l.instruction_2).toBe('string');
    expect(typeof l.response_2).toBe('string');
    expect(typeof l.instruction_3).toBe('string');
    expect(typeof l.response_3).toBe('string');
    const turns = l.magpie_web.turns ?? [];
    expect(turns.map((t) => t.turn)).toEqual([2, 3]);
    // Follow-up query prompts: the whole history, then the bare user header; responses end at the assistant header.
    const second = turns[0];
    expect(second?.instruction.prompt.endsWith(USER_HEADER)).toBe(true);
    expect(second?.instruction.prompt).toContain(`${l.instruction}<|eot_id|>`);
    expect(second?.instruction.prompt).toContain(`${l.response}<|eot_id|>`);
    expect(second?.response?.prompt.endsWith(`${String(l.instruction_2)}<|eot_id|>${ASSISTANT_HEADER}`)).toBe(true);
    expect(turns.every((t) => t.instruction.finish_reason === 'stop' && t.response?.finish_reason === 'stop')).toBe(true);
  }

  // Export the recipe; its hash is the one on every record.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download recipe' }).click()]);
  const recipeText = await readFile(await download.path(), 'utf8');
  const parsed = parseRecipe(recipeText);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  expect(recipeHash(parsed.recipe)).toBe(hash);
  expect(parsed.recipe).toMatchObject({ model: modelId, seed: 4242, count: 3, mode: { kind: 'multi-turn', turns: 3 } });

  // Import it and start an identical run: same hash, same conversations (same seeds, same prompts).
  await selectMode(page, 'Instruction + response (classic Magpie)');
  await page.getByLabel('Import recipe').setInputFiles({ name: 'recipe.json', mimeType: 'application/json', buffer: Buffer.from(recipeText) });
  await expect(page.getByTestId('recipe-hash')).toContainText(hash.slice(0, 12));
  // The form now shows the recipe's mode.
  await expect(page.getByLabel('Generation mode')).toHaveValue('multi-turn');
  await page.getByRole('button', { name: 'Start identical run' }).click();
  await expect(page.getByTestId('accepted')).toHaveText('3 / 3', { timeout: 45_000 });
  await expect(page.getByTestId('run-status')).toHaveText('done');
  const again = (await downloadFormat(page, 'Full metadata')).lines as FullLine[];
  expect(again[0]?.magpie_web.run_id).not.toBe(lines[0]?.magpie_web.run_id);
  expect(again.map((l) => l.magpie_web.recipe_hash)).toEqual([hash, hash, hash]);
  const conversation = (l: FullLine) => [l.instruction, l.response, l.instruction_2, l.response_2, l.instruction_3, l.response_3];
  expect(again.map(conversation)).toEqual(lines.map(conversation));
});

test('a preference run judged by hand exports TRL and OpenAI DPO JSONL with no identical pairs', async ({ page }) => {
  await page.goto('/');
  await loadScriptedModel(page);
  await fillSettings(page, { count: '2', seed: '31337' });
  await selectMode(page, 'Preference pairs (DPO)');
  await page.getByLabel('Responses per instruction').fill('4');
  await page.getByLabel('Choose chosen / rejected').selectOption('manual');
  await startButton(page).click();
  await expect(page.getByTestId('accepted')).toHaveText('2 / 2', { timeout: 45_000 });
  await expect(page.getByTestId('run-status')).toHaveText('done');

  // Not judged yet: the DPO exports are empty.
  const [empty] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'TRL DPO', exact: true }).click()]);
  expect(await readFile(await empty.path(), 'utf8')).toBe('');

  const review = page.locator('ol.preference-records > li');
  await expect(review).toHaveCount(2);
  for (let i = 0; i < 2; i++) {
    const item = review.nth(i);
    const seq = await item.getAttribute('data-seq');
    const texts = await item.locator('ol.candidates .response').allTextContents();
    expect(texts).toHaveLength(4);
    // The scripted engine varies with the seed: the run keeps only instructions whose candidates differ.
    const other = texts.findIndex((t) => t !== texts[0]);
    expect(other).toBeGreaterThan(0);
    // Picking two identical texts is refused.
    const same = texts.findIndex((t, k) => k > 0 && t === texts[0]);
    if (same > 0) {
      await page.getByLabel(`Chosen: response 1 of record ${seq}`, { exact: true }).check();
      await page.getByLabel(`Rejected: response ${same + 1} of record ${seq}`, { exact: true }).check();
      await expect(page.getByRole('button', { name: `Save choice for record ${seq}` })).toBeDisabled();
    }
    await page.getByLabel(`Chosen: response ${other + 1} of record ${seq}`, { exact: true }).check();
    await page.getByLabel(`Rejected: response 1 of record ${seq}`, { exact: true }).check();
    await page.getByRole('button', { name: `Save choice for record ${seq}` }).click();
    await expect(item.getByTestId('judgement-status')).toHaveText(`Judged by hand: chosen ${other + 1}, rejected 1`);
  }

  const trl = await downloadFormat(page, 'TRL DPO');
  expect(trl.fileName).toMatch(/trl-dpo\.jsonl$/);
  expect(trl.lines).toHaveLength(2);
  for (const line of trl.lines as Array<{ prompt: Message[]; chosen: Message[]; rejected: Message[] }>) {
    expect(line.prompt.at(-1)?.role).toBe('user');
    expect(line.chosen[0]?.role).toBe('assistant');
    expect(line.chosen[0]?.content).not.toBe(line.rejected[0]?.content);
    expect(line.chosen[0]?.content.trim()).not.toBe('');
  }
  const openai = await downloadFormat(page, 'OpenAI DPO');
  for (const line of openai.lines as Array<{ input: { messages: Message[] }; preferred_output: Message[]; non_preferred_output: Message[] }>) {
    expect(line.input.messages.at(-1)?.role).toBe('user');
    expect(line.preferred_output[0]?.content).not.toBe(line.non_preferred_output[0]?.content);
  }
  expect(openai.lines).toHaveLength(2);

  // Judgements are stored: they survive a reload.
  await page.reload();
  await expect(page.getByTestId('judgement-status').first()).toContainText('Judged by hand');
});

test('a preference run judged by the model uses constrained JSON and exports DPO pairs that always differ', async ({ page }) => {
  await page.goto('/');
  await loadScriptedModel(page);
  await fillSettings(page, { count: '3', seed: '2718' });
  await selectMode(page, 'Preference pairs (DPO)');
  await page.getByLabel('Responses per instruction').fill('4');
  await page.getByLabel('Choose chosen / rejected').selectOption('model');
  await startButton(page).click();
  await expect(page.getByTestId('accepted')).toHaveText('3 / 3', { timeout: 45_000 });
  await expect(page.getByTestId('run-status')).toHaveText('done');
  await expect(page.getByTestId('judgement-status')).toHaveText(Array(3).fill(/^Judged by the model \(constrained JSON\): chosen \d, rejected \d$/));

  const trl = await downloadFormat(page, 'TRL DPO');
  expect(trl.lines).toHaveLength(3);
  for (const line of trl.lines as Array<{ prompt: Message[]; chosen: Message[]; rejected: Message[] }>) {
    expect(line.prompt.at(-1)?.role).toBe('user');
    expect(line.chosen[0]?.content.trim()).not.toBe('');
    expect(line.chosen[0]?.content.trim()).not.toBe(line.rejected[0]?.content.trim());
  }

  const full = (await downloadFormat(page, 'Full metadata')).lines as Array<FullLine & { magpie_web: { judgement?: Judgement; candidates?: Array<{ text: string }> } }>;
  expect(full).toHaveLength(3);
  for (const l of full) {
    const j = l.magpie_web.judgement;
    if (!j) throw new Error('a model-judged record has no judgement');
    expect(j).toMatchObject({ by: 'model', via: 'constrained' });
    // One constrained call answered: its step holds the chat messages, our own system message first.
    expect(j.steps).toHaveLength(1);
    const messages = JSON.parse(j.steps[0]?.prompt ?? '[]') as Message[];
    expect(messages.map((m) => m.role)).toEqual(['system', 'user']);
    expect(messages[1]?.content).toContain(`[User request]\n${l.instruction}\n`);
    expect(j.scores).toHaveLength(4);
    const texts = (l.magpie_web.candidates ?? []).map((c) => c.text);
    expect(texts).toHaveLength(4);
    // Chosen is the top score, rejected a strictly lower one with a different text; the record answers with chosen.
    expect(j.scores[j.chosen]).toBe(Math.max(...j.scores));
    expect(j.scores[j.rejected]).toBeLessThan(j.scores[j.chosen] ?? 0);
    expect(texts[j.chosen]?.trim()).not.toBe(texts[j.rejected]?.trim());
    expect(l.response).toBe(texts[j.chosen]);
  }
});

test('an imported instruction file: malformed lines reported by line number, valid lines answered in order', async ({ page }) => {
  await page.goto('/');
  await loadScriptedModel(page);
  await fillSettings(page, { count: '4', seed: '9' });
  await page.getByLabel('Instructions', { exact: true }).selectOption('imported');
  const file = [
    '{"instruction": "How do tides work?"}',
    '{"instruction": "broken',
    '{"prompt": "Name three prime numbers."}',
    '',
    '{"nothing": "here"}',
    '{"messages": [{"role": "user", "content": "What is a haiku?"}]}',
  ].join('\n');
  await page.getByLabel('Instruction file').setInputFiles({ name: 'mine.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(file) });
  await expect(page.getByTestId('imported-count')).toContainText('3 instructions read, 2 lines skipped');
  const problems = page.getByRole('list', { name: 'Lines not imported' }).getByRole('listitem');
  await expect(problems).toHaveText(['Line 2: not valid JSON', /^Line 5: no instruction/]);
  // 4 records from 3 valid instructions cannot work: said at the field, and Start stays off.
  await expect(page.getByText('The file has 3 valid instructions')).toBeVisible();
  await expect(startButton(page)).toBeDisabled();
  await fillSettings(page, { count: '3' });
  await expect(startButton(page)).toBeEnabled();
  await startButton(page).click();
  await expect(page.getByTestId('accepted')).toHaveText('3 / 3', { timeout: 30_000 });
  await expect(recordItems(page)).toHaveCount(3);
  const full = (await downloadFormat(page, 'Full metadata')).lines as FullLine[];
  expect(full.map((l) => l.instruction)).toEqual(['How do tides work?', 'Name three prime numbers.', 'What is a haiku?']);
  expect(full.map((l) => l.magpie_web.imported_line)).toEqual([1, 3, 6]);
  expect(full.every((l) => l.response.includes('You asked about'))).toBe(true);
  expect(await accepted(page)).toBe(3);
});
