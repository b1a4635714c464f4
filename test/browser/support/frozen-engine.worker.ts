/// <reference lib="webworker" />
// A stand-in engine worker for the watchdog tests. complete() by prompt: "freeze" blocks this thread in a
// synchronous loop (as a crashed or stalled engine would: no message is handled), "slow" streams for about a second
// while yielding between tokens (as WebLLM does), anything else answers at once. Named "no-ping", it has no ping()
// (an older worker build).
import { expose } from 'comlink';
import type { CompletionRequest, CompletionResult } from '../../../src/core/engine';

const scope = self as unknown as DedicatedWorkerGlobalScope;

const result = (text: string): CompletionResult => ({ text, finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 } });

const api = {
  async complete(req: CompletionRequest, onDelta?: (d: string) => void): Promise<CompletionResult> {
    if (req.prompt === 'freeze') {
      const until = Date.now() + 60_000;
      // Busy on purpose: nothing else runs on this thread until the page terminates it.
      while (Date.now() < until) {
        /* spin */
      }
      return result('thawed');
    }
    if (req.prompt === 'slow') {
      for (let i = 0; i < 50; i++) {
        await new Promise((r) => setTimeout(r, 20));
        await onDelta?.('x');
      }
      return result('x'.repeat(50));
    }
    return result(`answer to ${req.prompt}`);
  },
  async interrupt(): Promise<void> {},
  ...(scope.name === 'no-ping' ? {} : { ping: async (): Promise<number> => Date.now() }),
};

expose(api);
