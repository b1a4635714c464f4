// The engine client's watchdog with real workers: a worker that stops answering (a synchronous loop blocks its
// thread, as a crashed engine would) makes the pending call reject as an engine loss, and the next call starts a
// fresh worker; a worker that is busy but yields between tokens, as WebLLM does, is left alone.
import { afterEach, describe, expect, it } from 'vitest';
import type { CompletionRequest } from '../../src/core/engine';
import { EngineError, classifyEngineError } from '../../src/core/errors';
import { isEngineLoss } from '../../src/core/run-state';
import { EngineClient, type WatchdogTimings } from '../../src/engine/worker-client';

const FAST: WatchdogTimings = { intervalMs: 100, timeoutMs: 150, maxMissed: 3 };
const request = (prompt: string): CompletionRequest => ({ prompt, temperature: 1, topP: 1, maxTokens: 8, stop: [], seed: 1 });

const clients: EngineClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.terminate();
});

function client(name = 'frozen-engine'): { engine: EngineClient; workers: Worker[] } {
  const workers: Worker[] = [];
  const engine = new EngineClient({
    watchdog: FAST,
    createWorker: () => {
      const w = new Worker(new URL('./support/frozen-engine.worker.ts', import.meta.url), { type: 'module', name });
      workers.push(w);
      return w;
    },
  });
  clients.push(engine);
  return { engine, workers };
}

describe('engine watchdog', () => {
  it('a worker that stops answering: the pending call rejects as an engine loss within the budget; the next call works', async () => {
    const { engine, workers } = client();
    expect((await engine.complete(request('warm up'))).text).toBe('answer to warm up');
    const started = performance.now();
    const error = await engine.complete(request('freeze')).then(
      () => undefined,
      (err: unknown) => err,
    );
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(EngineError);
    const classified = classifyEngineError(error);
    expect(classified.kind).toBe('engine-unresponsive');
    expect(classified.message).toMatch(/stopped responding/);
    expect(isEngineLoss(classified)).toBe(true);
    // 3 × (100 + 150) ms of silence at most, plus scheduling slack; the frozen call itself would spin for 60 s.
    expect(elapsed).toBeGreaterThanOrEqual(FAST.maxMissed * FAST.intervalMs);
    expect(elapsed).toBeLessThan(3_000);

    expect(workers).toHaveLength(1);
    expect((await engine.complete(request('again'))).text).toBe('answer to again');
    expect(workers).toHaveLength(2);
  });

  it('a worker busy with a long generation that yields per token keeps answering pings and finishes', async () => {
    const { engine, workers } = client();
    const deltas: string[] = [];
    const started = performance.now();
    const result = await engine.complete(request('slow'), { onDelta: (d) => deltas.push(d) });
    // Long enough for several rounds of pings (each round is 100 ms plus the answer).
    expect(performance.now() - started).toBeGreaterThan(FAST.maxMissed * (FAST.intervalMs + FAST.timeoutMs));
    expect(result.text).toBe('x'.repeat(50));
    expect(deltas).toHaveLength(50);
    expect(workers).toHaveLength(1);
  });

  it('a worker without ping() (an older build) counts as alive: its refusal is an answer', async () => {
    const { engine, workers } = client('no-ping');
    expect((await engine.complete(request('slow'))).text).toBe('x'.repeat(50));
    expect(workers).toHaveLength(1);
  });
});
