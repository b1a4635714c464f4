// Recipes of custom-model runs (version 2: template.custom) and the version-1 recipes every other run still writes.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parseConvTemplate } from '../../src/core/conv-template';
import { buildCustomTemplate, convTemplateSpec, withPreQuery, type CustomTemplateSpec } from '../../src/core/custom-template';
import { DEFAULT_MODE_SETTINGS, buildRecipe, canonicalJson, parseRecipe, recipeHash, recipeTemplate, type Recipe } from '../../src/core/recipe';
import { sha256Hex } from '../../src/core/sha256';
import { samePrompts } from '../../src/core/template-compat';
import { getTemplate } from '../../src/core/templates/registry';
import { makeRecipe } from '../support/modes';

const conv = parseConvTemplate(
  JSON.parse(readFileSync(new URL('../fixtures/custom-model/resolve/main/mlc-chat-config.json', import.meta.url), 'utf8')) as unknown,
);
const BIRDS = '<|start_header_id|>system<|end_header_id|>\n\nAsk about birds.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n';

function customRecipe(spec: CustomTemplateSpec): Recipe {
  return buildRecipe({
    model: 'My-Llama-q4f32_1-MLC',
    engine: 'webllm',
    template: buildCustomTemplate(spec),
    settings: { count: 3, seed: 7, instruction: { temperature: 1, topP: 1, maxTokens: 256 }, response: { temperature: 0, topP: 1, maxTokens: 512 } },
    modes: DEFAULT_MODE_SETTINGS,
    customTemplate: spec,
  });
}

/** What the run sends for one record: BOS + pre-query, and the rendered response prompt. */
function prompts(t: ReturnType<typeof recipeTemplate>): string[] {
  return [t.id, t.bosToken + t.preQuery(), t.render([{ role: 'user', content: 'Q?' }], { addGenerationPrompt: true }), ...t.responseStop];
}

