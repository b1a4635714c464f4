/** The page's server-engine controller against the loopback test server: consent, listing, BOS probe, hand-over. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ServerEngineController,
  parseConcurrency,
  splitBaseUrls,
  type KeyValueStorage,
  type RemoteEngine,
} from '../../src/app/server-engine';
import { OpenAICompatibleEngine } from '../../src/engine/openai-engine';
import { start, type TestServer } from '../support/openai-test-server';

const MODEL = 'test/llama-3-8b-instruct';

class MemoryStorage implements KeyValueStorage {
  readonly map = new Map<string, string>();
  getItem(key: string): string | null {
    return this.map.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.map.set(key, value);
  }
  removeItem(key: string): void {
    this.map.delete(key);
  }
}

class Host {
  remote: RemoteEngine | null = null;
  handovers = 0;
  useRemoteEngine(remote: RemoteEngine | null): void {
    this.remote = remote;
    this.handovers++;
  }
}

let plain: TestServer;
let bosServer: TestServer;
beforeAll(async () => {
  plain = await start({ models: [MODEL, 'other/model'], apiKey: 'sk-unit' });
  bosServer = await start({ models: [MODEL], addsBos: true });
});
afterAll(async () => {
  await Promise.all([plain.close(), bosServer.close()]);
});

function controller(local = new MemoryStorage(), session = new MemoryStorage(), host = new Host()) {
  const c = new ServerEngineController(host, {
    local,
    session,
    createEngine: (o) => new OpenAICompatibleEngine({ ...o, inBrowser: false, maxRetries: 0 }),
  });
  return { c, host, local, session };
}

/** Waits until the controller asks for consent, then answers. */
async function answerWhenAsked(c: ServerEngineController, yes: boolean): Promise<string[]> {
  for (let i = 0; i < 200 && c.state.status !== 'consent'; i++) await new Promise((r) => setTimeout(r, 5));
  const origins = c.state.consentOrigins;
  c.answerConsent(yes);
  return origins;
}

describe('ServerEngineController', () => {
  test('asks before the first request, lists models, probes BOS and hands a ready engine to the session', async () => {
    const { c, host, session } = controller();
    c.setKind('server');
    c.setBaseUrls(`${plain.url}/v1/\n`);
    c.setApiKey('sk-unit');
    const before = plain.stats.requests;
    const connecting = c.connect();
    const asked = await answerWhenAsked(c, true);
    expect(asked).toEqual([plain.url]);
    await connecting;
    expect(c.state.status).toBe('ready');
    expect(c.state.models).toEqual([MODEL, 'other/model']);
    expect(c.state.addsBos).toBe(false);
    expect(host.remote).toMatchObject({ modelId: MODEL, templateId: 'llama-3', addsBos: false, baseUrls: [plain.url], concurrency: 8 });
    // One model listing and one probe completion.
    expect(plain.stats.requests - before).toBe(2);
    expect(JSON.parse(session.getItem('magpie-web.server-consent') ?? '[]')).toEqual([plain.url]);

    // Consent is remembered for the session: reconnecting does not ask again.
    await c.connect();
    expect(c.state.status).toBe('ready');

    // A model without a known family needs the user's pick, and gets no engine until then.
    c.selectModel('other/model');
    await new Promise((r) => setTimeout(r, 20));
    expect(c.state.status).toBe('error');
    expect(c.state.error?.advice).toMatch(/template family/);
    expect(host.remote).toBeNull();
    c.setTemplateOverride('llama-3');
    for (let i = 0; i < 100 && c.state.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 5));
    expect(host.remote?.modelId).toBe('other/model');

    // Invalid concurrency takes the engine back; a valid one hands it over again.
    c.setConcurrency('0');
    expect(c.state.concurrencyError).toMatch(/between 1 and/);
    expect(host.remote).toBeNull();
    c.setConcurrency('12');
    expect(host.remote?.concurrency).toBe(12);

    c.setKind('webgpu');
    expect(host.remote).toBeNull();
  });

  test('declining sends nothing', async () => {
    const { c, host } = controller();
    c.setKind('server');
    c.setBaseUrls(plain.url);
    const before = plain.stats.requests;
    const connecting = c.connect();
    await answerWhenAsked(c, false);
    await connecting;
    expect(plain.stats.requests).toBe(before);
    expect(c.state.status).toBe('idle');
    expect(c.state.note).toMatch(/nothing was sent/);
    expect(host.remote).toBeNull();
  });

  test('the API key is stored only with "remember"; a wrong key is an auth error', async () => {
    const { c, local } = controller();
    c.setKind('server');
    c.setBaseUrls(plain.url);
    c.setApiKey('sk-wrong');
    expect([...local.map.values()].join(' ')).not.toContain('sk-wrong');
    const connecting = c.connect();
    await answerWhenAsked(c, true);
    await connecting;
    expect(c.state.status).toBe('error');
    expect(c.state.error?.kind).toBe('unauthorized');

    c.setRememberKey(true);
    expect(local.getItem('magpie-web.server-api-key')).toBe('sk-wrong');
    c.setApiKey('sk-unit');
    expect(local.getItem('magpie-web.server-api-key')).toBe('sk-unit');
    // A new controller (a reload) gets the remembered key and settings back.
    const again = new ServerEngineController(new Host(), { local, session: new MemoryStorage() });
    expect(again.state).toMatchObject({ kind: 'server', baseUrlsText: plain.url, apiKey: 'sk-unit', rememberKey: true });
    c.setRememberKey(false);
    expect(local.getItem('magpie-web.server-api-key')).toBeNull();
  });

  test('servers that disagree on BOS are refused; one that adds BOS is measured as such', async () => {
    const { c, host } = controller();
    c.setKind('server');
    c.setBaseUrls(bosServer.url);
    const one = c.connect();
    await answerWhenAsked(c, true);
    await one;
    expect(c.state.addsBos).toBe(true);
    expect(host.remote?.addsBos).toBe(true);

    const mixed = controller();
    mixed.c.setKind('server');
    mixed.c.setApiKey('sk-unit');
    mixed.c.setBaseUrls(`${plain.url}\n${bosServer.url}`);
    const both = mixed.c.connect();
    expect((await answerWhenAsked(mixed.c, true)).length).toBe(2);
    await both;
    expect(mixed.c.state.status).toBe('error');
    expect(mixed.c.state.error?.message).toMatch(/disagree/);
    expect(mixed.host.remote).toBeNull();
  });

  test('parses base URL lines and concurrency', () => {
    expect(splitBaseUrls(' http://a:1 \n\n http://b:2/v1\r\n')).toEqual(['http://a:1', 'http://b:2/v1']);
    expect(parseConcurrency('8')).toBe(8);
    expect(parseConcurrency('2.5')).toMatch(/whole number/);
    expect(parseConcurrency('9999')).toMatch(/between 1 and 256/);
  });
});
