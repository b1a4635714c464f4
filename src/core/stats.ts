/** Live run speed: tokens/s, records/min and ETA over a sliding time window. */

export interface RunStats {
  tokensPerSecond: number;
  recordsPerMinute: number;
  /** Seconds left at the current pace; undefined until a record has been made. */
  etaSeconds: number | undefined;
}

interface Sample {
  t: number;
  tokens: number;
  records: number;
}

export class RateMeter {
  private samples: Sample[] = [];
  private tokens = 0;
  private records = 0;

  constructor(
    private readonly windowMs = 60_000,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.samples.push({ t: this.now(), tokens: 0, records: 0 });
  }

  addTokens(n: number): void {
    this.tokens += n;
    this.push();
  }

  addRecord(): void {
    this.records += 1;
    this.push();
  }

  private push(): void {
    const t = this.now();
    this.samples.push({ t, tokens: this.tokens, records: this.records });
    // Keep one sample older than the window so the rate spans the whole window.
    while (this.samples.length > 2 && (this.samples[1]?.t ?? t) <= t - this.windowMs) this.samples.shift();
  }

  stats(remainingRecords: number): RunStats {
    const first = this.samples[0];
    const t = this.now();
    if (!first || t <= first.t) return { tokensPerSecond: 0, recordsPerMinute: 0, etaSeconds: undefined };
    const seconds = (t - first.t) / 1000;
    const tokensPerSecond = (this.tokens - first.tokens) / seconds;
    const recordsPerMinute = ((this.records - first.records) / seconds) * 60;
    const etaSeconds = recordsPerMinute > 0 ? (remainingRecords / recordsPerMinute) * 60 : undefined;
    return { tokensPerSecond, recordsPerMinute, etaSeconds };
  }
}
