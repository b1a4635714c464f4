/**
 * `magpie-web generate`: the Magpie pipeline of the page (src/core) driven headless against OpenAI-compatible
 * servers, with a durable JSONL output that `--resume` continues. Runs under Node 20 (bin/magpie-web.mjs loads it
 * through tsx).
 */
import { customPreQueryTemplate, PreQueryTemplateError } from '../core/conv-template';
import { probeAddsBos, type TextEngine } from '../core/engine';
import { classifyEngineError, type ClassifiedError } from '../core/errors';
import { emptyCounters, type RunCounters, type RunSettings } from '../core/record';
import { runMagpie } from '../core/runner';
import { randomSeed } from '../core/settings';
import { RateMeter } from '../core/stats';
import { getTemplate, listTemplates, templateIdForModel } from '../core/templates/registry';
import type { FamilyTemplate } from '../core/templates/types';
import { EnginePool } from '../engine/engine-pool';
import { OpenAICompatibleEngine } from '../engine/openai-engine';
import { helpText, parseArgs, UsageError, type GenerateOptions } from './args';
import {
  JsonlRunStore,
  OutputFileError,
  outputPaths,
  readState,
  writeExport,
  type CliRunState,
} from './jsonl-store';
import { ProgressReporter } from './progress';

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** A failure the user can act on: printed as message + advice, exit code 1. */
class CliFailure extends Error {
  constructor(
    message: string,
    readonly advice?: string,
  ) {
    super(message);
  }
}

function fromClassified(what: string, c: ClassifiedError): CliFailure {
  return new CliFailure(`${what}: ${c.message}`, c.advice);
}

function familyTemplate(familyId: string, preQuery: string | undefined): FamilyTemplate {
  const base = getTemplate(familyId);
  if (preQuery === undefined) return base;
  try {
    return customPreQueryTemplate(preQuery, base);
  } catch (err) {
    if (err instanceof PreQueryTemplateError) throw new UsageError(`--pre-query-template: ${err.message}`);
    throw err;
  }
}

const SETTINGS_CHECKS: ReadonlyArray<[string, (s: RunSettings) => number | null]> = [
  ['count', (s) => s.count],
  ['seed', (s) => s.seed],
  ['instruction-temperature', (s) => s.instruction.temperature],
  ['instruction-top-p', (s) => s.instruction.topP],
  ['instruction-max-tokens', (s) => s.instruction.maxTokens],
  ['response-temperature', (s) => s.response.temperature],
  ['response-top-p', (s) => s.response.topP],
  ['response-max-tokens', (s) => s.response.maxTokens],
];

/** Every option given with --resume must say what the stored run says; the run's identity cannot change midway. */
function checkResumeMatches(options: GenerateOptions, given: ReadonlySet<string>, state: CliRunState): void {
  const run = state.run;
  const problems: string[] = [];
  const differs = (option: string, typed: unknown, stored: unknown) => {
    if (given.has(option) && typed !== stored) {
      problems.push(`--${option} ${JSON.stringify(typed)} differs from the run's ${JSON.stringify(stored ?? null)}`);
    }
  };
  differs('model', options.model, run.modelId);
  differs('template', options.template, state.familyTemplateId);
  differs('pre-query-template', options.preQueryTemplate, state.preQueryTemplate);
  differs('format', options.format, state.format);
  for (const [option, read] of SETTINGS_CHECKS) differs(option, read(options.settings), read(run.settings));
  if (problems.length > 0) {
    throw new UsageError(
      `These options do not match the run being resumed:\n  ${problems.join('\n  ')}\n` +
        'Leave them out (the stored values are used) or start a new run with another --output.',
    );
  }
}

function makeEngines(endpoints: readonly string[], model: string, apiKey: string | undefined): OpenAICompatibleEngine[] {
  return endpoints.map((baseUrl) => {
    try {
      return new OpenAICompatibleEngine({ baseUrl, model, inBrowser: false, ...(apiKey !== undefined ? { apiKey } : {}) });
    } catch (err) {
      throw new UsageError(`--endpoint ${baseUrl}: ${classifyEngineError(err).message}`);
    }
  });
}

