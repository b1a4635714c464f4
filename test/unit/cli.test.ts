/**
 * The CLI as a user runs it: `node bin/magpie-web.mjs generate …` in a child process against the loopback test
 * server, plus the argument parser and the JSONL store in-process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseArgs, UsageError } from '../../src/cli/args';
import { JsonlRunStore, outputPaths, readState, recordFromMagpieLine, type CliRunState } from '../../src/cli/jsonl-store';
import { formatEta, progressBar, progressLine, ProgressReporter } from '../../src/cli/progress';
import { toMagpie, type MagpieLine } from '../../src/core/export';
import { listTemplates } from '../../src/core/templates/registry';
import { makeRecord, makeRun } from '../support/factories';
import { start, type TestServer } from '../support/openai-test-server';

const ROOT = resolve(__dirname, '../..');
const BIN = join(ROOT, 'bin/magpie-web.mjs');
const MODEL = 'test/llama-3-8b-instruct';
const API_KEY = 'sk-cli-test-secret';
const TEMPLATE_IDS = listTemplates().map((t) => t.id);

let server: TestServer;
let dir: string;

beforeAll(async () => {
  // A little latency per token, so a run lasts long enough to be killed midway.
  server = await start({ msPerToken: 2, apiKey: API_KEY });
  dir = await mkdtemp(join(tmpdir(), 'magpie-cli-'));
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function launch(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<Exit> } {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  if (!('MAGPIE_API_KEY' in env)) delete childEnv.MAGPIE_API_KEY;
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const done = new Promise<Exit>((resolveExit) =>
    child.on('close', (code, signal) => resolveExit({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

const cli = (args: string[], env?: Record<string, string>): Promise<Exit> => launch(args, env).done;

/** Sampling that keeps each record short (the test server's answers run ~200 tokens otherwise). */
const FAST = ['--response-max-tokens', '48', '--instruction-max-tokens', '64'];

function generateArgs(output: string, extra: string[] = []): string[] {
  return ['generate', '--endpoint', server.url, '--model', MODEL, '--api-key', API_KEY, '--output', output, ...FAST, ...extra];
}

async function jsonl<T>(path: string): Promise<T[]> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);
}

async function lineCount(path: string): Promise<number> {
  try {
    return (await readFile(path, 'utf8')).split('\n').length - 1;
  } catch {
    return 0;
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 15));
  }
}

