/**
 * Command-line arguments of `magpie-web generate`: parsed and validated here (no I/O), so every mistake is reported
 * with the option's name before anything is sent to a server.
 */
import { EXPORT_FORMATS, type ExportFormat } from '../core/export';
import type { RunSettings } from '../core/record';
import {
  DEFAULT_COUNT,
  DEFAULT_INSTRUCTION,
  DEFAULT_RESPONSE,
  parseSettings,
  type SettingsField,
  type SettingsForm,
} from '../core/settings';

/** A mistake in the command line: exit code 2 and the message, never a stack trace. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const DEFAULT_CONCURRENCY = 8;
export const MAX_CONCURRENCY = 1024;
export const DEFAULT_OUTPUT = 'magpie.jsonl';
/** Servers serve long contexts; the server itself refuses a prompt + max_tokens that does not fit. */
const MAX_TOKENS_BOUND = 1_048_576;

export interface GenerateOptions {
  endpoints: string[];
  model?: string;
  apiKey?: string;
  template?: string;
  preQueryTemplate?: string;
  settings: RunSettings;
  /** True when --seed was not given and the run picks a random one (a resumed run keeps its stored seed). */
  seedRandom: boolean;
  concurrency: number;
  output: string;
  format: ExportFormat;
  resume: boolean;
}

export type ParsedCommand =
  | { command: 'help' }
  | {
      command: 'generate';
      options: GenerateOptions;
      /** Long names of the options given on the command line (without "--"), to check them against a resumed run. */
      given: ReadonlySet<string>;
    };

type Kind = 'string' | 'list' | 'flag';

const OPTIONS: Readonly<Record<string, Kind>> = {
  endpoint: 'list',
  model: 'string',
  'api-key': 'string',
  template: 'string',
  'pre-query-template': 'string',
  count: 'string',
  seed: 'string',
  'instruction-temperature': 'string',
  'instruction-top-p': 'string',
  'instruction-max-tokens': 'string',
  'response-temperature': 'string',
  'response-top-p': 'string',
  'response-max-tokens': 'string',
  concurrency: 'string',
  output: 'string',
  format: 'string',
  resume: 'flag',
  help: 'flag',
};

const SETTINGS_OPTIONS: Readonly<Record<SettingsField, string>> = {
  count: 'count',
  seed: 'seed',
  instructionTemperature: 'instruction-temperature',
  instructionTopP: 'instruction-top-p',
  instructionMaxTokens: 'instruction-max-tokens',
  responseTemperature: 'response-temperature',
  responseTopP: 'response-top-p',
  responseMaxTokens: 'response-max-tokens',
};

