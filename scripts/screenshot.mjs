// Saves docs/screenshot.png: the e2e build after a short scripted run. Run `npm run build:e2e` first.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import { chromiumArgs, findChromium } from './chromium-path.mjs';

const PORT = 4175;
const out = process.argv[2] ?? 'docs/screenshot.png';
const colorScheme = process.env.COLOR_SCHEME === 'dark' ? 'dark' : 'light';

const server = spawn('npx', ['vite', 'preview', '--mode', 'e2e', '--port', String(PORT), '--strictPort'], {
  stdio: 'ignore',
  detached: true,
});
const stopServer = () => {
  try {
    process.kill(-server.pid);
  } catch {
    // already gone
  }
};

try {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://localhost:${PORT}/`)).ok) break;
    } catch {
      if (i > 100) throw new Error('vite preview did not start');
    }
    await sleep(200);
  }
  const browser = await chromium.launch({ executablePath: findChromium(), args: chromiumArgs(), headless: true });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, colorScheme });
  await page.goto(`http://localhost:${PORT}/`);
  const select = page.getByLabel('Model to generate with');
  await select.locator('option[value^="scripted:Llama-3.2-1B"]').waitFor({ state: 'attached' });
  await select.selectOption('scripted:Llama-3.2-1B-Instruct-q4f32_1-MLC');
  await page.getByRole('button', { name: 'Load model' }).click();
  await page.getByTestId('loaded-model').waitFor();
  await page.getByLabel('Records to generate').fill('6');
  await page.getByLabel('Seed', { exact: true }).fill('2024');
  await page.getByRole('button', { name: 'Start', exact: true }).click();
  await page.getByTestId('accepted').filter({ hasText: '6 / 6' }).waitFor({ timeout: 60_000 });
  await page.locator('ol.records > li summary').first().click();
  await page.screenshot({ path: out, fullPage: true });
  await browser.close();
  console.log(`saved ${out}`);
} finally {
  stopServer();
}
