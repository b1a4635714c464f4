import { readFile } from 'node:fs/promises';
import { expect, type Download, type Locator, type Page } from '@playwright/test';

export const SCRIPTED_PREFIX = 'scripted:';

export function modelSelect(page: Page): Locator {
  return page.getByLabel('Model to generate with');
}

/** The plain scripted Llama-3.2-1B model the e2e build lists (no fault options in its id). */
export async function scriptedModelId(page: Page): Promise<string> {
  const select = modelSelect(page);
  await expect(select.locator(`option[value^="${SCRIPTED_PREFIX}"]`).first()).toBeAttached();
  const values = await select.locator('option').evaluateAll((options) => options.map((o) => (o as HTMLOptionElement).value));
  const plain = values.filter((v) => v.startsWith('scripted:') && !v.includes('?'));
  const id = plain.find((v) => v.includes('Llama-3.2-1B')) ?? plain[0];
  if (!id) throw new Error(`No scripted model listed; options: ${values.join(', ')}`);
  return id;
}

/** Loads the scripted model; returns the load-progress texts the page showed on the way. */
export async function loadScriptedModel(page: Page): Promise<{ modelId: string; progressTexts: string[] }> {
  const modelId = await scriptedModelId(page);
  await modelSelect(page).selectOption(modelId);
  // The scripted load is fast: record every progress text the page renders instead of racing to see one.
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { __progressTexts: string[] }).__progressTexts = seen;
    new MutationObserver(() => {
      const bar = document.querySelector('progress[aria-label="Model loading progress"]');
      const text = bar?.parentElement?.querySelector('p')?.textContent;
      if (bar && text && seen.at(-1) !== text) seen.push(text);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await page.getByRole('button', { name: 'Load model' }).click();
  await expect(page.getByTestId('loaded-model')).toContainText(modelId);
  const progressTexts = await page.evaluate(() => (window as unknown as { __progressTexts: string[] }).__progressTexts);
  return { modelId, progressTexts };
}

export async function fillSettings(page: Page, values: { count?: string; seed?: string }): Promise<void> {
  if (values.count !== undefined) await page.getByLabel('Records to generate').fill(values.count);
  if (values.seed !== undefined) await page.getByLabel('Seed', { exact: true }).fill(values.seed);
}

export function startButton(page: Page): Locator {
  return page.getByRole('button', { name: 'Start', exact: true });
}

export function recordItems(page: Page): Locator {
  return page.locator('ol.records > li');
}

/** Instructions as listed (newest first). */
export async function shownInstructions(page: Page): Promise<string[]> {
  return page.locator('ol.records > li summary .instruction').allTextContents();
}

export async function accepted(page: Page): Promise<number> {
  const text = (await page.getByTestId('accepted').textContent()) ?? '';
  return Number(/^(\d+)/.exec(text.trim())?.[1] ?? NaN);
}

export async function downloadFormat(page: Page, label: string): Promise<{ fileName: string; lines: unknown[] }> {
  const [download]: [Download, void] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: label, exact: true }).click(),
  ]);
  const path = await download.path();
  const text = await readFile(path, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  const lines = text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);
  return { fileName: download.suggestedFilename(), lines };
}
