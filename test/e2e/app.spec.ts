import { expect, test } from '@playwright/test';
import {
  accepted,
  downloadFormat,
  fillSettings,
  loadScriptedModel,
  modelSelect,
  recordItems,
  shownInstructions,
  startButton,
} from './helpers';

interface ShareGpt {
  id: string;
  conversations: Array<{ from: string; value: string }>;
}
interface OpenAi {
  messages: Array<{ role: string; content: string }>;
}
interface MagpieLine {
  uuid: string;
  instruction: string;
  response: string;
  magpie_web: { seq: number; run_id: string };
}

test('capability panel shows the SwiftShader software adapter and the q4f32_1 choice', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByTestId('webgpu-status')).toHaveText('available');
  await expect(page.getByTestId('gpu-adapter')).toContainText('software adapter');
  await expect(page.getByTestId('shader-f16')).toHaveText('no');
  await expect(page.getByTestId('f32-note')).toBeVisible();
  await expect(page.getByTestId('f32-note')).toContainText('shader-f16');
  await expect(page.getByText('Llama-3-8B-Instruct').first()).toBeVisible();
  const select = modelSelect(page);
  await expect(select.locator('option').first()).toBeAttached();
  await expect(select).toHaveValue(/q4f32_1-MLC$/);
  // Without shader-f16 no q4f16_1 model may be offered.
  const values = await select.locator('option').evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value));
  expect(values.filter((v) => v.includes('q4f16'))).toEqual([]);
});

test('a full run: progress, 5 records, survives a reload, downloads every format', async ({ page }) => {
  await page.goto('/');
  await expect(startButton(page)).toBeDisabled();
  const { progressTexts } = await loadScriptedModel(page);
  expect(progressTexts.some((t) => /^(Downloading|Loading from cache|Compiling shaders): \d+%$/.test(t))).toBe(true);

  await fillSettings(page, { count: '5', seed: '1234' });
  await startButton(page).click();
  await expect(page.getByTestId('accepted')).toHaveText('5 / 5', { timeout: 30_000 });
  await expect(page.getByTestId('run-status')).toHaveText('done');
  await expect(recordItems(page)).toHaveCount(5);
  const newestFirst = await shownInstructions(page);
  expect(newestFirst.every((t) => t.trim().length > 0)).toBe(true);
  const inOrder = [...newestFirst].reverse();

  await page.reload();
  await expect(recordItems(page)).toHaveCount(5);
  expect(await shownInstructions(page)).toEqual(newestFirst);
  await expect(page.getByRole('button', { name: /Delete run/ })).toHaveCount(1);
  await expect(page.getByTestId('run-status')).toHaveText('done');

  // Open a record: the response is inside its <details>.
  await recordItems(page).first().locator('summary').click();
  await expect(recordItems(page).first().locator('.response')).not.toBeEmpty();

  const share = await downloadFormat(page, 'ShareGPT');
  expect(share.fileName).toMatch(/sharegpt\.jsonl$/);
  expect(share.lines).toHaveLength(5);
  expect((share.lines as ShareGpt[]).map((l) => l.conversations[0]?.value)).toEqual(inOrder);
  expect((share.lines as ShareGpt[]).every((l) => l.conversations[0]?.from === 'human' && l.conversations[1]?.from === 'gpt')).toBe(true);

  const openai = await downloadFormat(page, 'OpenAI messages');
  expect(openai.fileName).toMatch(/openai\.jsonl$/);
  expect((openai.lines as OpenAi[]).map((l) => l.messages[0]?.content)).toEqual(inOrder);
  expect((openai.lines as OpenAi[]).every((l) => l.messages[1]?.role === 'assistant' && (l.messages[1]?.content ?? '') !== '')).toBe(true);

  const full = await downloadFormat(page, 'Full metadata');
  expect(full.fileName).toMatch(/magpie\.jsonl$/);
  const lines = full.lines as MagpieLine[];
  expect(lines.map((l) => l.instruction)).toEqual(inOrder);
  expect(lines.map((l) => l.magpie_web.seq)).toEqual([1, 2, 3, 4, 5]);
});

