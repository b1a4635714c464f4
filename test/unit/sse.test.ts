import { describe, expect, test } from 'vitest';
import { parseSse, SseParser, type SseEvent } from '../../src/core/sse';

const encode = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Feeds the bytes in pieces cut at the given offsets. */
function feed(bytes: Uint8Array, cuts: number[]): SseEvent[] {
  const parser = new SseParser();
  const events: SseEvent[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    events.push(...parser.push(bytes.slice(from, cut)));
    from = cut;
  }
  events.push(...parser.end());
  return events;
}

describe('SseParser', () => {
  test('data lines, [DONE], comments and blank lines', () => {
    const events = parseSse(': keep-alive\n\ndata: {"a":1}\n\n\n\ndata: [DONE]\n\n');
    expect(events.map((e) => e.data)).toEqual(['{"a":1}', '[DONE]']);
    expect(events[0]?.event).toBe('message');
  });

  test('CRLF, lone CR, and data without the space after the colon', () => {
    expect(parseSse('data: a\r\n\r\ndata:b\r\rdata: c\n\n').map((e) => e.data)).toEqual(['a', 'b', 'c']);
  });

  test('multi-line data joins with newlines; event and id fields are kept', () => {
    const [e] = parseSse('event: error\nid: 7\ndata: line 1\ndata: line 2\n\n');
    expect(e).toEqual({ event: 'error', id: '7', data: 'line 1\nline 2' });
  });

  test('an event with no data lines is not dispatched; unknown fields are ignored', () => {
    expect(parseSse('event: ping\n\nretry: 10\nfoo: bar\n\ndata: x\n\n').map((e) => e.data)).toEqual(['x']);
  });

  test('a last event without its blank line is dispatched at the end', () => {
    expect(parseSse('data: one\n\ndata: two').map((e) => e.data)).toEqual(['one', 'two']);
  });

  test('CR and LF of one line break split across chunks make one break, not two', () => {
    const parser = new SseParser();
    const out = [...parser.push('data: a\r'), ...parser.push('\ndata: b\r'), ...parser.push('\n\r'), ...parser.push('\n')];
    expect(out.map((e) => e.data)).toEqual(['a\nb']);
  });

  test('multi-byte UTF-8 split at every byte boundary decodes the same', () => {
    const text = 'data: {"text":"caf\u00e9 \u65e5\u672c \ud83e\udd9c \u0645\u0631\u062d\u0628\u0627"}\r\n\r\ndata: [DONE]\r\n\r\n';
    const bytes = encode(text);
    const whole = parseSse(bytes);
    expect(whole.map((e) => e.data)).toEqual(['{"text":"café 日本 🦜 مرحبا"}', '[DONE]']);
    for (let i = 1; i < bytes.length; i++) expect(feed(bytes, [i])).toEqual(whole);
    // One byte at a time.
    expect(feed(bytes, Array.from({ length: bytes.length - 1 }, (_, i) => i + 1))).toEqual(whole);
  });

  test('random chunkings of a long stream all give the same events', () => {
    const lines = Array.from({ length: 50 }, (_, i) => `data: {"i":${i},"t":"\u00e9\ud83e\udd9c${i}"}\n\n`);
    const bytes = encode(`: hello\n\n${lines.join('')}data: [DONE]\n\n`);
    const whole = parseSse(bytes);
    expect(whole).toHaveLength(51);
    let seed = 12345;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let round = 0; round < 20; round++) {
      const cuts = Array.from({ length: 30 }, () => 1 + Math.floor(rand() * (bytes.length - 1))).sort((a, b) => a - b);
      expect(feed(bytes, cuts)).toEqual(whole);
    }
  });
});
