/**
 * The CLI's RunStore: one full-metadata JSONL line per record, appended and fsync'd before it is counted, plus a
 * small state file (settings + counters) replaced atomically with rename. Together they always read as "records
 * 1..accepted are in the file": a line written but not yet counted (a crash between the two writes) and a torn last
 * line are cut off on resume, and the runner redoes those attempts with the same seeds.
 */
import { open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { formatRecord, toMagpie, type ExportFormat, type MagpieLine } from '../core/export';
import type { MagpieRecord, RejectedInstruction, Run, RunCounters, StepInfo } from '../core/record';
import type { RunStore } from '../core/runner';

/** What the state file holds (never the API key). */
export interface CliRunState {
  version: 1;
  run: Run;
  /** The family template the run renders with (run.templateId adds a suffix when a custom pre-query is used). */
  familyTemplateId: string;
  /** The user's own pre-query template, when given. */
  preQueryTemplate?: string;
  format: ExportFormat;
  /** Rejected instructions (empty or cut by max tokens) so far. */
  rejections: number;
}

export interface OutputPaths {
  /** The file the user asked for (in the chosen format). */
  output: string;
  /** The full-metadata file records are appended to: `output` itself for the magpie format. */
  canonical: string;
  state: string;
}

export function outputPaths(output: string, format: ExportFormat): OutputPaths {
  return {
    output,
    canonical: format === 'magpie' ? output : `${output}.magpie.jsonl`,
    state: `${output}.state.json`,
  };
}

/** A problem with the files on disk (exists already, belongs to another run, damaged): the message says what to do. */
export class OutputFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputFileError';
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Makes a rename durable: the directory entry is flushed too (best effort; not every platform allows it). */
async function syncDir(path: string): Promise<void> {
  let dir: FileHandle | undefined;
  try {
    dir = await open(dirname(path), 'r');
    await dir.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the rename itself is still atomic.
  } finally {
    await dir?.close().catch(() => undefined);
  }
}

/** Writes `text` to `path` atomically: a temporary file, fsync, rename over the old one. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await syncDir(path);
}

export async function readState(path: string): Promise<CliRunState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new OutputFileError(`There is no run to resume: ${path} does not exist.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new OutputFileError(`${path} is not valid JSON; it was not written by magpie-web or it was edited.`);
  }
  if (!isStateLike(parsed)) throw new OutputFileError(`${path} is not a magpie-web run state file.`);
  return parsed;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStateLike(v: unknown): v is CliRunState {
  if (!isObject(v) || v.version !== 1 || !isObject(v.run)) return false;
  const run = v.run;
  return (
    typeof run.id === 'string' &&
    typeof v.familyTemplateId === 'string' &&
    typeof v.format === 'string' &&
    typeof v.rejections === 'number' &&
    isObject(run.counters) &&
    isObject(run.settings)
  );
}

/** The record a full-metadata line was written from (what formatRecord needs to write the other formats). */
export function recordFromMagpieLine(line: MagpieLine): MagpieRecord {
  const meta = line.magpie_web;
  const step = (s: MagpieLine['magpie_web']['instruction'], temperature: number, topP: number): StepInfo => ({
    prompt: s.prompt,
    temperature,
    topP,
    maxTokens: s.max_tokens,
    stop: s.stop,
    seed: s.seed,
    finishReason: s.finish_reason === 'length' ? 'length' : s.finish_reason === 'abort' ? 'abort' : 'stop',
    promptTokens: s.prompt_tokens,
    completionTokens: s.completion_tokens,
    durationMs: s.duration_ms,
  });
  const record: MagpieRecord = {
    uuid: line.uuid,
    runId: meta.run_id,
    seq: meta.seq,
    modelId: line.model,
    engine: line.gen_response_configs.engine,
    templateId: meta.template,
    preQueryTemplate: line.gen_input_configs.pre_query_template,
    instruction: line.instruction,
    response: line.response,
    instructionStep: step(meta.instruction, line.gen_input_configs.temperature, line.gen_input_configs.top_p),
    responseStep: step(meta.response, line.gen_response_configs.temperature, line.gen_response_configs.top_p),
    createdAt: Date.parse(meta.created_at),
  };
  if (meta.attempt !== undefined) record.attempt = meta.attempt;
  return record;
}

function isMagpieLine(v: unknown): v is MagpieLine {
  return (
    isObject(v) &&
    typeof v.uuid === 'string' &&
    typeof v.instruction === 'string' &&
    isObject(v.magpie_web) &&
    typeof v.magpie_web.seq === 'number' &&
    typeof v.magpie_web.run_id === 'string'
  );
}

/** Reads the canonical file line by line (a chunk at a time), with each line's end offset in bytes. */
async function* lines(path: string): AsyncGenerator<{ text: string; end: number } | { tornBytes: number; start: number }> {
  const fh = await open(path, 'r');
  try {
    const chunk = Buffer.alloc(1 << 20);
    let pending: Buffer[] = [];
    let pendingLength = 0;
    let offset = 0;
    for (;;) {
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      let from = 0;
      for (;;) {
        const nl = chunk.indexOf(10, from);
        if (nl === -1 || nl >= bytesRead) break;
        const piece = chunk.subarray(from, nl);
        const whole = pendingLength > 0 ? Buffer.concat([...pending, piece]) : piece;
        offset += whole.length + 1;
        yield { text: whole.toString('utf8'), end: offset };
        pending = [];
        pendingLength = 0;
        from = nl + 1;
      }
      if (from < bytesRead) {
        pending.push(Buffer.from(chunk.subarray(from, bytesRead)));
        pendingLength += bytesRead - from;
      }
    }
    // Counted in bytes: a torn line may end inside a multi-byte character.
    if (pendingLength > 0) yield { tornBytes: pendingLength, start: offset };
  } finally {
    await fh.close();
  }
}

export interface ResumeReport {
  /** Bytes of an incomplete last line that were cut off. */
  tornBytes: number;
  /** Complete lines after the counted ones (written, not yet counted when the process died) that were cut off. */
  uncountedLines: number;
}

export class JsonlRunStore implements RunStore {
  private state: CliRunState;
  /** Commits and state writes never interleave (the runner already serialises commits; updateRun may race them). */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly paths: OutputPaths,
    state: CliRunState,
    private readonly file: FileHandle,
  ) {
    this.state = state;
  }

  get run(): Run {
    return this.state.run;
  }

  get snapshot(): CliRunState {
    return this.state;
  }

  /** Starts a new run; refuses to touch existing files (that is what --resume is for). */
  static async create(paths: OutputPaths, state: CliRunState): Promise<JsonlRunStore> {
    for (const p of new Set([paths.output, paths.canonical, paths.state])) {
      if (await exists(p)) {
        throw new OutputFileError(`${p} already exists. Pass --resume to continue that run, or choose another --output.`);
      }
    }
    let file: FileHandle;
    try {
      file = await open(paths.canonical, 'wx');
    } catch (err) {
      throw new OutputFileError(`Cannot create ${paths.canonical}: ${err instanceof Error ? err.message : String(err)}`);
    }
    await file.sync();
    const store = new JsonlRunStore(paths, state, file);
    await writeFileAtomic(paths.state, JSON.stringify(state, null, 2) + '\n');
    return store;
  }

  /**
   * Opens a run to resume: the canonical file is cut back to exactly the counted records (a torn last line and
   * uncounted lines go), and every kept line is checked to be record 1, 2, … of this run.
   */
  static async resume(paths: OutputPaths, state: CliRunState): Promise<{ store: JsonlRunStore; report: ResumeReport }> {
    const accepted = state.run.counters.accepted;
    if (!(await exists(paths.canonical))) {
      throw new OutputFileError(`${paths.canonical} is missing: the records of the run in ${paths.state} are gone.`);
    }
    let kept = 0;
    let keepBytes = 0;
    let uncountedLines = 0;
    let tornBytes = 0;
    let size = 0;
    for await (const line of lines(paths.canonical)) {
      if ('tornBytes' in line) {
        tornBytes = line.tornBytes;
        size = line.start + tornBytes;
        break;
      }
      size = line.end;
      if (kept === accepted) {
        uncountedLines++;
        continue;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(line.text);
      } catch {
        throw new OutputFileError(`${paths.canonical}: line ${kept + 1} is not valid JSON (the file was edited?).`);
      }
      if (!isMagpieLine(parsed) || parsed.magpie_web.run_id !== state.run.id || parsed.magpie_web.seq !== kept + 1) {
        throw new OutputFileError(
          `${paths.canonical}: line ${kept + 1} is not record ${kept + 1} of run ${state.run.id}; it belongs to another run or the file was edited.`,
        );
      }
      kept++;
      keepBytes = line.end;
    }
    if (kept < accepted) {
      throw new OutputFileError(
        `${paths.canonical} has ${kept} records but ${paths.state} counts ${accepted}; the file was truncated or edited.`,
      );
    }
    const file = await open(paths.canonical, 'r+');
    if (size !== keepBytes) {
      await file.truncate(keepBytes);
      await file.sync();
    }
    await file.close();
    const appendHandle = await open(paths.canonical, 'a');
    return { store: new JsonlRunStore(paths, state, appendHandle), report: { tornBytes, uncountedLines } };
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private writeState(): Promise<void> {
    return writeFileAtomic(this.paths.state, JSON.stringify(this.state, null, 2) + '\n');
  }

  commitRecord(record: MagpieRecord, counters: RunCounters): Promise<void> {
    return this.serial(async () => {
      await this.file.appendFile(JSON.stringify(toMagpie(record)) + '\n', 'utf8');
      // The line is on disk before the state counts it: a crash in between leaves an extra line, cut on resume.
      await this.file.sync();
      this.state = { ...this.state, run: { ...this.state.run, counters: { ...counters }, updatedAt: Date.now() } };
      await this.writeState();
    });
  }

  commitRejection(_rejection: RejectedInstruction, counters: RunCounters): Promise<void> {
    return this.serial(async () => {
      this.state = {
        ...this.state,
        rejections: this.state.rejections + 1,
        run: { ...this.state.run, counters: { ...counters }, updatedAt: Date.now() },
      };
      await this.writeState();
    });
  }

  updateRun(id: string, patch: Partial<Omit<Run, 'id'>>): Promise<Run> {
    return this.serial(async () => {
      if (id !== this.state.run.id) throw new Error(`Run ${id} is not the run in ${this.paths.state}.`);
      this.state = { ...this.state, run: { ...this.state.run, ...patch, id, updatedAt: Date.now() } };
      await this.writeState();
      return this.state.run;
    });
  }

  async close(): Promise<void> {
    await this.queue;
    await this.file.close();
  }
}

/**
 * Writes `paths.output` in `format` from the canonical full-metadata file (a no-op for magpie, which is the canonical
 * file). Streams line by line and replaces the output atomically, so a reader never sees half a file.
 */
export async function writeExport(paths: OutputPaths, format: ExportFormat, run: Pick<Run, 'label'>): Promise<number> {
  if (format === 'magpie') return 0;
  const tmp = `${paths.output}.tmp-${process.pid}`;
  const out = await open(tmp, 'w');
  let count = 0;
  try {
    let batch = '';
    for await (const line of lines(paths.canonical)) {
      if ('tornBytes' in line) break;
      const parsed: unknown = JSON.parse(line.text);
      if (!isMagpieLine(parsed)) throw new OutputFileError(`${paths.canonical}: line ${count + 1} is not a record.`);
      batch += JSON.stringify(formatRecord(recordFromMagpieLine(parsed), format, run)) + '\n';
      count++;
      if (batch.length > 1 << 20) {
        await out.appendFile(batch, 'utf8');
        batch = '';
      }
    }
    await out.appendFile(batch, 'utf8');
    await out.sync();
  } catch (err) {
    await out.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await out.close();
  await rename(tmp, paths.output);
  await syncDir(paths.output);
  return count;
}