describe('recipes of custom-model runs', () => {
  const specs: Array<[string, CustomTemplateSpec]> = [
    ['a conv_template as is', convTemplateSpec(conv, '<|begin_of_text|>')],
    ['a custom pre-query on a conv_template', withPreQuery({ convTemplate: conv, bosToken: '<|begin_of_text|>' }, BIRDS)],
    ['a custom pre-query on a registry format', withPreQuery({ baseTemplateId: 'llama-3' }, BIRDS)],
  ];

  test.each(specs)('%s: version 2, the template survives the JSON round trip and renders the same prompts', (_name, spec) => {
    const recipe = customRecipe(spec);
    expect(recipe.version).toBe(2);
    expect(recipe.template).toEqual({ id: buildCustomTemplate(spec).id, custom: spec });
    const parsed = parseRecipe(JSON.stringify(recipe));
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    expect(parsed.recipe).toEqual(recipe);
    expect(recipeHash(parsed.recipe)).toBe(recipeHash(recipe));
    expect(prompts(recipeTemplate(parsed.recipe))).toEqual(prompts(buildCustomTemplate(spec)));
  });

  test('the custom template is part of the hash', () => {
    const base = customRecipe(withPreQuery({ baseTemplateId: 'llama-3' }, BIRDS));
    const fish = customRecipe(withPreQuery({ baseTemplateId: 'llama-3' }, BIRDS.replace('birds', 'fish')));
    expect(fish.template.id).toBe(base.template.id);
    expect(recipeHash(fish)).not.toBe(recipeHash(base));
    const bos = structuredClone(base);
    bos.template.custom = { ...bos.template.custom!, bosToken: '<s>' };
    expect(recipeHash(bos)).not.toBe(recipeHash(base));
  });

  test('a spec with extra or null fields is normalized when built, so the hash is what the importer computes', () => {
    const spec = convTemplateSpec(conv, '<|begin_of_text|>');
    const noisy = { ...spec, convTemplate: { ...spec.convTemplate!, unknown_field: 'x', roles: { ...spec.convTemplate!.roles, tool: 'x' } } };
    expect(recipeHash(customRecipe(noisy as CustomTemplateSpec))).toBe(recipeHash(customRecipe(spec)));
    const recipe = customRecipe(noisy as CustomTemplateSpec);
    const parsed = parseRecipe(JSON.parse(JSON.stringify(recipe)) as unknown);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    expect(recipeHash(parsed.recipe)).toBe(recipeHash(recipe));
    expect(recipe.template.custom).toEqual(spec);
  });

  test('version 1 recipes still parse, keep version 1 and hash exactly their own canonical JSON', () => {
    const recipe = makeRecipe(getTemplate('llama-3.1', { dateString: '01 Feb 2025' }));
    expect(recipe.version).toBe(1);
    expect(recipe.template).toEqual({ id: 'llama-3.1', dateString: '01 Feb 2025' });
    const v1 = JSON.parse(JSON.stringify(recipe)) as Record<string, unknown>;
    const parsed = parseRecipe(v1);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    expect(parsed.recipe.version).toBe(1);
    expect(recipeHash(parsed.recipe)).toBe(sha256Hex(canonicalJson(v1)));
    expect(recipeTemplate(parsed.recipe).render([{ role: 'user', content: 'Q' }], { addGenerationPrompt: true })).toContain('Today Date: 01 Feb 2025');
  });

  test('problems are reported at their field', () => {
    const recipe = customRecipe(withPreQuery({ baseTemplateId: 'llama-3' }, BIRDS));
    const errorsOf = (value: unknown): string[] => {
      const parsed = parseRecipe(value);
      return parsed.ok ? [] : parsed.errors.map((e) => `${e.path}: ${e.message}`);
    };
    // A recipe exported before version 2 from a custom-model run: the id names no registry template.
    const { custom: _dropped, ...bare } = recipe.template;
    expect(errorsOf({ ...recipe, version: 1, template: bare })).toEqual([expect.stringMatching(/^template\.id: .*not a known chat template.*template\.custom/)]);
    expect(errorsOf({ ...recipe, version: 1 })).toEqual(['template.custom: needs recipe version 2']);
    expect(errorsOf({ ...recipe, template: { ...recipe.template, id: 'llama-3' } })).toEqual([
      'template.id: must be "llama-3+custom-pre-query", the id of template.custom',
    ]);
    expect(errorsOf({ ...recipe, template: { ...recipe.template, custom: { ...recipe.template.custom, preQuery: 'no header' } } })).toEqual([
      expect.stringMatching(/^template\.custom: /),
    ]);
    expect(errorsOf({ ...recipe, template: { ...recipe.template, custom: { ...recipe.template.custom, baseTemplateId: 'nope' } } })).toEqual([
      expect.stringMatching(/^template\.custom: Unknown chat template "nope"/),
    ]);
    expect(errorsOf({ ...recipe, version: 3 }).map((e) => e.split(':')[0])).toEqual(['version']);
  });
});

describe('samePrompts', () => {
  test('the same format with the same date matches; another family, variant or date does not', () => {
    const d = { dateString: '01 Feb 2025' };
    expect(samePrompts(getTemplate('llama-3.1', d), getTemplate('llama-3.2', d))).toBe(true);
    expect(samePrompts(getTemplate('llama-3.1-bare-query', d), getTemplate('llama-3.2-bare-query', d))).toBe(true);
    expect(samePrompts(getTemplate('llama-3.1', d), getTemplate('llama-3.2', { dateString: '02 Feb 2025' }))).toBe(false);
    expect(samePrompts(getTemplate('llama-3.1-bare-query', d), getTemplate('llama-3.2', d))).toBe(false);
    expect(samePrompts(getTemplate('llama-3.1', d), getTemplate('qwen2.5'))).toBe(false);
    // The conv_template of the fixture stops on other strings than the registry's Llama-3: not the same prompts.
    expect(samePrompts(buildCustomTemplate(convTemplateSpec(conv, '<|begin_of_text|>')), getTemplate('llama-3'))).toBe(false);
    // A custom pre-query equal to the registry's refuses system prompts: equal only for a run without them.
    const custom = buildCustomTemplate(withPreQuery({ baseTemplateId: 'llama-3' }, getTemplate('llama-3').preQuery()));
    expect(samePrompts(custom, getTemplate('llama-3'))).toBe(true);
    expect(samePrompts(custom, getTemplate('llama-3'), ['Ask about birds.'])).toBe(false);
  });
});
