import { describe, expect, it } from 'vitest';
import type { CompletionCreateParamsStreaming } from '@mlc-ai/web-llm';
import { ScriptedMLCEngine, scriptedOptionsFromModelId, type FaultLedger } from '../../src/engine/scripted-mlc-engine';

const USER = '<|start_header_id|>user<|end_header_id|>\n\n';
const PRE_QUERY = `<|begin_of_text|>${USER}`;

function req(seed: number): CompletionCreateParamsStreaming {
  return { prompt: PRE_QUERY, temperature: 1, top_p: 1, max_tokens: 256, seed, stream: true };
}

async function attempt(engine: ScriptedMLCEngine, seed: number): Promise<'ok' | string> {
  try {
    for await (const chunk of await engine.completions.create(req(seed))) void chunk;
    return 'ok';
  } catch (err) {
    return (err as Error).name;
  }
}

function countingLedger(): FaultLedger & { spent: Map<string, number> } {
  const spent = new Map<string, number>();
  return {
    spent,
    async claim(key, limit) {
      const n = spent.get(key) ?? 0;
      if (n >= limit) return false;
      spent.set(key, n + 1);
      return true;
    },
  };
}

describe('scripted engine: limited faults', () => {
  it('"fail once at the third instruction" fails exactly once, even after the model is reloaded', async () => {
    const id = `scripted:once-${Math.random()}?failAfterTokens=2&failName=DeviceLostError&faultFromInstruction=3&failTimes=1`;
    const options = scriptedOptionsFromModelId(id);
    expect(options).toMatchObject({ faultFromInstruction: 3, failTimes: 1, faultKey: id });
    const ledger = countingLedger();
    const engine = new ScriptedMLCEngine({ ...options, tokenDelayMs: 0, faultLedger: ledger });
    await engine.reload(id);
    expect([await attempt(engine, 1), await attempt(engine, 2), await attempt(engine, 3)]).toEqual(['ok', 'ok', 'DeviceLostError']);
    // Device loss unloads the model, like WebLLM.
    expect(await attempt(engine, 4)).toBe('ModelNotLoadedError');
    await engine.reload(id);
    const after = [];
    for (let s = 10; s < 16; s++) after.push(await attempt(engine, s));
    expect(after).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
    expect(ledger.spent.get(`fail:${id}`)).toBe(1);
  });

  it('a second engine sharing the ledger (a restarted worker) does not fail again; failTimes=2 fails twice', async () => {
    const id = `scripted:twice-${Math.random()}?failAfterTokens=1&failName=DeviceLostError&failTimes=2`;
    const ledger = countingLedger();
    const results: string[] = [];
    for (let worker = 0; worker < 3; worker++) {
      const engine = new ScriptedMLCEngine({ ...scriptedOptionsFromModelId(id), tokenDelayMs: 0, faultLedger: ledger });
      await engine.reload(id);
      results.push(await attempt(engine, worker));
    }
    expect(results).toEqual(['DeviceLostError', 'DeviceLostError', 'ok']);
  });

  it('without a limit the old behaviour stays: every request fails', async () => {
    const engine = new ScriptedMLCEngine({ ...scriptedOptionsFromModelId('scripted:x?failAfterTokens=1&failName=Boom'), tokenDelayMs: 0 });
    await engine.reload('scripted:x');
    expect([await attempt(engine, 1), await attempt(engine, 2)]).toEqual(['Boom', 'Boom']);
  });
});
