// The "OpenAI-compatible server" engine end to end: a user points the page at a (loopback, vLLM-like) server,
// agrees to send prompts there, runs 50 records with 8 requests in flight through injected faults, reloads midway,
// reconnects, resumes, and downloads exactly 50 records.
import { expect, test, type Page } from '@playwright/test';
import { start, type TestServer } from '../support/openai-test-server';
import { accepted, downloadFormat, fillSettings, startButton } from './helpers';

const PAGE_ORIGIN = 'http://localhost:4174';
const MODEL = 'test/llama-3-8b-instruct';
const API_KEY = 'sk-e2e-secret';
const TARGET = 50;

interface MagpieLine {
  uuid: string;
  model: string;
  instruction: string;
  response: string;
  gen_input_configs: { seed: number | null };
  gen_response_configs: { engine: string };
  magpie_web: { seq: number; attempt?: number; run_id: string };
}

let server: TestServer;

test.beforeAll(async () => {
  // Per-token latency keeps requests overlapping (so concurrency shows) and the run long enough to reload midway.
  server = await start({ allowedOrigin: PAGE_ORIGIN, apiKey: API_KEY, msPerToken: 6, capacity: 16 });
});
test.afterAll(async () => {
  await server.close();
});

/** Two addresses of the same server are two origins, so the browser's 6-connections-per-origin cap is not the limit. */
function baseUrls(): string {
  return `http://127.0.0.1:${server.port}\nhttp://localhost:${server.port}/v1`;
}

async function chooseServerEngine(page: Page): Promise<void> {
  await page.getByRole('radio', { name: 'OpenAI-compatible server' }).check();
  await expect(page.getByLabel('Server base URL(s)')).toBeVisible();
  // The in-browser model picker is not offered for a server.
  await expect(page.getByLabel('Model to generate with')).toHaveCount(0);
}

