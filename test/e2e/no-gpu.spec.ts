import { expect, test } from '@playwright/test';
import { chromiumArgs, findChromium } from '../../scripts/chromium-path.mjs';
import { modelSelect } from './helpers';

// Chromium without --enable-unsafe-webgpu has navigator.gpu but requestAdapter() returns null on this machine.
test.use({ launchOptions: { executablePath: findChromium(), args: chromiumArgs().filter((a) => a !== '--enable-unsafe-webgpu') } });

test('the GPU problem is explained, loading a real model is disabled, and the server engine is suggested', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByTestId('webgpu-status')).toHaveText('available, but no GPU adapter');
  await expect(page.getByRole('alert').filter({ hasText: 'No compatible GPU was found' })).toBeVisible();
  const real = (await modelSelect(page).locator('option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value))).find(
    (v) => !v.startsWith('scripted:'),
  );
  expect(real).toBeTruthy();
  await modelSelect(page).selectOption(real!);
  await expect(page.getByRole('button', { name: 'Load model' })).toBeDisabled();
  await expect(page.getByTestId('load-needs-gpu')).toContainText('OpenAI-compatible server');
});
