/**
 * Durability under faults (issue #4), against the e2e build with the deterministic scripted engine: reloads at
 * random points (also while a record's IndexedDB transaction is held open), a terminated worker, a lost GPU device
 * (once, and repeatedly), a full disk, two tabs on one run, and a database from a newer version.
 */
import { expect, test, type Page } from '@playwright/test';
import { accepted, fillSettings, loadScriptedModel, modelSelect, startButton } from './helpers';
import { seededRandom } from '../../src/core/seed';

const PLAIN_1B = 'scripted:Llama-3.2-1B-Instruct-q4f32_1-MLC';

interface StoredRecord {
  uuid: string;
  seq: number;
  attempt?: number;
  modelId: string;
  instruction: string;
  response: string;
  instructionStep?: { prompt: string };
  responseStep?: { prompt: string };
}
interface StoredRun {
  id: string;
  status: string;
  settings: { count: number; seed: number | null };
  counters: { accepted: number; attempts: number };
  pause?: { reason: string; message: string };
}

/** Reads every run and its records straight from IndexedDB (records in seq order). */
async function readDb(page: Page): Promise<Array<{ run: StoredRun; records: StoredRecord[] }>> {
  return page.evaluate(async () => {
    const req = indexedDB.open('magpie-web');
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error('open failed'));
    });
    const all = <T,>(r: IDBRequest<T[]>) =>
      new Promise<T[]>((resolve, reject) => {
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error ?? new Error('read failed'));
      });
    const tx = db.transaction(['runs', 'records'], 'readonly');
    const runs = await all(tx.objectStore('runs').getAll() as IDBRequest<StoredRun[]>);
    const records = await all(tx.objectStore('records').getAll() as IDBRequest<Array<StoredRecord & { runId: string }>>);
    db.close();
    return runs.map((run) => ({ run, records: records.filter((r) => r.runId === run.id).sort((a, b) => a.seq - b.seq) }));
  });
}

/** How often each limited scripted fault fired (the worker counts them in IndexedDB). */
async function spentFaults(page: Page): Promise<Record<string, number>> {
  return page.evaluate(async () => {
    const req = indexedDB.open('magpie-scripted-faults');
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error('open failed'));
    });
    if (!db.objectStoreNames.contains('spent')) return {};
    const tx = db.transaction('spent', 'readonly');
    const keys = await new Promise<IDBValidKey[]>((resolve) => {
      const r = tx.objectStore('spent').getAllKeys();
      r.onsuccess = () => resolve(r.result);
    });
    const values = await new Promise<number[]>((resolve) => {
      const r = tx.objectStore('spent').getAll();
      r.onsuccess = () => resolve(r.result as number[]);
    });
    db.close();
    return Object.fromEntries(keys.map((k, i) => [String(k), values[i] ?? 0]));
  });
}