export const HELP = `Usage: magpie-web generate --endpoint URL --model ID [options]

Generates Magpie instruction/response records with an OpenAI-compatible server (vLLM, SGLang, llama.cpp server,
Ollama, TGI). Raw prompts go to POST /v1/completions, so they are byte-exact for the model's chat template.

Server
  --endpoint URL              Server base URL, e.g. http://localhost:8000 or http://localhost:8000/v1.
                              Repeat it for several servers of the same model; requests go to the least busy one.
  --model ID                  Model id as listed by GET /v1/models.
  --api-key KEY               Sent as "Authorization: Bearer KEY". Default: the MAGPIE_API_KEY environment variable.
                              Never written to the output or state files.
  --concurrency N             Requests in flight at once, so the server can batch them (default ${DEFAULT_CONCURRENCY}).

Template
  --template ID               Chat template family (default: detected from the model id). One of:
                              {TEMPLATES}
  --pre-query-template TEXT   Your own pre-query template (without the begin-of-sequence token; it must end with
                              the family's user header). "\\n" in TEXT is a newline. Responses still use --template.

Run
  --count N                   Records to generate (default ${DEFAULT_COUNT}).
  --seed N                    Run seed; record k uses seeds derived from (seed, k). Default: a random seed (printed).
  --instruction-temperature X (default ${DEFAULT_INSTRUCTION.temperature})
  --instruction-top-p X       (default ${DEFAULT_INSTRUCTION.topP})
  --instruction-max-tokens N  (default ${DEFAULT_INSTRUCTION.maxTokens})
  --response-temperature X    (default ${DEFAULT_RESPONSE.temperature})
  --response-top-p X          (default ${DEFAULT_RESPONSE.topP})
  --response-max-tokens N     (default ${DEFAULT_RESPONSE.maxTokens})

Output
  --output PATH               JSONL file to write (default ${DEFAULT_OUTPUT}).
  --format F                  sharegpt | openai | magpie (default magpie: full metadata, Magpie field names).
                              Every record is first appended (and fsync'd) to the full-metadata file: PATH itself
                              for magpie, PATH.magpie.jsonl otherwise; PATH is then written in the chosen format
                              when the run ends (finished, stopped with Ctrl-C, or failed).
                              PATH.state.json holds the run's settings and counters.
  --resume                    Continue the run in PATH: records already written are kept, the rest are generated
                              with the same seeds. Options you give must match the stored run; the ones you leave
                              out are taken from it (give --endpoint and --api-key again if they changed).
  -h, --help                  Show this help.

Ctrl-C stops cleanly: finished records are kept, requests in flight are dropped and redone by --resume.
Exit status: 0 done, 1 the run failed (server, auth, network), 2 bad arguments, 130 stopped by Ctrl-C.`;

export function helpText(templateIds: readonly string[]): string {
  const lines: string[] = [];
  let line = '';
  for (const id of templateIds) {
    const next = line === '' ? id : `${line}, ${id}`;
    if (next.length > 80 && line !== '') {
      lines.push(`${line},`);
      line = id;
    } else {
      line = next;
    }
  }
  if (line !== '') lines.push(line);
  return HELP.replace('{TEMPLATES}', lines.join('\n                              '));
}

/** "\n", "\t" and "\\" typed in a shell argument become the characters they name. */
export function decodeEscapes(text: string): string {
  return text.replace(/\\([nt\\])/g, (_m, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : '\\'));
}

