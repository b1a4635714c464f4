/**
 * A pure Server-Sent Events parser (the WHATWG event-stream format) fed with raw bytes as they arrive.
 * Bytes may be split anywhere: inside a line, between CR and LF, or inside a multi-byte UTF-8 character.
 */

export interface SseEvent {
  /** The `event:` field, or 'message' when the server sent none. */
  event: string;
  /** The `data:` lines of the event joined with '\n'. */
  data: string;
  /** The `id:` field, when present. */
  id?: string;
}

export class SseParser {
  // A streaming decoder keeps an incomplete UTF-8 sequence until its remaining bytes arrive.
  private readonly decoder = new TextDecoder('utf-8');
  private buffer = '';
  /** The previous chunk ended with CR, so a LF at the start of the next one belongs to the same line break. */
  private pendingCr = false;
  private dataLines: string[] = [];
  private eventName = '';
  private eventId: string | undefined;

  /** Feeds bytes (or already decoded text) and returns the events completed by them. */
  push(chunk: Uint8Array | string): SseEvent[] {
    const text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    return this.consume(text, false);
  }

  /**
   * Ends the stream: flushes the decoder and dispatches a final event even without its closing blank line,
   * because some servers close the connection right after the last `data:` line.
   */
  end(): SseEvent[] {
    const rest = this.decoder.decode();
    return this.consume(rest, true);
  }

  private consume(text: string, final: boolean): SseEvent[] {
    const events: SseEvent[] = [];
    let s = text;
    if (this.pendingCr && s.length > 0) {
      if (s.startsWith('\n')) s = s.slice(1);
      this.pendingCr = false;
    }
    this.buffer += s;

    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.buffer.slice(start, i);
      if (c === 13) {
        if (i + 1 < this.buffer.length) {
          if (this.buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          // CR is the last character seen so far: a LF may still follow in the next chunk.
          this.pendingCr = true;
        }
      }
      start = i + 1;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.buffer = this.buffer.slice(start);

    if (final) {
      if (this.buffer.length > 0) {
        const event = this.line(this.buffer);
        if (event) events.push(event);
        this.buffer = '';
      }
      const last = this.dispatch();
      if (last) events.push(last);
      this.pendingCr = false;
    }
    return events;
  }

  /** Handles one complete line; a blank line dispatches the event gathered so far. */
  private line(line: string): SseEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.dataLines.push(value);
        break;
      case 'event':
        this.eventName = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.eventId = value;
        break;
      default:
        // `retry:` and unknown fields do not matter to a completion stream.
        break;
    }
    return undefined;
  }

  private dispatch(): SseEvent | undefined {
    const hadData = this.dataLines.length > 0;
    const event: SseEvent = { event: this.eventName || 'message', data: this.dataLines.join('\n') };
    if (this.eventId !== undefined) event.id = this.eventId;
    this.dataLines = [];
    this.eventName = '';
    // Per the format, an event without data lines is not dispatched.
    return hadData ? event : undefined;
  }
}

/** Parses a whole event stream at once (handy for tests and non-incremental callers). */
export function parseSse(input: Uint8Array | string): SseEvent[] {
  const parser = new SseParser();
  return [...parser.push(input), ...parser.end()];
}
