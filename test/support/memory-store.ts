import type { MagpieRecord, RejectedInstruction, Run, RunCounters } from '../../src/core/record';
import type { RunStore } from '../../src/core/runner';

/** An in-memory RunStore for Node tests of the runner (the IndexedDB store has its own browser tests). */
export class MemoryStore implements RunStore {
  runs = new Map<string, Run>();
  records: MagpieRecord[] = [];
  rejections: RejectedInstruction[] = [];
  /** Throw from the next commitRecord (to test that nothing is counted on failure). */
  failNextCommit: Error | undefined;

  constructor(runs: Run[] = []) {
    for (const r of runs) this.runs.set(r.id, structuredClone(r));
  }

  async commitRecord(record: MagpieRecord, counters: RunCounters): Promise<void> {
    if (this.failNextCommit) {
      const e = this.failNextCommit;
      this.failNextCommit = undefined;
      throw e;
    }
    if (this.records.some((r) => r.runId === record.runId && r.seq === record.seq)) {
      throw new Error(`duplicate seq ${record.seq}`);
    }
    this.records.push(structuredClone(record));
    this.patch(record.runId, { counters });
  }

  async commitRejection(rejection: RejectedInstruction, counters: RunCounters): Promise<void> {
    this.rejections.push(structuredClone(rejection));
    this.patch(rejection.runId, { counters });
  }

  async updateRun(id: string, patch: Partial<Omit<Run, 'id'>>): Promise<Run> {
    return this.patch(id, patch);
  }

  private patch(id: string, patch: Partial<Omit<Run, 'id'>>): Run {
    const run = this.runs.get(id);
    if (!run) throw new Error(`no run ${id}`);
    const next = { ...run, ...structuredClone(patch), updatedAt: Date.now() };
    this.runs.set(id, next);
    return next;
  }
}
