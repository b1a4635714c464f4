// A custom model end to end in the page: the fixture mlc-chat-config.json is served by Vitest's own server, so the
// fetch is real (same origin, no network). Vitest's browser project picks up *.test.ts only, hence h() and no JSX.
import { h, render } from 'preact';
import { afterEach, beforeEach, expect, test } from 'vitest';
import {
  bosTokenFor,
  CustomModelStore,
  effectiveModelUrl,
  fetchConvTemplate,
  mlcChatConfigUrl,
} from '../../src/app/custom-models';
import { MagpieSession, type SessionEngine, type SessionStore } from '../../src/app/session';
import { showTemplateText } from '../../src/app/template-choice';
import { checkPreQueryTemplate, PreQueryTemplateError } from '../../src/core/conv-template';
import { buildCustomTemplate } from '../../src/core/custom-template';
import { getTemplate } from '../../src/core/templates/registry';
import { RunCoordinator } from '../../src/app/run-coordination';
import { CustomModel } from '../../src/ui/CustomModel';
import { useSessionState } from '../../src/ui/useSession';

const STORE_KEY = 'magpie-web:custom-models:test';
const WEIGHTS_URL = `${location.origin}/test/fixtures/custom-model`;
const llama3 = getTemplate('llama-3');

const engine: SessionEngine = {
  capabilities: async () => ({ webgpu: false }),
  listModels: async () => [],
  cachedModels: async () => ({}),
  load: async () => {
    throw new Error('not used');
  },
  complete: async () => {
    throw new Error('not used');
  },
};

let host: HTMLElement | undefined;
let fetched: string[] = [];
const realFetch = window.fetch;

beforeEach(() => {
  localStorage.removeItem(STORE_KEY);
  fetched = [];
  // Count the requests the component makes; the fixture is still fetched for real from Vitest's server.
  window.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    fetched.push(String(input instanceof Request ? input.url : input));
    return realFetch(input, init);
  };
});

afterEach(() => {
  window.fetch = realFetch;
  if (host) render(null, host);
  host?.remove();
  localStorage.removeItem(STORE_KEY);
});

const settle = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));

function mount(): { el: HTMLElement; session: MagpieSession } {
  const session = new MagpieSession(engine, {} as SessionStore, {
    customModels: new CustomModelStore(localStorage, STORE_KEY),
    coordinator: new RunCoordinator({ locks: null, channel: null }),
    schedule: (flush) => setTimeout(flush, 0),
  });
  host = document.createElement('div');
  document.body.append(host);
  const Wrapper = () => h(CustomModel, { session, state: useSessionState(session) });
  render(h(Wrapper, {}), host);
  return { el: host, session };
}