function expectComplete(lines: MagpieLine[], n: number): void {
  expect(lines.map((l) => l.magpie_web.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  expect(new Set(lines.map((l) => l.uuid)).size).toBe(n);
  const attempts = lines.map((l) => l.magpie_web.attempt);
  expect(attempts.every((a) => typeof a === 'number')).toBe(true);
  expect(new Set(attempts).size).toBe(n);
  expect(lines.every((l) => l.instruction.trim() !== '' && l.response.trim() !== '')).toBe(true);
}

describe('magpie-web generate (child process)', () => {
  test('a full run writes the chosen format, the full-metadata file and a state file without the key', async () => {
    const output = join(dir, 'full.jsonl');
    const before = server.stats.completions;
    const result = await cli(generateArgs(output, ['--count', '6', '--seed', '11', '--concurrency', '3', '--format', 'openai']));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Done: 6/6 records');
    // Not a TTY: plain progress lines with the rates.
    expect(result.stdout).toMatch(/6\/6 records \(100%\) · [\d.]+ tok\/s · [\d.]+ records\/min · ETA/);

    const canonical = await jsonl<MagpieLine>(`${output}.magpie.jsonl`);
    expectComplete(canonical, 6);
    expect(canonical.every((l) => l.gen_response_configs.engine === 'openai-compatible' && l.model === MODEL)).toBe(true);
    // Attempt k's instruction seed is derived from the run seed, so seeds differ per record.
    expect(new Set(canonical.map((l) => l.gen_input_configs.seed)).size).toBe(6);

    const openai = await jsonl<{ messages: Array<{ role: string; content: string }> }>(output);
    expect(openai.map((l) => l.messages[0]?.content)).toEqual(canonical.map((l) => l.instruction));
    expect(openai.map((l) => l.messages[1]?.content)).toEqual(canonical.map((l) => l.response));

    const stateText = await readFile(`${output}.state.json`, 'utf8');
    expect(stateText).not.toContain(API_KEY);
    const state = JSON.parse(stateText) as CliRunState;
    expect(state.run.status).toBe('done');
    expect(state.run.engine).toBe('openai-compatible');
    expect(state.run.server?.baseUrls).toEqual([server.url]);
    expect(state.run.counters.accepted).toBe(6);

    expect(server.stats.violations).toEqual([]);
    // 1 probe + 2 requests per record.
    expect(server.stats.completions - before).toBe(1 + 12);
    expect(server.stats.maxConcurrent).toBeGreaterThanOrEqual(2);
  }, 30_000);

  test('bad arguments exit with status 2 and say what is wrong', async () => {
    const out = join(dir, 'never.jsonl');
    const cases: Array<[string[], RegExp]> = [
      [['generate', '--endpoint', server.url, '--model', MODEL, '--colour', 'red'], /Unknown option --colour/],
      [['generate', '--endpoint', server.url, '--model', MODEL, '--count', 'ten'], /--count "ten": Count must be a whole number/],
      [['generate', '--endpoint', server.url, '--model', MODEL, '--concurrency', '0'], /--concurrency must be between 1 and/],
      [['generate', '--model', MODEL, '--output', out], /Missing --endpoint/],
      [['generate', '--endpoint', server.url, '--output', out], /Missing --model/],
      [['generate', '--endpoint', server.url, '--model', MODEL, '--format', 'csv'], /Unknown --format "csv"/],
      [['generate', '--endpoint', server.url, '--model', MODEL, '--template', 'llama-9'], /Unknown --template "llama-9"/],
      [['frobnicate'], /Unknown command "frobnicate"/],
      [['generate', '--endpoint', server.url, '--model', 'mystery-model', '--output', out], /Cannot tell the chat template family/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(args)));
    results.forEach((r, i) => {
      expect(r.code, cases[i]?.[0].join(' ')).toBe(2);
      expect(r.stderr).toMatch(cases[i]?.[1] ?? /never/);
      expect(r.stderr).toContain('--help');
    });
    await expect(stat(out)).rejects.toThrow();
  }, 30_000);

  test('a wrong API key and an unreachable server fail with status 1 and advice', async () => {
    const [auth, down] = await Promise.all([
      cli(['generate', '--endpoint', server.url, '--model', MODEL, '--output', join(dir, 'auth.jsonl')], {
        MAGPIE_API_KEY: 'sk-wrong',
      }),
      cli(['generate', '--endpoint', 'http://127.0.0.1:9', '--model', MODEL, '--output', join(dir, 'down.jsonl')]),
    ]);
    expect(auth.code).toBe(1);
    expect(auth.stderr).toMatch(/HTTP 401/);
    expect(auth.stderr).not.toContain('sk-wrong');
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/Could not reach the server at http:\/\/127\.0\.0\.1:9/);
    await expect(stat(join(dir, 'auth.jsonl'))).rejects.toThrow();
  }, 30_000);

  test('--help prints the options and exits 0', async () => {
    const r = await cli(['generate', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--pre-query-template');
    expect(r.stdout).toContain('PATH.magpie.jsonl');
  }, 30_000);

  test('killed midway (SIGKILL), then --resume: exactly N records, same instructions as an uninterrupted run', async () => {
    const n = 16;
    const common = ['--count', String(n), '--seed', '4242', '--concurrency', '2'];
    const killed = join(dir, 'killed.jsonl');
    const reference = join(dir, 'reference.jsonl');

    const refRun = cli(generateArgs(reference, common));
    const { child, done } = launch(generateArgs(killed, common));
    await waitFor(async () => (await lineCount(killed)) >= 4, 20_000);
    child.kill('SIGKILL');
    const exit = await done;
    expect(exit.signal).toBe('SIGKILL');
    const before = await lineCount(killed);
    expect(before).toBeLessThan(n);
    // A write torn by the crash: half a line at the end of the file.
    await appendFile(killed, '{"uuid":"torn-by-a-crash","instruction":"Explain');

    const resumed = await cli(['generate', '--output', killed, '--resume', '--api-key', API_KEY]);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/Resuming run/);
    expect(resumed.stdout).toMatch(/torn line/);

    expect((await refRun).code).toBe(0);
    const lines = await jsonl<MagpieLine>(killed);
    expectComplete(lines, n);
    const ref = await jsonl<MagpieLine>(reference);
    expect(lines.map((l) => l.instruction)).toEqual(ref.map((l) => l.instruction));
    expect(lines.map((l) => l.magpie_web.attempt)).toEqual(ref.map((l) => l.magpie_web.attempt));
    expect((await readState(`${killed}.state.json`)).run.counters.accepted).toBe(n);
    expect(server.stats.violations).toEqual([]);
  }, 60_000);

  test('Ctrl-C (SIGINT) stops cleanly with status 130; the state counts exactly the records in the file', async () => {
    const output = join(dir, 'interrupted.jsonl');
    const args = generateArgs(output, ['--count', '40', '--seed', '7', '--concurrency', '2', '--format', 'sharegpt']);
    const { child, done } = launch(args);
    await waitFor(async () => (await lineCount(`${output}.magpie.jsonl`)) >= 2, 20_000);
    child.kill('SIGINT');
    const exit = await done;
    expect(exit.code).toBe(130);
    expect(exit.stdout).toMatch(/Stopping/);
    const state = await readState(`${output}.state.json`);
    // 'paused' since the durable-runs work; 'stopped' before it.
    expect(['paused', 'stopped']).toContain(state.run.status);
    const canonical = await jsonl<MagpieLine>(`${output}.magpie.jsonl`);
    expect(canonical.length).toBe(state.run.counters.accepted);
    expect(canonical.length).toBeLessThan(40);
    // The chosen format is written for the records so far, too.
    expect((await jsonl<unknown>(output)).length).toBe(canonical.length);

    // Resuming with a different setting is refused, naming the option.
    const mismatch = await cli(['generate', '--output', output, '--resume', '--seed', '8', '--api-key', API_KEY]);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toMatch(/--seed 8 differs from the run's 7/);
  }, 60_000);
});

describe('parseArgs', () => {
  test('reads repeatable endpoints, --opt=value forms, escapes and the env API key', () => {
    const parsed = parseArgs(
      [
        'generate',
        '--endpoint=http://a:8000',
        '--endpoint',
        'http://b:8000/v1',
        '--model',
        'm',
        '--count=3',
        '--instruction-temperature',
        '0.7',
        '--pre-query-template',
        '<|im_start|>user\\n',
      ],
      { MAGPIE_API_KEY: 'sk-env' },
      TEMPLATE_IDS,
    );
    if (parsed.command !== 'generate') throw new Error('expected generate');
    expect(parsed.options.endpoints).toEqual(['http://a:8000', 'http://b:8000/v1']);
    expect(parsed.options.apiKey).toBe('sk-env');
    expect(parsed.options.settings.count).toBe(3);
    expect(parsed.options.settings.instruction.temperature).toBe(0.7);
    expect(parsed.options.preQueryTemplate).toBe('<|im_start|>user\n');
    expect(parsed.options.seedRandom).toBe(true);
    expect(parsed.options.concurrency).toBe(8);
    expect(parsed.given.has('count')).toBe(true);
    expect(parsed.given.has('seed')).toBe(false);
  });

  test('refuses values it cannot use, naming the option', () => {
    const bad = (argv: string[]) => () => parseArgs(['generate', '--endpoint', 'http://a', '--model', 'm', ...argv], {}, TEMPLATE_IDS);
    expect(bad(['--seed', '-1'])).toThrow(/--seed "-1": Seed must be between 0/);
    expect(bad(['--response-top-p', '0'])).toThrow(/--response-top-p "0": top_p must be greater than 0/);
    expect(bad(['--count'])).toThrow(/--count needs a value/);
    expect(bad(['--model', 'n'])).toThrow(/--model was given more than once/);
    expect(bad(['--resume=yes'])).toThrow(/--resume takes no value/);
    expect(bad(['extra'])).toThrow(UsageError);
    // --resume may leave out the server and model: they come from the state file.
    expect(parseArgs(['generate', '--resume'], {}, TEMPLATE_IDS).command).toBe('generate');
  });
});

describe('JsonlRunStore', () => {
  function freshState(): CliRunState {
    return { version: 1, run: makeRun({ engine: 'openai-compatible' }), familyTemplateId: 'llama-3', format: 'magpie', rejections: 0 };
  }

  test('resume cuts a complete line the state never counted, and rebuilds records from their lines', async () => {
    const paths = outputPaths(join(dir, 'store.jsonl'), 'magpie');
    const state = freshState();
    const store = await JsonlRunStore.create(paths, state);
    const counters = (accepted: number) => ({ ...state.run.counters, accepted, attempts: accepted });
    const r1 = makeRecord(state.run, 1, { attempt: 1 });
    const r2 = makeRecord(state.run, 2, { attempt: 2 });
    await store.commitRecord(r1, counters(1));
    await store.commitRecord(r2, counters(2));
    await store.close();
    // A crash after the line was written but before the state counted it.
    await appendFile(paths.canonical, JSON.stringify(toMagpie(makeRecord(state.run, 3, { attempt: 3 }))) + '\n');

    const stored = await readState(paths.state);
    expect(stored.run.counters.accepted).toBe(2);
    const { store: again, report } = await JsonlRunStore.resume(paths, stored);
    expect(report).toEqual({ uncountedLines: 1, tornBytes: 0 });
    await again.close();
    const lines = await jsonl<MagpieLine>(paths.canonical);
    expect(lines.map((l) => l.uuid)).toEqual([r1.uuid, r2.uuid]);
    const rebuilt = recordFromMagpieLine(lines[1] as MagpieLine);
    expect(rebuilt).toEqual(r2);
  });

  test('resume refuses a file that belongs to another run', async () => {
    const paths = outputPaths(join(dir, 'other.jsonl'), 'magpie');
    const state = freshState();
    const store = await JsonlRunStore.create(paths, state);
    await store.commitRecord(makeRecord(makeRun(), 1), { ...state.run.counters, accepted: 1, attempts: 1 });
    await store.close();
    await expect(JsonlRunStore.resume(paths, await readState(paths.state))).rejects.toThrow(/belongs to another run/);
    await expect(JsonlRunStore.create(paths, freshState())).rejects.toThrow(/already exists/);
  });
});

describe('progress', () => {
  test('shows records, rates and ETA', () => {
    expect(formatEta(83)).toBe('1:23');
    expect(formatEta(3723)).toBe('1:02:03');
    expect(formatEta(undefined)).toBe('--:--');
    expect(
      progressLine({ accepted: 12, count: 50, rejected: 1, stats: { tokensPerSecond: 812.4, recordsPerMinute: 95.24, etaSeconds: 24 } }),
    ).toBe('12/50 records (24%) · 1 rejected · 812 tok/s · 95.2 records/min · ETA 0:24');
  });

  test('a TTY gets one redrawn bar line; anything else gets plain lines', () => {
    const snap = { accepted: 5, count: 20, rejected: 0, stats: { tokensPerSecond: 50, recordsPerMinute: 30, etaSeconds: 30 } };
    expect(progressBar(snap, 120)).toMatch(/^\[#{10}-{30}\] 5\/20 records \(25%\)/);
    const tty: string[] = [];
    const bar = new ProgressReporter({ isTTY: true, columns: 100, write: (t) => tty.push(t) }, () => snap);
    bar.render();
    bar.note('hello');
    bar.stop();
    expect(tty[0]?.startsWith('\r[')).toBe(true);
    expect(tty.join('')).toContain('hello\n');
    expect(tty.at(-1)).toBe('\n');
    const plain: string[] = [];
    const lines = new ProgressReporter({ isTTY: false, write: (t) => plain.push(t) }, () => snap);
    lines.render();
    lines.stop();
    expect(plain).toEqual([`${progressLine(snap)}\n`, `${progressLine(snap)}\n`]);
  });
});
