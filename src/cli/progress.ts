/**
 * Terminal progress for the CLI: a redrawn bar on a TTY, plain periodic lines otherwise (logs, CI, pipes), both
 * with records, tokens/s, records/min and ETA from the same rate meter the page uses.
 */
import type { RunStats } from '../core/stats';

export interface ProgressOutput {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export interface ProgressSnapshot {
  accepted: number;
  count: number;
  rejected: number;
  stats: RunStats;
}

export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(h > 0 ? 2 : 1, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function rate(n: number): string {
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

/** "12/50 records (24%) · 812 tok/s · 95.2 records/min · ETA 0:24" */
export function progressLine(p: ProgressSnapshot): string {
  const pct = p.count > 0 ? Math.floor((p.accepted / p.count) * 100) : 100;
  const rejected = p.rejected > 0 ? ` · ${p.rejected} rejected` : '';
  return `${p.accepted}/${p.count} records (${pct}%)${rejected} · ${rate(p.stats.tokensPerSecond)} tok/s · ${rate(p.stats.recordsPerMinute)} records/min · ETA ${formatEta(p.stats.etaSeconds)}`;
}

/** The TTY form: a bar sized to the terminal, then the same numbers. */
export function progressBar(p: ProgressSnapshot, columns: number): string {
  const text = progressLine(p);
  const width = Math.max(10, Math.min(40, columns - text.length - 4));
  const filled = p.count > 0 ? Math.round((Math.min(p.accepted, p.count) / p.count) * width) : width;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}`;
}

export class ProgressReporter {
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastLength = 0;

  constructor(
    private readonly out: ProgressOutput,
    private readonly snapshot: () => ProgressSnapshot,
    /** How often a non-TTY line is written; a TTY bar is redrawn 4 times a second. */
    private readonly plainIntervalMs = 5000,
  ) {}

  get tty(): boolean {
    return this.out.isTTY === true;
  }

  start(): void {
    this.timer = setInterval(() => this.render(), this.tty ? 250 : this.plainIntervalMs);
    // The timer alone must not keep the process alive.
    this.timer.unref?.();
    if (this.tty) this.render();
  }

  render(): void {
    const snap = this.snapshot();
    if (this.tty) {
      const line = progressBar(snap, this.out.columns ?? 80);
      const pad = Math.max(0, this.lastLength - line.length);
      this.out.write(`\r${line}${' '.repeat(pad)}`);
      this.lastLength = line.length;
    } else {
      this.out.write(`${progressLine(snap)}\n`);
    }
  }

  /** Prints a message on its own line without garbling the bar. */
  note(message: string): void {
    if (this.tty && this.lastLength > 0) {
      this.out.write(`\r${' '.repeat(this.lastLength)}\r${message}\n`);
      this.lastLength = 0;
      if (this.timer !== undefined) this.render();
    } else {
      this.out.write(`${message}\n`);
    }
  }

  /** Stops redrawing and leaves the final numbers on screen. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.render();
    if (this.tty) this.out.write('\n');
    this.lastLength = 0;
  }
}
