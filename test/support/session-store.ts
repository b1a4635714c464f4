/** An in-memory SessionStore, for Node tests of the session controller (IndexedDB has its own browser tests). */
import type { SessionStore } from '../../src/app/session';
import type { MagpieRecord, Run } from '../../src/core/record';
import type { RecordPage } from '../../src/storage/db';
import { MemoryStore } from './memory-store';

export class MemorySessionStore extends MemoryStore implements SessionStore {
  async createRun(run: Run): Promise<void> {
    if (this.runs.has(run.id)) throw new Error(`run ${run.id} exists`);
    this.runs.set(run.id, structuredClone(run));
  }

  async getRun(id: string): Promise<Run | undefined> {
    const run = this.runs.get(id);
    return run ? structuredClone(run) : undefined;
  }

  async listRuns(): Promise<Run[]> {
    return [...this.runs.values()].sort((a, b) => b.updatedAt - a.updatedAt).map((r) => structuredClone(r));
  }

  async deleteRun(id: string): Promise<void> {
    this.runs.delete(id);
    this.records = this.records.filter((r) => r.runId !== id);
  }

  async countRecords(runId: string): Promise<number> {
    return this.records.filter((r) => r.runId === runId).length;
  }

  async getRecords(runId: string, page: RecordPage): Promise<MagpieRecord[]> {
    const rows = this.recordsOf(runId);
    if (page.order === 'desc') rows.reverse();
    return rows.slice(page.offset, page.offset + page.limit);
  }

  async *iterateRecords(runId: string): AsyncGenerator<MagpieRecord, void, undefined> {
    for (const r of this.recordsOf(runId)) yield r;
  }

  async requestPersistence(): Promise<boolean> {
    return false;
  }

  async updateRecord(record: MagpieRecord): Promise<void> {
    const i = this.records.findIndex((r) => r.uuid === record.uuid);
    if (i === -1) throw new Error(`no record ${record.uuid}`);
    this.records[i] = structuredClone(record);
  }

  /** The run's records in seq order (copies). */
  recordsOf(runId: string): MagpieRecord[] {
    return this.records
      .filter((r) => r.runId === runId)
      .sort((a, b) => a.seq - b.seq)
      .map((r) => structuredClone(r));
  }
}