/** Lists each server's models (the first request, so auth and reachability fail here, before any work). */
async function checkServers(engines: readonly OpenAICompatibleEngine[], model: string): Promise<void> {
  await Promise.all(
    engines.map(async (engine) => {
      let ids: string[];
      try {
        ids = await engine.listModels({ maxRetries: 1 });
      } catch (err) {
        throw fromClassified(`Cannot use the server at ${engine.baseUrl}`, classifyEngineError(err));
      }
      if (!ids.includes(model)) {
        throw new CliFailure(
          `The server at ${engine.baseUrl} does not serve the model "${model}".`,
          ids.length > 0 ? `It serves: ${ids.join(', ')}. Pass one of them with --model.` : 'It lists no models.',
        );
      }
    }),
  );
}

/** The BOS probe on every server; servers of one run must agree, or prompts could not be right for all of them. */
async function probeBos(engines: readonly OpenAICompatibleEngine[], template: FamilyTemplate): Promise<boolean> {
  const answers = await Promise.all(
    engines.map(async (engine) => {
      try {
        return await probeAddsBos(engine, template.probeToken);
      } catch (err) {
        throw fromClassified(`The BOS probe failed on ${engine.baseUrl}`, classifyEngineError(err));
      }
    }),
  );
  const first = answers[0] ?? false;
  if (answers.some((a) => a !== first)) {
    throw new CliFailure(
      'The servers disagree on whether they add the begin-of-sequence token to raw prompts.',
      'Use servers started the same way (same engine and options) in one run.',
    );
  }
  return first;
}

function runLabel(modelId: string, at: Date): string {
  const name = modelId.replace(/\/+$/, '').split('/').pop() ?? modelId;
  return `${name} ${at.toISOString().slice(0, 16).replace('T', ' ')}`;
}

interface Io {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: Readonly<Record<string, string | undefined>>;
  /** Fires when the user presses Ctrl-C (SIGINT). */
  onInterrupt(handler: () => void): void;
}

