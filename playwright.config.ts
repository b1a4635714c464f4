import { defineConfig } from '@playwright/test';
import { chromiumArgs, findChromium } from './scripts/chromium-path.mjs';

const PORT = 4174;
const executablePath = findChromium();
if (!executablePath) throw new Error('No system Chromium found: run `node scripts/ensure-chromium.mjs` or set CHROMIUM_PATH.');

export default defineConfig({
  testDir: 'test/e2e',
  // Only *.spec.ts: Vitest owns test/unit and test/browser (*.test.ts).
  testMatch: '**/*.spec.ts',
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: true,
  workers: 2,
  retries: 0,
  reporter: process.env.CI ? 'line' : 'list',
  outputDir: 'test-results',
  use: {
    baseURL: `http://localhost:${PORT}`,
    browserName: 'chromium',
    headless: true,
    acceptDownloads: true,
    launchOptions: { executablePath, args: chromiumArgs() },
    trace: 'retain-on-failure',
  },
  webServer: {
    // Serves the already-built e2e bundle (dist-e2e/); `npm run test:e2e` builds it first.
    command: `npx vite preview --mode e2e --port ${PORT} --strictPort`,
    url: `http://localhost:${PORT}`,
    reuseExistingServer: !process.env.CI,
    timeout: 60_000,
  },
});