test('Stop mid-run, then Resume reaches the target with seq 1..N and no duplicates', async ({ page }) => {
  const target = 24;
  await page.goto('/');
  await loadScriptedModel(page);
  await fillSettings(page, { count: String(target), seed: '77' });
  await startButton(page).click();
  await expect.poll(() => accepted(page), { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
  await page.getByRole('button', { name: 'Pause' }).click();
  await expect(page.getByTestId('run-status')).toHaveText('paused');
  const atStop = await accepted(page);
  expect(atStop).toBeLessThan(target);
  await expect(recordItems(page)).toHaveCount(Math.min(atStop, 20));

  await page.getByRole('button', { name: 'Resume' }).click();
  await expect(page.getByTestId('accepted')).toHaveText(`${target} / ${target}`, { timeout: 45_000 });
  await expect(page.getByTestId('run-status')).toHaveText('done');

  const full = await downloadFormat(page, 'Full metadata');
  const lines = full.lines as MagpieLine[];
  expect(lines.map((l) => l.magpie_web.seq)).toEqual(Array.from({ length: target }, (_, i) => i + 1));
  expect(new Set(lines.map((l) => l.uuid)).size).toBe(target);

  // Paging: 20 shown, "Load more" brings older ones.
  await expect(recordItems(page)).toHaveCount(20);
  await page.getByRole('button', { name: /Load more/ }).click();
  await expect(recordItems(page)).toHaveCount(target);
  await expect(page.getByRole('button', { name: /Load more/ })).toHaveCount(0);
});

test('a run cut off by closing the tab shows as interrupted, and one click on Resume reloads the model and continues', async ({ page }) => {
  await page.goto('/');
  await loadScriptedModel(page);
  await fillSettings(page, { count: '500', seed: '5' });
  await startButton(page).click();
  await expect.poll(() => accepted(page), { timeout: 30_000 }).toBeGreaterThanOrEqual(1);
  await page.reload();
  await expect(page.getByTestId('run-status')).toHaveText('paused');
  await expect(page.getByTestId('pause-message')).toContainText('interrupted');
  const resume = page.getByRole('button', { name: 'Resume' });
  await expect(resume).toBeEnabled();
  const before = await accepted(page);
  await resume.click();
  await expect(page.getByTestId('loaded-model')).toBeVisible();
  await expect.poll(() => accepted(page), { timeout: 30_000 }).toBeGreaterThan(before);
  await page.getByRole('button', { name: 'Pause' }).click();
  await expect(page.getByTestId('run-status')).toHaveText('paused');

  // Delete asks first; accepting removes the run and its records.
  page.once('dialog', (d) => void d.accept());
  await page.getByRole('button', { name: /Delete run/ }).click();
  await expect(page.getByRole('button', { name: /Delete run/ })).toHaveCount(0);
  await expect(recordItems(page)).toHaveCount(0);
});

test('bad settings are reported at the field and keep Start disabled', async ({ page }) => {
  await page.goto('/');
  await loadScriptedModel(page);
  await expect(startButton(page)).toBeEnabled();

  const topP = page.getByRole('group', { name: /Instruction step/ }).getByLabel('top_p');
  await topP.fill('0');
  await expect(topP).toHaveAttribute('aria-invalid', 'true');
  const topPError = await topP.getAttribute('aria-describedby');
  expect(topPError).toBeTruthy();
  await expect(page.locator(`[id="${topPError ?? ''}"]`)).toHaveText(/top_p must be greater than 0/);
  await expect(startButton(page)).toBeDisabled();

  const count = page.getByLabel('Records to generate');
  await count.fill('abc');
  await expect(count).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByText('Count must be a whole number.')).toBeVisible();
  // The typed text is kept as typed, never clamped or rewritten.
  await expect(count).toHaveValue('abc');
  await expect(topP).toHaveValue('0');

  await topP.fill('0.9');
  await expect(startButton(page)).toBeDisabled();
  await count.fill('3');
  await expect(count).toHaveAttribute('aria-invalid', 'false');
  await expect(startButton(page)).toBeEnabled();
});