function type(el: HTMLElement, selector: string, value: string): void {
  const input = el.querySelector<HTMLInputElement | HTMLTextAreaElement>(selector);
  if (!input) throw new Error(`no ${selector}`);
  input.value = value;
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

function button(el: HTMLElement, text: RegExp): HTMLButtonElement {
  const found = [...el.querySelectorAll('button')].find((b) => text.test(b.textContent ?? ''));
  if (!found) throw new Error(`no button ${String(text)}`);
  return found;
}

test('the fixture conv_template fetched from a weights URL derives the registry Llama-3 pre-query', async () => {
  expect(effectiveModelUrl(WEIGHTS_URL)).toBe(`${WEIGHTS_URL}/resolve/main/`);
  const conv = await fetchConvTemplate(mlcChatConfigUrl(WEIGHTS_URL));
  expect(conv.name).toBe('llama-3');
  expect(bosTokenFor(conv)).toBe('<|begin_of_text|>');
  const template = buildCustomTemplate({ source: 'conv_template', preQuery: llama3.preQuery(), convTemplate: conv });
  expect(template.preQuery()).toBe(llama3.preQuery());
  expect(template.preQuery({ system: 'Ask about chemistry.' })).toBe(llama3.preQuery({ system: 'Ask about chemistry.' }));
  const turn = [{ role: 'user' as const, content: 'What is a prime number?' }];
  expect(template.render(turn, { addGenerationPrompt: true })).toBe(llama3.render(turn, { addGenerationPrompt: true }));
  expect(template.responseStop).toEqual(expect.arrayContaining(['<|eot_id|>', '<|end_of_text|>']));
});

test('a missing config is reported with its URL', async () => {
  const url = mlcChatConfigUrl(`${location.origin}/test/fixtures/no-such-model`);
  await expect(fetchConvTemplate(url)).rejects.toThrow(url);
});

test('Add a model: asks before fetching, shows the derived template, rejects a bad edit at the field, saves to localStorage', async () => {
  const { el, session } = mount();
  await settle();
  type(el, '#custom-name', 'My-Llama-3-8B-q4f16_1-MLC');
  type(el, '#custom-model-url', WEIGHTS_URL);
  type(el, '#custom-lib-url', `${location.origin}/libs/Llama-3-8B-Instruct-q4f16_1-webgpu.wasm`);
  type(el, '#custom-vram', '5001');
  await settle();
  expect(el.querySelector('[data-testid="effective-url"]')?.textContent).toContain(`${WEIGHTS_URL}/resolve/main/`);

  button(el, /Read the template/).click();
  await settle();
  const consent = el.querySelector('[data-testid="fetch-consent"]');
  expect(consent?.textContent).toContain(location.origin);
  expect(consent?.textContent).toContain('leaves this machine');
  // Nothing has left the page before the user agrees.
  expect(fetched.filter((u) => u.includes('mlc-chat-config.json'))).toEqual([]);

  button(el, /^Fetch from/).click();
  await settle(200);
  expect(fetched).toEqual([mlcChatConfigUrl(WEIGHTS_URL)]);
  const textarea = el.querySelector<HTMLTextAreaElement>('#custom-pre-query');
  expect(textarea?.value).toBe(llama3.preQuery());
  expect(el.querySelector('[data-testid="custom-pre-query-shown"]')?.textContent).toBe(showTemplateText(llama3.preQuery()));
  expect(el.querySelector<HTMLInputElement>('#custom-bos')?.value).toBe('<|begin_of_text|>');

  // Ends after the end-of-turn token: the model would not be writing a user message.
  const bad = `${llama3.preQuery()}Hello<|eot_id|>`;
  type(el, '#custom-pre-query', bad);
  await settle();
  let expected = '';
  try {
    checkPreQueryTemplate(bad, buildCustomTemplate({ source: 'conv_template', preQuery: llama3.preQuery(), convTemplate: await fetchConvTemplate(mlcChatConfigUrl(WEIGHTS_URL)) }));
  } catch (err) {
    expect(err).toBeInstanceOf(PreQueryTemplateError);
    expected = (err as Error).message;
  }
  expect(expected).not.toBe('');
  const error = el.querySelector('#custom-preQuery-error');
  expect(error?.textContent).toBe(expected);
  expect(textarea?.getAttribute('aria-invalid')).toBe('true');
  button(el, /^Save model$/).click();
  await settle();
  expect(localStorage.getItem(STORE_KEY)).toBeNull();

  // A hand-written pre-query with its own system block is allowed: it ends with the user header.
  const custom = `<|start_header_id|>system<|end_header_id|>\n\nAsk about chemistry.<|eot_id|>${llama3.userHeader}`;
  type(el, '#custom-pre-query', custom);
  await settle();
  expect(el.querySelector('#custom-preQuery-error')).toBeNull();
  button(el, /^Save model$/).click();
  await settle();

  const reloaded = new CustomModelStore(localStorage, STORE_KEY).list();
  expect(reloaded).toHaveLength(1);
  const saved = reloaded[0];
  expect(saved).toMatchObject({
    modelId: 'My-Llama-3-8B-q4f16_1-MLC',
    kind: 'url',
    modelUrl: WEIGHTS_URL,
    vramMB: 5001,
    template: { source: 'custom', preQuery: custom, bosToken: '<|begin_of_text|>' },
  });
  expect(saved?.template.convTemplate?.stop_token_ids).toEqual([128001, 128009]);
  expect(session.state.customModels.map((m) => m.modelId)).toEqual(['My-Llama-3-8B-q4f16_1-MLC']);
  expect(session.state.selectedModelId).toBe('My-Llama-3-8B-q4f16_1-MLC');
  // The saved model's template rebuilds to the hand-written pre-query, with the conv_template's responses.
  const rebuilt = saved ? buildCustomTemplate(saved.template) : undefined;
  expect(rebuilt?.preQuery()).toBe(custom);
  expect(rebuilt?.bosToken).toBe('<|begin_of_text|>');
  expect(session.templateFor('My-Llama-3-8B-q4f16_1-MLC')?.preQuery()).toBe(custom);

  button(el, /^Remove My-Llama/).click();
  await settle();
  expect(new CustomModelStore(localStorage, STORE_KEY).list()).toEqual([]);
});