/** The checks every durable run must pass: exactly N records, seq 1..N, no duplicate, every record complete. */
function expectComplete(run: StoredRun, records: StoredRecord[]): void {
  const n = run.settings.count;
  expect(run.status).toBe('done');
  expect(run.counters.accepted).toBe(n);
  expect(records.map((r) => r.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  expect(new Set(records.map((r) => r.uuid)).size).toBe(n);
  // Attempts are committed in order and each at most once.
  const attempts = records.map((r) => r.attempt ?? 0);
  expect(attempts.every((a, i) => i === 0 || a > (attempts[i - 1] ?? 0))).toBe(true);
  for (const r of records) {
    expect(r.instruction.trim().length).toBeGreaterThan(0);
    expect(r.response.trim().length).toBeGreaterThan(0);
    expect(r.instructionStep?.prompt.length ?? 0).toBeGreaterThan(0);
    expect(r.responseStep?.prompt.length ?? 0).toBeGreaterThan(0);
  }
}

async function onlyRun(page: Page, seed: number): Promise<{ run: StoredRun; records: StoredRecord[] }> {
  const found = (await readDb(page)).filter((r) => r.run.settings.seed === seed);
  expect(found).toHaveLength(1);
  const first = found[0];
  if (!first) throw new Error('no run');
  return first;
}


async function startPlainRun(page: Page, count: number, seed: number, modelId?: string): Promise<void> {
  if (modelId) {
    await modelSelect(page).selectOption(modelId);
    const loaded = page.getByTestId('loaded-model');
    // Decide from what is loaded, not from the button, which may not have re-rendered after the selection yet.
    const current = (await loaded.count()) > 0 ? await loaded.textContent() : null;
    if (current !== `Loaded: ${modelId}`) await page.getByRole('button', { name: 'Load model' }).click();
    await expect(page.getByTestId('loaded-model')).toHaveText(`Loaded: ${modelId}`);
  } else {
    await loadScriptedModel(page);
  }
  await fillSettings(page, { count: String(count), seed: String(seed) });
  const runsBefore = await page.getByRole('button', { name: /^Delete run/ }).count();
  await startButton(page).click();
  // Until the new run is listed, the panel may still show the previous (finished) run.
  await expect(page.getByRole('button', { name: /^Delete run/ })).toHaveCount(runsBefore + 1);
}

/** Waits until the run shown has all its records and its final status is stored. */
async function waitDone(page: Page, count: number): Promise<void> {
  await expect(page.getByTestId('accepted')).toHaveText(`${count} / ${count}`, { timeout: 40_000 });
  await expect(page.getByTestId('run-status')).toHaveText('done');
}

const resumeButton = (page: Page) => page.getByRole('button', { name: 'Resume', exact: true });
const pauseButton = (page: Page) => page.getByRole('button', { name: 'Pause', exact: true });

test('survives 22 reloads at random points, some during a record commit: N records, seq 1..N, same as an uninterrupted run', async ({
  page,
  browser,
}) => {
  test.setTimeout(150_000);
  const target = 24;
  const seed = 4242;
  // A seeded schedule, so the reloads fall at the same points on every CI run.
  const random = seededRandom(20240611);
  // Every record's transaction stays open 150 ms, so a reload can land inside a commit.
  // The uninterrupted run with the same seed, in a fresh profile, runs alongside.
  const context = await browser.newContext();
  const clean = await context.newPage();
  await clean.goto('/');
  await startPlainRun(clean, target, seed);

  await page.goto('/?commitDelayMs=150');
  await startPlainRun(page, target, seed);

  let reloads = 0;
  let duringCommit = 0;
  let autoTakeovers = 0;
  while (reloads < 22) {
    const mode = reloads % 3;
    if (mode === 0) {
      // Inside a commit: wait until a record's transaction is held open, then reload.
      await page.waitForFunction(() => window.__magpieTest?.holding === true, undefined, { timeout: 20_000, polling: 5 });
    } else if (mode === 1) {
      // Right after a record appears.
      const before = await accepted(page);
      await expect.poll(() => accepted(page), { timeout: 20_000, intervals: [20] }).toBeGreaterThan(before);
    } else {
      await page.waitForTimeout(Math.floor(random() * 700));
    }
    if (await page.evaluate(() => window.__magpieTest?.holding === true)) duringCommit += 1;
    await page.reload();
    reloads += 1;
    const status = page.getByTestId('run-status');
    await expect(status).toHaveText(/^(paused|running|loading model|done)$/);
    if ((await status.textContent()) === 'done') break;
    // One click resumes (the banner's Resume); a tab that saw the old page's lock still held takes over itself.
    await expect(resumeButton(page).or(pauseButton(page))).toBeVisible();
    if (await resumeButton(page).isVisible()) {
      await expect(page.getByTestId('pause-message')).toContainText('interrupted');
      await resumeButton(page).click();
    } else {
      autoTakeovers += 1;
    }
    await expect(pauseButton(page)).toBeVisible();
  }
  expect(reloads).toBeGreaterThanOrEqual(20);
  await waitDone(page, target);
  const interrupted = await onlyRun(page, seed);
  expectComplete(interrupted.run, interrupted.records);

  await waitDone(clean, target);
  const reference = await onlyRun(clean, seed);
  await context.close();
  expect(interrupted.records.map((r) => r.instruction)).toEqual(reference.records.map((r) => r.instruction));
  expect(interrupted.records.map((r) => r.response)).toEqual(reference.records.map((r) => r.response));
  expect(interrupted.records.map((r) => r.attempt)).toEqual(reference.records.map((r) => r.attempt));
  console.log(
    `[durability] reloads survived: ${reloads} (${duringCommit} during a held commit, ${autoTakeovers} automatic takeovers); ` +
      `records: ${interrupted.records.length}/${target}, lost: 0, duplicates: 0`,
  );
  expect(duringCommit).toBeGreaterThanOrEqual(5);
});

test('a terminated worker and a crashing worker are restarted and the run finishes with the records of an uninterrupted run', async ({
  page,
}) => {
  const crashing = `${PLAIN_1B}?crashAfterTokens=4&faultFromInstruction=4&crashTimes=1`;
  await page.goto(`/?testModel=${encodeURIComponent(crashing)}`);
  const seed = 99;
  await startPlainRun(page, 8, seed);
  await expect.poll(() => accepted(page), { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
  await expect(page.getByTestId('live')).toContainText(/Writing (instruction|response)/);
  await page.evaluate(() => window.__magpieTest?.terminateWorker());
  await waitDone(page, 8);
  const terminated = await onlyRun(page, seed);
  expectComplete(terminated.run, terminated.records);

  // The worker throws an uncaught error once, at the 4th instruction after a load: the client starts a new worker.
  const crashSeed = 100;
  await startPlainRun(page, 6, crashSeed, crashing);
  await waitDone(page, 6);
  expect(await spentFaults(page)).toMatchObject({ [`crash:${crashing}`]: 1 });
  const crashed = await onlyRun(page, crashSeed);
  expectComplete(crashed.run, crashed.records);
  // Nothing may depend on the faults: an uninterrupted run with the same seed writes the same records.
  await startPlainRun(page, 8, seed, PLAIN_1B);
  await waitDone(page, 8);
  const runs = (await readDb(page)).filter((r) => r.run.settings.seed === seed);
  expect(runs).toHaveLength(2);
  const [a, b] = runs;
  expect(a?.records.map((r) => r.instruction)).toEqual(b?.records.map((r) => r.instruction));
  expect(a?.records.map((r) => r.response)).toEqual(b?.records.map((r) => r.response));
});

test('device lost once: the model is reloaded and the run finishes; lost repeatedly: paused with a smaller-model offer', async ({
  page,
}) => {
  const once = `${PLAIN_1B}?failAfterTokens=3&failName=DeviceLostError&faultFromInstruction=3&failTimes=1`;
  const always = 'scripted:Llama-3.1-8B-Instruct-q4f32_1-MLC?failAfterTokens=3&failName=DeviceLostError&faultFromInstruction=2';
  await page.goto(`/?testModel=${encodeURIComponent(once)}&testModel=${encodeURIComponent(always)}`);
  await startPlainRun(page, 6, 7, once);
  await waitDone(page, 6);
  expect(await spentFaults(page)).toMatchObject({ [`fail:${once}`]: 1 });
  const recovered = await onlyRun(page, 7);
  expectComplete(recovered.run, recovered.records);

  // Every load writes one record, then loses the device at the next instruction: the 3rd loss pauses the run.
  await startPlainRun(page, 5, 8, always);
  await expect(page.getByTestId('run-status')).toHaveText('paused', { timeout: 30_000 });
  const message = page.getByTestId('pause-message');
  await expect(message).toContainText('kept failing');
  await expect(message).toContainText('3 times');
  const paused = await onlyRun(page, 8);
  expect(paused.run.pause?.reason).toBe('engine-lost');
  expect(paused.records.map((r) => r.seq)).toEqual([1, 2, 3]);
  const offer = message.getByRole('button', { name: /Continue with Llama 3\.2 1B/ });
  await expect(offer).toBeVisible();
  await offer.click();
  await waitDone(page, 5);
  const finished = await onlyRun(page, 8);
  expectComplete(finished.run, finished.records);
  expect(finished.records.map((r) => r.modelId)).toEqual([always, always, always, PLAIN_1B, PLAIN_1B]);
});

test('a full disk pauses the run with a message and no partial record; deleting a run frees space and Resume completes it', async ({
  page,
}) => {
  await page.goto('/');
  await startPlainRun(page, 1, 1);
  await waitDone(page, 1);
  await expect(page.getByTestId('storage')).toBeVisible();
  await expect(page.getByTestId('storage-available')).not.toHaveText('not reported');

  await fillSettings(page, { count: '8', seed: '2' });
  await startButton(page).click();
  await expect(page.getByRole('button', { name: /^Delete run/ })).toHaveCount(2);
  await expect.poll(() => accepted(page), { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
  await page.evaluate(() => window.__magpieTest?.setQuotaFull(true));
  await expect(page.getByTestId('run-status')).toHaveText('paused', { timeout: 20_000 });
  await expect(page.getByTestId('pause-message')).toContainText('storage is full');
  const paused = await onlyRun(page, 2);
  expect(paused.run.pause?.reason).toBe('storage-full');
  // The failed commit left nothing behind: the stored counters and the stored records agree.
  expect(paused.records.map((r) => r.seq)).toEqual(Array.from({ length: paused.run.counters.accepted }, (_, i) => i + 1));
  expect(paused.run.counters.accepted).toBeLessThan(8);

  // Free space: delete the other run (the simulated full disk ends there), then resume.
  const other = (await readDb(page)).find((r) => r.run.settings.seed === 1);
  page.once('dialog', (d) => void d.accept());
  await page.getByRole('button', { name: /Delete run/ }).last().click();
  await expect.poll(async () => (await readDb(page)).some((r) => r.run.id === other?.run.id)).toBe(false);
  expect(await page.evaluate(() => window.__magpieTest?.quotaFull)).toBe(false);
  await resumeButton(page).click();
  await waitDone(page, 8);
  const done = await onlyRun(page, 2);
  expectComplete(done.run, done.records);

  // Cached models can be deleted from the storage panel.
  const del = page.getByRole('button', { name: /Delete cached model/ });
  await expect(del).toHaveCount(1);
  await del.click();
  await expect(del).toHaveCount(0);
});

test('two tabs on one run: exactly one generates, the other shows live progress and takes over when the first closes', async ({
  context,
}) => {
  const slow = `${PLAIN_1B}?delayMs=4`;
  const url = `/?testModel=${encodeURIComponent(slow)}`;
  const runner = await context.newPage();
  await runner.goto(url);
  await startPlainRun(runner, 24, 31, slow);
  await expect.poll(() => accepted(runner), { timeout: 20_000 }).toBeGreaterThanOrEqual(1);

  const watcher = await context.newPage();
  await watcher.goto(url);
  await expect(watcher.getByTestId('run-status')).toHaveText('running in another tab');
  await expect(watcher.getByTestId('run-elsewhere')).toBeVisible();
  // Not generating here: no live text, no Pause, no Resume; the counter follows the runner's commits.
  await expect(watcher.getByTestId('live')).toHaveCount(0);
  await expect(pauseButton(watcher)).toHaveCount(0);
  await expect(resumeButton(watcher)).toHaveCount(0);
  const seen = await accepted(watcher);
  await expect.poll(() => accepted(watcher), { timeout: 20_000 }).toBeGreaterThan(seen + 1);
  expect(await accepted(runner)).toBeLessThan(24);

  await runner.close();
  // The lock frees; the watcher takes over on its own, loads the model and finishes.
  await expect(watcher.getByTestId('live')).toBeVisible({ timeout: 20_000 });
  await waitDone(watcher, 24);
  const run = await onlyRun(watcher, 31);
  expectComplete(run.run, run.records);
});

test('a database written by a newer version is reported with what to do, and never wiped', async ({ page }) => {
  await page.goto('/');
  await startPlainRun(page, 1, 5);
  await waitDone(page, 1);
  // A "newer app" upgrades the database; this page must let go of its connection and say so.
  await page.evaluate(
    () =>
      new Promise<void>((resolve, reject) => {
        const req = indexedDB.open('magpie-web', 99);
        req.onupgradeneeded = () => req.result.createObjectStore('from-the-future');
        req.onsuccess = () => {
          req.result.close();
          resolve();
        };
        req.onerror = () => reject(req.error ?? new Error('open failed'));
      }),
  );
  await expect(page.getByText('Reload this page to continue')).toBeVisible();
  await page.reload();
  await expect(page.getByRole('heading', { name: 'magpie-web cannot start' })).toBeVisible();
  await expect(page.getByText(/written by a newer version/).first()).toBeVisible();
  const kept = await readDb(page);
  expect(kept).toHaveLength(1);
  expect(kept[0]?.records).toHaveLength(1);
});