async function generate(options: GenerateOptions, given: ReadonlySet<string>, io: Io): Promise<number> {
  const say = (line: string) => io.stdout.write(`${line}\n`);
  let state: CliRunState;
  let endpoints = options.endpoints;

  if (options.resume) {
    const statePath = outputPaths(options.output, options.format).state;
    state = await readState(statePath);
    checkResumeMatches(options, given, state);
    if (state.run.status === 'done') {
      say(`The run in ${options.output} is already complete (${state.run.counters.accepted} records).`);
      return EXIT.ok;
    }
    if (endpoints.length === 0) endpoints = state.run.server?.baseUrls ?? [];
    if (endpoints.length === 0) throw new UsageError('The stored run has no server address: pass --endpoint.');
  } else {
    const model = options.model ?? '';
    const familyId = options.template ?? templateIdForModel(model);
    if (familyId === undefined) {
      throw new UsageError(
        `Cannot tell the chat template family of "${model}" from its name. Pass --template (one of ${listTemplates()
          .map((t) => t.id)
          .join(', ')}).`,
      );
    }
    const template = familyTemplate(familyId, options.preQueryTemplate);
    const settings: RunSettings = {
      ...options.settings,
      seed: options.seedRandom ? randomSeed() : options.settings.seed,
    };
    const t = Date.now();
    state = {
      version: 1,
      run: {
        id: crypto.randomUUID(),
        label: runLabel(model, new Date(t)),
        createdAt: t,
        updatedAt: t,
        status: 'created',
        modelId: model,
        engine: 'openai-compatible',
        templateId: template.id,
        engineAddsBos: false,
        settings,
        counters: emptyCounters(),
      },
      familyTemplateId: familyId,
      format: options.format,
      rejections: 0,
    };
    if (options.preQueryTemplate !== undefined) state.preQueryTemplate = options.preQueryTemplate;
  }

  const run = state.run;
  const template = familyTemplate(state.familyTemplateId, state.preQueryTemplate);
  const engines = makeEngines(endpoints, run.modelId, options.apiKey);
  const baseUrls = engines.map((e) => e.baseUrl);
  await checkServers(engines, run.modelId);
  const addsBos = await probeBos(engines, template);
  // The probe is re-measured at each start; prompts must follow what these servers do now.
  state = { ...state, run: { ...run, engineAddsBos: addsBos, server: { baseUrls } } };

  const paths = outputPaths(options.output, state.format);
  let store: JsonlRunStore;
  if (options.resume) {
    const resumed = await JsonlRunStore.resume(paths, state);
    store = resumed.store;
    await store.updateRun(run.id, { engineAddsBos: addsBos, server: { baseUrls } });
    const cut = resumed.report;
    if (cut.tornBytes > 0 || cut.uncountedLines > 0) {
      say(
        `Cut off ${cut.uncountedLines} uncounted line(s) and ${cut.tornBytes} byte(s) of a torn line from ${paths.canonical}; they are regenerated.`,
      );
    }
  } else {
    store = await JsonlRunStore.create(paths, state);
  }

  const settings = store.run.settings;
  let counters: RunCounters = { ...store.run.counters };
  say(
    `${options.resume ? 'Resuming' : 'Starting'} run ${run.id} (${run.label}): ${settings.count} records of ${run.modelId} via ${baseUrls.join(', ')}`,
  );
  say(
    `template ${template.id} · seed ${settings.seed ?? 'none'} · concurrency ${options.concurrency} · server adds BOS: ${addsBos ? 'yes' : 'no'} · ${counters.accepted} done so far`,
  );
  say(`writing ${paths.canonical}${paths.canonical !== paths.output ? ` (then ${paths.output} as ${state.format})` : ''}`);

  const meter = new RateMeter(60_000);
  const progress = new ProgressReporter(io.stdout, () => ({
    accepted: counters.accepted,
    count: settings.count,
    rejected: counters.rejectedEmpty + counters.rejectedLength,
    stats: meter.stats(Math.max(0, settings.count - counters.accepted)),
  }));
  const abort = new AbortController();
  let interrupted = false;
  io.onInterrupt(() => {
    if (interrupted) {
      // A second Ctrl-C: leave now. Every commit is atomic, so the files still resume cleanly.
      io.stderr.write('\nStopped without waiting.\n');
      process.exit(EXIT.interrupted);
    }
    interrupted = true;
    progress.note('Stopping: requests in flight are dropped and redone by --resume. Ctrl-C again to quit at once.');
    abort.abort();
  });

  const engine: TextEngine =
    engines.length === 1 && engines[0] ? engines[0] : new EnginePool(engines, { names: baseUrls });
  progress.start();
  const outcome = await runMagpie({
    run: store.run,
    engine,
    template,
    store,
    signal: abort.signal,
    concurrency: options.concurrency,
    events: {
      onTokens: (n) => meter.addTokens(n),
      onRecord: (_record, c) => {
        counters = c;
        meter.addRecord();
      },
      onRejected: (_rejection, c) => {
        counters = c;
      },
    },
  }).finally(() => progress.stop());
  counters = outcome.counters;
  await store.close();

  if (state.format !== 'magpie') {
    const written = await writeExport(paths, state.format, store.run);
    say(`Wrote ${written} records to ${paths.output} (${state.format}).`);
  }
  const rejected = counters.rejectedEmpty + counters.rejectedLength;
  const summary = `${counters.accepted}/${settings.count} records in ${paths.canonical}, ${rejected} instructions rejected, ${counters.attempts} attempts.`;
  if (outcome.status === 'done') {
    say(`Done: ${summary}`);
    return EXIT.ok;
  }
  if (outcome.status === 'failed' && outcome.error) {
    say(`Failed after ${summary}`);
    throw new CliFailure(`The run failed: ${outcome.error.message}`, `${outcome.error.advice} Continue later with --resume.`);
  }
  say(`Stopped: ${summary} Continue with: magpie-web generate --output ${JSON.stringify(options.output)} --resume`);
  return interrupted ? EXIT.interrupted : EXIT.failed;
}

/** Runs the CLI; resolves with the exit code (errors are printed, never thrown). */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const templateIds = listTemplates().map((t) => t.id);
  try {
    const parsed = parseArgs(argv, io.env, templateIds);
    if (parsed.command === 'help') {
      io.stdout.write(`${helpText(templateIds)}\n`);
      return EXIT.ok;
    }
    return await generate(parsed.options, parsed.given, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`magpie-web: ${err.message}\nRun "magpie-web generate --help" for the options.\n`);
      return EXIT.usage;
    }
    if (err instanceof OutputFileError) {
      io.stderr.write(`magpie-web: ${err.message}\n`);
      return EXIT.usage;
    }
    if (err instanceof CliFailure) {
      io.stderr.write(`magpie-web: ${err.message}\n${err.advice ? `${err.advice}\n` : ''}`);
      return EXIT.failed;
    }
    const c = classifyEngineError(err);
    io.stderr.write(`magpie-web: ${c.message}\n${c.advice}\n`);
    return EXIT.failed;
  }
}

/** The process wiring: real streams, Ctrl-C, and the exit code. */
export async function runCli(argv: readonly string[] = process.argv.slice(2)): Promise<never> {
  const code = await main(argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    onInterrupt: (handler) => process.on('SIGINT', handler),
  });
  process.exit(code);
}
