/**
 * Test builds only (imported behind __MAGPIE_TEST_BUILD__): the fault hooks end-to-end tests drive.
 * URL: `?commitDelayMs=300` holds every record's IndexedDB transaction open that long (to reload mid-commit);
 * `&testModel=<scripted id with fault options>` (repeatable) adds models to the picker.
 * window.__magpieTest: `setQuotaFull(true)` makes record commits throw QuotaExceededError until a run is deleted;
 * `terminateWorker()` kills the engine worker as a crash would; `holding` / `holds` tell whether a commit is held.
 */
import type { EngineClient } from '../engine/worker-client';
import { commitTestHooks } from '../storage/db';

export interface MagpieTestApi {
  /** A record commit is being held open right now. */
  holding: boolean;
  /** Commits held so far on this page. */
  holds: number;
  setQuotaFull(full: boolean): void;
  readonly quotaFull: boolean;
  setCommitDelay(ms: number): void;
  terminateWorker(): void;
}

declare global {
  interface Window {
    __magpieTest?: MagpieTestApi;
  }
}

export function installTestHooks(engine: EngineClient): { extraModelIds: string[] } {
  const params = new URLSearchParams(window.location.search);
  const delay = Number(params.get('commitDelayMs') ?? '0');
  if (Number.isFinite(delay) && delay > 0) commitTestHooks.delayMs = delay;
  const api: MagpieTestApi = {
    holding: false,
    holds: 0,
    setQuotaFull(full) {
      commitTestHooks.quotaFull = full;
    },
    get quotaFull() {
      return commitTestHooks.quotaFull === true;
    },
    setCommitDelay(ms) {
      commitTestHooks.delayMs = ms;
    },
    terminateWorker() {
      // Not the 'aborted' of a user's stop: the run must see a dead engine and recover.
      engine.terminate(new Error('The engine worker was terminated mid-generation.'));
    },
  };
  commitTestHooks.onHold = (holding) => {
    api.holding = holding;
    if (holding) api.holds += 1;
  };
  window.__magpieTest = api;
  return { extraModelIds: params.getAll('testModel') };
}
