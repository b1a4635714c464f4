// The scripted test engine must never ship: build the production bundle into a temp dir and search its code.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { build } from 'vite';

// The class name may be minified away, so also look for the chunk name and the engine's own scripted text.
const MARKERS = ['ScriptedMLCEngine', 'scripted-mlc-engine', 'scripted continuation of the text', 'sourdough starter'];

async function codeFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  // Only shipped code: source maps quote the worker's source, which names the engine inside its test-only branch.
  return entries
    .filter((e) => e.isFile() && /\.(js|mjs|html)$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

async function markersIn(dir: string): Promise<string[]> {
  const found = new Set<string>();
  for (const file of await codeFiles(dir)) {
    const text = await readFile(file, 'utf8');
    for (const m of MARKERS) if (text.includes(m)) found.add(m);
  }
  return [...found];
}

test('the production bundle has no scripted engine; the e2e bundle does', async () => {
  test.setTimeout(120_000);
  const outDir = await mkdtemp(join(tmpdir(), 'magpie-prod-'));
  try {
    await build({ mode: 'production', logLevel: 'error', build: { outDir, emptyOutDir: true, sourcemap: false } });
    expect((await codeFiles(outDir)).length).toBeGreaterThan(1);
    expect(await markersIn(outDir)).toEqual([]);
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
  // Control: the same search finds the engine where it belongs, so an empty result above means something.
  const inE2e = await markersIn('dist-e2e');
  expect(inE2e).toContain('scripted-mlc-engine');
  expect(inE2e).toContain('scripted continuation of the text');
});
