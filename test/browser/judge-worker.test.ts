/**
 * Constrained JSON across the real engine worker (comlink, scripted model): the judge's chat request reaches the
 * worker's engine and its JSON answer comes back; an interrupt stops it; before a load it fails like complete().
 */
import { describe, expect, it } from 'vitest';
import type { JsonRequest } from '../../src/core/engine';
import { EngineError } from '../../src/core/errors';
import { judgeChatMessages, judgeSchema, parseConstrainedJudgement } from '../../src/core/modes/judge';
import { engineClients, PROBE, SCRIPTED_MODEL } from './support/engine-clients';

const MODEL = SCRIPTED_MODEL;

const client = engineClients();

const request = (candidates: string[], over: Partial<JsonRequest> = {}): JsonRequest => ({
  messages: judgeChatMessages('Why is the sky blue?', candidates),
  schema: judgeSchema(candidates.length),
  schemaName: 'judgement',
  temperature: 0,
  topP: 1,
  maxTokens: 512,
  seed: 11,
  ...over,
});

describe('completeJson through the engine worker', () => {
  it('answers the judge schema with k scores that separate distinct candidates', async () => {
    const engine = client();
    await engine.load(MODEL, PROBE);
    const candidates = ['Rayleigh scattering.', 'Because it reflects the sea.', 'Rayleigh scattering.'];
    const result = await engine.completeJson(request(candidates));
    expect(result.finishReason).toBe('stop');
    const parsed = parseConstrainedJudgement(result.text, 3);
    if (!parsed.ok) throw new Error(parsed.error);
    expect(parsed.scores[0]).toBe(parsed.scores[2]);
    expect(parsed.scores[0]).not.toBe(parsed.scores[1]);
    expect(result.usage.completionTokens).toBeGreaterThan(0);
  });

  it('an abort interrupts the worker’s chat completion and reports abort', async () => {
    const engine = client();
    await engine.load(`${MODEL}?delayMs=20`, PROBE);
    const controller = new AbortController();
    const pending = engine.completeJson(request(['a', 'b']), { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const result = await pending;
    expect(result.finishReason).toBe('abort');
    // The JSON is cut short: ~5 tokens at 20 ms each before the interrupt, far from the whole object.
    expect(parseConstrainedJudgement(result.text, 2).ok).toBe(false);
  });

  it('before a load it rejects with a classified model-not-loaded error', async () => {
    const err = await client().completeJson(request(['a', 'b'])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).kind).toBe('model-not-loaded');
  });
});
