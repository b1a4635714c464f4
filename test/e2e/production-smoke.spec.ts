// The production bundle as a user opens it: built into a temp dir, served by `vite preview` on a free loopback
// port, opened in Chromium with WebGPU (SwiftShader). Every request is routed: anything not to loopback is aborted
// and recorded, and the test fails if the list is not empty. Nothing is loaded: no prebuilt model is ever fetched.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prebuiltAppConfig } from '@mlc-ai/web-llm';
import { expect, test } from '@playwright/test';
import { build, preview, type PreviewServer } from 'vite';
import { buildModelOptions, defaultModelId, PAPER_MODEL_NOTE } from '../../src/core/models';
import { modelSelect } from './helpers';

function isLoopbackHost(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  if (protocol === 'data:' || protocol === 'blob:') return true;
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

test('production bundle: real GPU report, real prebuilt models, paper note, settings, nothing leaves the machine', async ({
  browser,
}) => {
  test.setTimeout(60_000);
  const outDir = await mkdtemp(join(tmpdir(), 'magpie-prod-smoke-'));
  let server: PreviewServer | undefined;
  const context = await browser.newContext();
  try {
    await build({ mode: 'production', logLevel: 'error', build: { outDir, emptyOutDir: true, sourcemap: false } });
    server = await preview({
      mode: 'production',
      logLevel: 'error',
      build: { outDir },
      preview: { host: '127.0.0.1', port: 0, strictPort: false, open: false },
    });
    const origin = server.resolvedUrls?.local[0];
    if (!origin) throw new Error('vite preview reported no local URL');
    expect(isLoopbackHost(origin)).toBe(true);

    const routed: string[] = [];
    const blocked: string[] = [];
    await context.route('**/*', async (route) => {
      const url = route.request().url();
      routed.push(url);
      if (isLoopbackHost(url)) return route.continue();
      blocked.push(url);
      return route.abort('blockedbyclient');
    });
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));

    await page.goto(origin);

    await test.step('GPU panel: the software adapter, no shader-f16', async () => {
      await expect(page.getByTestId('webgpu-status')).toHaveText('available');
      await expect(page.getByTestId('gpu-adapter')).toContainText(/swiftshader/i);
      await expect(page.getByTestId('gpu-adapter')).toContainText('software adapter');
      await expect(page.getByTestId('shader-f16')).toHaveText('no');
      await expect(page.getByTestId('f32-note')).toBeVisible();
    });

    await test.step('model picker: the real prebuilt q4f32_1 models by family, Llama-3.2-3B by default', async () => {
      const select = modelSelect(page);
      await expect(select).toHaveValue('Llama-3.2-3B-Instruct-q4f32_1-MLC');
      const shown = await select.locator('optgroup').evaluateAll((groups) =>
        groups.map((g) => ({
          label: (g as HTMLOptGroupElement).label,
          ids: [...g.querySelectorAll('option')].map((o) => o.value),
        })),
      );
      // What the page should make of WebLLM's own list on a GPU without shader-f16 (the worker sends that list).
      const expected = buildModelOptions(prebuiltAppConfig.model_list, false);
      expect(defaultModelId(expected, false)).toBe('Llama-3.2-3B-Instruct-q4f32_1-MLC');
      const shownIds = shown.flatMap((g) => g.ids);
      expect(shownIds.length).toBeGreaterThan(20);
      expect([...shownIds].sort()).toEqual(expected.map((m) => m.id).sort());
      const real = new Set(prebuiltAppConfig.model_list.map((r) => r.model_id));
      expect(shownIds.filter((id) => !real.has(id))).toEqual([]);
      expect(shownIds.filter((id) => !id.includes('-q4f32_1-MLC'))).toEqual([]);
      // One group per family, each holding exactly that family's models.
      const labels = shown.map((g) => g.label);
      expect(new Set(labels).size).toBe(labels.length);
      expect(labels).toEqual(expect.arrayContaining(['Llama-3', 'Llama-3.1', 'Llama-3.2', 'Qwen2.5']));
      const familyOf = new Map(expected.map((m) => [m.id, m.family]));
      for (const g of shown) expect(g.ids.map((id) => familyOf.get(id)), g.label).toEqual(g.ids.map(() => g.label));
      // The test build's scripted engine exists nowhere in production.
      expect(shownIds.filter((id) => id.startsWith('scripted:'))).toEqual([]);
      expect(labels.filter((l) => /scripted|test engine/i.test(l))).toEqual([]);
      await expect(page.locator('body')).not.toContainText(/scripted/i);
    });

    await test.step('the paper note and the model details', async () => {
      await expect(page.getByText(PAPER_MODEL_NOTE)).toBeVisible();
      await expect(page.getByTestId('model-details')).toContainText('Llama 3.2 3B');
      await expect(page.getByTestId('quant-choice')).toContainText('q4f32_1');
      await expect(page.getByRole('button', { name: 'Load model' })).toBeEnabled();
    });

    await test.step('settings form: a bad value is reported at its field, a good one clears it', async () => {
      const count = page.getByLabel('Records to generate');
      await count.fill('0');
      await expect(count).toHaveAttribute('aria-invalid', 'true');
      const errorId = (await count.getAttribute('aria-describedby'))?.split(' ').find((id) => id.endsWith('-error'));
      expect(errorId).toBeDefined();
      await expect(page.locator(`[id="${errorId}"]`)).toHaveText(/Count must be between 1 and \d+\./);
      await count.fill('5');
      await expect(count).toHaveAttribute('aria-invalid', 'false');
      await expect(page.locator(`[id="${errorId}"]`)).toHaveCount(0);
      // Nothing is loaded, so a run cannot start.
      await expect(page.getByRole('button', { name: 'Start', exact: true })).toBeDisabled();
    });

    await test.step('route interception covers dedicated workers (control), and nothing left the machine', async () => {
      const probe = `${origin}?worker-route-probe`;
      const status = await page.evaluate(async (url) => {
        const source = `fetch(${JSON.stringify(url)}).then((r) => postMessage(r.status), (e) => postMessage(String(e)));`;
        const worker = new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })));
        const answer = await new Promise((resolve) => (worker.onmessage = (e) => resolve(e.data)));
        worker.terminate();
        return answer;
      }, probe);
      expect(status).toBe(200);
      expect(routed).toContain(probe);
      // The real engine worker of the production build was started and answered (GPU report, model list).
      expect(routed.some((u) => /\/assets\/engine\.worker-[\w-]+\.js$/.test(u))).toBe(true);
      expect(blocked).toEqual([]);
      expect(consoleErrors).toEqual([]);
    });
  } finally {
    await context.close();
    await server?.close();
    await rm(outDir, { recursive: true, force: true });
  }
});