function integerOption(name: string, text: string, min: number, max: number): number {
  const t = text.trim();
  if (!/^[+-]?\d+$/.test(t)) throw new UsageError(`--${name} must be a whole number, not "${text}".`);
  const n = Number(t);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, not ${t}.`);
  return n;
}

/** Splits argv into option values; unknown options, missing values and stray arguments are usage errors. */
function collect(argv: readonly string[]): { values: Map<string, string[]>; positional: string[] } {
  const values = new Map<string, string[]>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '-h') {
      values.set('help', ['']);
      continue;
    }
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const kind = Object.hasOwn(OPTIONS, name) ? OPTIONS[name] : undefined;
    if (kind === undefined) throw new UsageError(`Unknown option ${eq === -1 ? arg : arg.slice(0, eq)}.`);
    if (kind === 'flag') {
      if (eq !== -1) throw new UsageError(`--${name} takes no value.`);
      values.set(name, ['']);
      continue;
    }
    let value: string;
    if (eq !== -1) {
      value = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) {
        throw new UsageError(`--${name} needs a value.`);
      }
      value = next;
      i++;
    }
    if (kind === 'string' && values.has(name)) throw new UsageError(`--${name} was given more than once.`);
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  return { values, positional };
}

/**
 * Parses `magpie-web <argv>`. `env` supplies MAGPIE_API_KEY. `templateIds` are the known template families.
 * Missing --endpoint / --model is an error only for a new run: a resumed run can take them from its state file.
 */
export function parseArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  templateIds: readonly string[],
): ParsedCommand {
  const { values, positional } = collect(argv);
  if (values.has('help')) return { command: 'help' };
  const [command, ...extra] = positional;
  if (command === undefined) throw new UsageError('Missing the command: magpie-web generate [options].');
  if (command !== 'generate') throw new UsageError(`Unknown command "${command}"; the command is "generate".`);
  if (extra.length > 0) throw new UsageError(`Unexpected argument "${extra[0] ?? ''}".`);

  const one = (name: string): string | undefined => values.get(name)?.[0];
  const given = new Set(values.keys());
  const resume = values.has('resume');

  const endpoints = (values.get('endpoint') ?? []).map((e) => e.trim());
  if (endpoints.some((e) => e === '')) throw new UsageError('--endpoint needs a URL.');
  if (!resume && endpoints.length === 0) throw new UsageError('Missing --endpoint URL (the server, e.g. http://localhost:8000).');
  const model = one('model')?.trim();
  if (model === '') throw new UsageError('--model needs a model id.');
  if (!resume && model === undefined) throw new UsageError('Missing --model ID (see GET /v1/models on the server).');

  const template = one('template')?.trim();
  if (template !== undefined && !templateIds.includes(template)) {
    throw new UsageError(`Unknown --template "${template}". Known families: ${templateIds.join(', ')}.`);
  }
  const preQueryRaw = one('pre-query-template');
  const preQueryTemplate = preQueryRaw === undefined ? undefined : decodeEscapes(preQueryRaw);

  const form: SettingsForm = {
    count: one('count') ?? String(DEFAULT_COUNT),
    seed: one('seed') ?? '',
    instructionTemperature: one('instruction-temperature') ?? String(DEFAULT_INSTRUCTION.temperature),
    instructionTopP: one('instruction-top-p') ?? String(DEFAULT_INSTRUCTION.topP),
    instructionMaxTokens: one('instruction-max-tokens') ?? String(DEFAULT_INSTRUCTION.maxTokens),
    responseTemperature: one('response-temperature') ?? String(DEFAULT_RESPONSE.temperature),
    responseTopP: one('response-top-p') ?? String(DEFAULT_RESPONSE.topP),
    responseMaxTokens: one('response-max-tokens') ?? String(DEFAULT_RESPONSE.maxTokens),
  };
  if (values.has('seed') && form.seed.trim() === '') throw new UsageError('--seed needs a whole number.');
  const parsed = parseSettings(form, MAX_TOKENS_BOUND);
  if (!parsed.ok) {
    const problems = (Object.entries(parsed.errors) as Array<[SettingsField, string]>).map(
      ([field, message]) => `--${SETTINGS_OPTIONS[field]} "${form[field]}": ${message}`,
    );
    throw new UsageError(problems.join('\n'));
  }

  const concurrencyText = one('concurrency');
  const concurrency =
    concurrencyText === undefined ? DEFAULT_CONCURRENCY : integerOption('concurrency', concurrencyText, 1, MAX_CONCURRENCY);

  const formatText = one('format') ?? 'magpie';
  const format = EXPORT_FORMATS.find((f) => f.id === formatText)?.id;
  if (format === undefined) {
    throw new UsageError(`Unknown --format "${formatText}"; use one of ${EXPORT_FORMATS.map((f) => f.id).join(', ')}.`);
  }

  const output = one('output') ?? DEFAULT_OUTPUT;
  if (output.trim() === '') throw new UsageError('--output needs a file path.');

  const apiKey = one('api-key') ?? env.MAGPIE_API_KEY;
  const options: GenerateOptions = {
    endpoints,
    settings: parsed.settings,
    seedRandom: !values.has('seed'),
    concurrency,
    output,
    format,
    resume,
  };
  if (model !== undefined) options.model = model;
  if (apiKey !== undefined && apiKey.trim() !== '') options.apiKey = apiKey.trim();
  if (template !== undefined) options.template = template;
  if (preQueryTemplate !== undefined) options.preQueryTemplate = preQueryTemplate;
  return { command: 'generate', options, given };
}