test('a server run: consent, 50 records at concurrency 8 through faults, reload, resume, download', async ({ page }) => {
  test.setTimeout(120_000);
  await page.goto('/');
  await chooseServerEngine(page);
  await page.getByLabel('Server base URL(s)').fill(baseUrls());
  await page.getByLabel('API key (optional)').fill(API_KEY);
  await expect(page.getByLabel('Remember on this device')).not.toBeChecked();
  await expect(page.getByLabel('Concurrency (requests in flight)')).toHaveValue('8');

  const requestsBefore = server.stats.requests;
  await page.getByRole('button', { name: 'Connect' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toBeVisible();
  await expect(dialog).toContainText(`http://127.0.0.1:${server.port}`);
  await expect(dialog).toContainText(`http://localhost:${server.port}`);
  // Nothing leaves the page before the user agrees.
  expect(server.stats.requests).toBe(requestsBefore);
  await dialog.getByRole('button', { name: 'Send to these servers' }).click();
  await expect(dialog).toHaveCount(0);

  await expect(page.getByTestId('server-status')).toContainText(`Connected: ${MODEL}`);
  await expect(page.getByTestId('server-status')).toContainText('2 servers');
  await page.getByLabel('Server model').selectOption(MODEL);
  await expect(page.getByLabel('Chat template family')).toContainText('Detected: Llama 3');
  // The key went to the server as a bearer token.
  expect(server.stats.headers.some((h) => h.authorization === `Bearer ${API_KEY}`)).toBe(true);

  await fillSettings(page, { count: String(TARGET), seed: '2024' });
  await page.getByRole('group', { name: /Instruction step/ }).getByLabel('Max tokens').fill('64');
  await page.getByRole('group', { name: /Response step/ }).getByLabel('Max tokens').fill('40');

  // The first requests of the run fail in every way a real server can.
  server.plan(
    { kind: 'status', status: 500, message: 'injected 500' },
    { kind: 'rate-limit', retryAfter: '1' },
    { kind: 'reset', afterChunks: 3 },
    { kind: 'malformed', afterChunks: 2 },
    { kind: 'status', status: 503 },
  );
  await startButton(page).click();
  await expect.poll(() => accepted(page), { timeout: 60_000 }).toBeGreaterThanOrEqual(12);
  expect(server.pendingFaults()).toBe(0);

  // Reload midway: requests in flight are dropped; the stored records and counters stay.
  await page.reload();
  const atReload = await accepted(page);
  expect(atReload).toBeGreaterThanOrEqual(12);
  expect(atReload).toBeLessThan(TARGET);
  const resume = page.getByRole('button', { name: 'Resume' });
  await expect(resume).toBeDisabled();
  await expect(page.getByText(`Connect to a server that serves ${MODEL} to resume this run.`)).toBeVisible();

  // The engine choice and addresses are remembered; the key is not (it was held in memory only).
  await expect(page.getByRole('radio', { name: 'OpenAI-compatible server' })).toBeChecked();
  await expect(page.getByLabel('Server base URL(s)')).toHaveValue(baseUrls());
  await expect(page.getByLabel('API key (optional)')).toHaveValue('');
  expect(await page.evaluate(() => JSON.stringify(localStorage))).not.toContain(API_KEY);

  await page.getByLabel('API key (optional)').fill(API_KEY);
  await page.getByRole('button', { name: 'Connect' }).click();
  // Consent is remembered per origin for this browser session: no second dialog.
  await expect(page.getByTestId('server-status')).toContainText(`Connected: ${MODEL}`);
  await expect(page.getByRole('dialog')).toHaveCount(0);

  server.plan({ kind: 'reset', afterChunks: 1 }, { kind: 'status', status: 502 }, { kind: 'malformed', afterChunks: 0 });
  await expect(resume).toBeEnabled();
  await resume.click();
  await expect(page.getByTestId('accepted')).toHaveText(`${TARGET} / ${TARGET}`, { timeout: 90_000 });
  await expect(page.getByTestId('run-status')).toHaveText('done');
  expect(server.pendingFaults()).toBe(0);

  const full = await downloadFormat(page, 'Full metadata');
  const lines = full.lines as MagpieLine[];
  expect(lines).toHaveLength(TARGET);
  expect(lines.map((l) => l.magpie_web.seq)).toEqual(Array.from({ length: TARGET }, (_, i) => i + 1));
  expect(new Set(lines.map((l) => l.uuid)).size).toBe(TARGET);
  const attempts = lines.map((l) => l.magpie_web.attempt);
  expect(attempts.every((a) => typeof a === 'number')).toBe(true);
  expect(new Set(attempts).size).toBe(TARGET);
  expect(new Set(lines.map((l) => l.gen_input_configs.seed)).size).toBe(TARGET);
  expect(new Set(lines.map((l) => l.magpie_web.run_id)).size).toBe(1);
  expect(lines.every((l) => l.instruction.trim() !== '' && l.response.trim() !== '')).toBe(true);
  expect(lines.every((l) => l.model === MODEL && l.gen_response_configs.engine === 'openai-compatible')).toBe(true);
  // The answers are to the instructions asked (the test server quotes the instruction it was given).
  expect(lines.every((l) => l.response.startsWith(`You asked: "${l.instruction}"`))).toBe(true);

  expect(server.stats.violations).toEqual([]);
  // More than the 6 connections a browser opens to one origin were in flight at once.
  expect(server.stats.maxConcurrent).toBeGreaterThan(6);
  expect(server.stats.maxConcurrent).toBeLessThanOrEqual(8);
  // The reload and the injected resets cut streams the server saw end early.
  expect(server.stats.disconnected).toBeGreaterThan(0);
});

test('declining the consent dialog sends nothing', async ({ page }) => {
  await page.goto('/');
  await chooseServerEngine(page);
  await page.getByLabel('Server base URL(s)').fill(`http://127.0.0.1:${server.port}`);
  const requestsBefore = server.stats.requests;
  await page.getByRole('button', { name: 'Connect' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByText('Not connected: nothing was sent to the server.')).toBeVisible();
  await expect(startButton(page)).toBeDisabled();
  expect(server.stats.requests).toBe(requestsBefore);
});
