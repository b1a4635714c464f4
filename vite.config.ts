import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { chromiumArgs, findChromium } from './scripts/chromium-path.mjs';

export default defineConfig(({ mode }) => {
  const testBuild = mode === 'e2e' || mode === 'test';
  return {
    base: './',
    define: {
      // The scripted engine exists only in test builds; in production this is `false` and its import is dropped.
      __MAGPIE_TEST_BUILD__: JSON.stringify(testBuild),
    },
    build: {
      outDir: mode === 'e2e' ? 'dist-e2e' : 'dist',
      target: 'es2022',
      sourcemap: true,
      chunkSizeWarningLimit: 8000,
    },
    worker: { format: 'es' },
    server: { port: 5173 },
    preview: { port: 4173 },
    test: {
      projects: [
        {
          extends: true,
          test: {
            name: 'unit',
            include: ['test/unit/**/*.test.ts'],
            environment: 'node',
          },
        },
        {
          extends: true,
          test: {
            name: 'browser',
            include: ['test/browser/**/*.test.ts'],
            testTimeout: 30_000,
            browser: {
              enabled: true,
              headless: true,
              screenshotFailures: false,
              provider: playwright({
                launchOptions: { executablePath: findChromium(), args: chromiumArgs() },
              }),
              instances: [{ browser: 'chromium' }],
            },
          },
        },
      ],
    },
  };
});
