// Vitest's browser project only picks up *.test.ts, so this renders with h() instead of JSX.
import { h, render } from 'preact';
import { afterEach, expect, test } from 'vitest';
import { emptyCounters, type MagpieRecord, type Run } from '../../src/core/record';
import { PreferenceReview } from '../../src/ui/PreferenceReview';
import { RecordsList } from '../../src/ui/RecordsList';
import { RunsList } from '../../src/ui/RunsList';
import type { MagpieSession, SessionState } from '../../src/app/session';

const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b>';

function record(seq: number, instruction: string, response: string): MagpieRecord {
  const step = {
    prompt: '',
    temperature: 1,
    topP: 1,
    maxTokens: 64,
    stop: [],
    seed: null,
    finishReason: 'stop' as const,
    promptTokens: 4,
    completionTokens: 8,
    durationMs: 5,
  };
  return {
    uuid: `u-${seq}`,
    runId: 'r1',
    seq,
    modelId: 'm',
    engine: 'scripted',
    templateId: 'llama-3',
    preQueryTemplate: '',
    instruction,
    response,
    instructionStep: step,
    responseStep: step,
    createdAt: 0,
  };
}

let host: HTMLElement | undefined;
afterEach(() => {
  if (host) render(null, host);
  host?.remove();
});

function mount(): HTMLElement {
  host = document.createElement('div');
  document.body.append(host);
  return host;
}

test('records with HTML in the instruction and response are shown as literal text', async () => {
  const el = mount();
  render(h(RecordsList, { records: [record(2, HOSTILE, `Answer: ${HOSTILE}`), record(1, 'plain', 'text')], total: 2 }), el);
  await new Promise((r) => setTimeout(r, 50));
  expect(el.querySelector('img')).toBeNull();
  expect(el.querySelector('script')).toBeNull();
  expect(el.querySelector('b')).toBeNull();
  const summaries = [...el.querySelectorAll('summary .instruction')].map((s) => s.textContent);
  expect(summaries).toEqual([HOSTILE, 'plain']);
  expect(el.querySelector('.response')?.textContent).toBe(`Answer: ${HOSTILE}`);
  expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
});

test('"Load more" appears only while older records remain, and calls back', () => {
  const el = mount();
  let calls = 0;
  const onLoadMore = () => {
    calls += 1;
  };
  render(h(RecordsList, { records: [record(3, 'a', 'b')], total: 3, onLoadMore }), el);
  const button = [...el.querySelectorAll('button')].find((b) => b.textContent?.startsWith('Load more'));
  expect(button?.textContent).toBe('Load more (2 older)');
  button?.click();
  expect(calls).toBe(1);
  render(h(RecordsList, { records: [record(3, 'a', 'b')], total: 1, onLoadMore }), el);
  expect([...el.querySelectorAll('button')].some((b) => b.textContent?.startsWith('Load more'))).toBe(false);
});

test('a run label with HTML is shown as text in the runs list', () => {
  const el = mount();
  const run: Run = {
    id: 'r1',
    label: HOSTILE,
    createdAt: 0,
    updatedAt: 0,
    status: 'stopped',
    modelId: 'm',
    engine: 'scripted',
    templateId: 'llama-3',
    engineAddsBos: false,
    settings: { count: 3, seed: null, instruction: { temperature: 1, topP: 1, maxTokens: 8 }, response: { temperature: 0, topP: 1, maxTokens: 8 } },
    counters: emptyCounters(),
  };
  const state = { runs: [run], selectedRunId: 'r1', activeRunId: null } as unknown as SessionState;
  render(h(RunsList, { session: {} as MagpieSession, state }), el);
  expect(el.querySelector('img')).toBeNull();
  expect(el.querySelector('.run-label')?.textContent).toBe(HOSTILE);
  expect(el.querySelector('button[aria-label]')?.getAttribute('aria-label')).toBe(`Delete run ${HOSTILE}`);
});

test('the preference review says how each record was judged: by hand, by the model via constrained JSON or the raw fallback', async () => {
  const el = mount();
  const judged = (seq: number, judgement?: MagpieRecord['judgement']): MagpieRecord => {
    const r = record(seq, `Question ${seq}?`, 'A');
    r.candidates = [
      { text: 'first', step: r.responseStep },
      { text: 'second', step: r.responseStep },
    ];
    if (judgement) r.judgement = judgement;
    return r;
  };
  const records = [
    judged(1, { by: 'manual', chosen: 1, rejected: 0 }),
    judged(2, { by: 'model', chosen: 0, rejected: 1, scores: [9, 2], via: 'constrained' }),
    judged(3, { by: 'model', chosen: 1, rejected: 0, scores: [1, 8], via: 'raw' }),
    judged(4, { by: 'model', chosen: 0, rejected: 1, scores: [5, 4] }),
    judged(5),
  ];
  render(h(PreferenceReview, { session: {} as MagpieSession, records }), el);
  await new Promise((r) => setTimeout(r, 50));
  const status = [...el.querySelectorAll('[data-testid="judgement-status"]')].map((p) => p.textContent);
  expect(status).toEqual([
    'Judged by hand: chosen 2, rejected 1',
    'Judged by the model (constrained JSON): chosen 1, rejected 2',
    'Judged by the model (raw-text fallback): chosen 2, rejected 1',
    'Judged by the model: chosen 1, rejected 2',
    'Not judged yet',
  ]);
});
