/**
 * Templates for models the registry does not know: one derived from the `conv_template` of a model's
 * mlc-chat-config.json (rendered the way WebLLM's chat path assembles a prompt), and a user-written pre-query
 * template, validated so that it ends where a user message begins.
 */
import { GENERIC_QUIRKS } from './quirks';
import { DEFAULT_INSTRUCTION, DEFAULT_RESPONSE } from './settings';
import { cutPreQuery, preQueryHistory } from './templates/turns';
import { getTemplate, listTemplates } from './templates/registry';
import type { ChatMessage, FamilyTemplate } from './templates/types';

/** The `conv_template` object of an mlc-chat-config.json (the fields WebLLM reads). */
export interface MlcConvTemplate {
  name?: string;
  system_template: string;
  system_message: string;
  system_prefix_token_ids?: number[] | null;
  roles: { user: string; assistant: string; tool?: string };
  role_templates?: { user?: string; assistant?: string; tool?: string } | null;
  seps: string[];
  role_content_sep?: string | null;
  role_empty_sep?: string | null;
  stop_str: string[];
  stop_token_ids: number[];
  add_role_after_system_message?: boolean | null;
  render_empty_system_message?: boolean | null;
}

const SYSTEM = '{system_message}';
const PLACEHOLDER = { user: '{user_message}', assistant: '{assistant_message}' } as const;
const FUNCTION = '{function_string}';

/** Check an unknown JSON value (a fetched mlc-chat-config.json, or its conv_template) and return the template. */
export function parseConvTemplate(json: unknown): MlcConvTemplate {
  const root = isObject(json) && isObject(json.conv_template) ? json.conv_template : json;
  if (!isObject(root)) throw new Error('conv_template: expected an object.');
  const str = (key: string): string => {
    const v = root[key];
    if (typeof v !== 'string') throw new Error(`conv_template.${key}: expected a string.`);
    return v;
  };
  const strings = (key: string): string[] => {
    const v = root[key];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
      throw new Error(`conv_template.${key}: expected a list of strings.`);
    }
    return v as string[];
  };
  const numbers = (key: string): number[] => {
    const v = root[key];
    if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) {
      throw new Error(`conv_template.${key}: expected a list of token ids.`);
    }
    return v as number[];
  };
  const optional = <T>(key: string, read: (key: string) => T): T | undefined =>
    root[key] === undefined || root[key] === null ? undefined : read(key);
  const roles = root.roles;
  if (!isObject(roles) || typeof roles.user !== 'string' || typeof roles.assistant !== 'string') {
    throw new Error('conv_template.roles: expected {user, assistant} strings.');
  }
  const roleTemplates = root.role_templates;
  if (roleTemplates !== undefined && roleTemplates !== null && !isObject(roleTemplates)) {
    throw new Error('conv_template.role_templates: expected an object.');
  }
  const seps = strings('seps');
  if (seps.length === 0) throw new Error('conv_template.seps: WebLLM needs at least one separator.');
  const flag = (key: string): boolean | undefined => {
    const v = root[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw new Error(`conv_template.${key}: expected true or false.`);
    return v;
  };
  const template: MlcConvTemplate = {
    system_template: str('system_template'),
    system_message: str('system_message'),
    roles: { user: roles.user, assistant: roles.assistant },
    seps,
    stop_str: strings('stop_str'),
    stop_token_ids: numbers('stop_token_ids'),
  };
  const name = optional('name', str);
  if (name !== undefined) template.name = name;
  const prefix = optional('system_prefix_token_ids', numbers);
  if (prefix !== undefined) template.system_prefix_token_ids = prefix;
  if (isObject(roleTemplates)) {
    const rt: NonNullable<MlcConvTemplate['role_templates']> = {};
    for (const role of ['user', 'assistant'] as const) {
      const v = roleTemplates[role];
      if (typeof v === 'string') rt[role] = v;
    }
    template.role_templates = rt;
  }
  const contentSep = optional('role_content_sep', str);
  if (contentSep !== undefined) template.role_content_sep = contentSep;
  const emptySep = optional('role_empty_sep', str);
  if (emptySep !== undefined) template.role_empty_sep = emptySep;
  const addRole = flag('add_role_after_system_message');
  if (addRole !== undefined) template.add_role_after_system_message = addRole;
  const renderEmpty = flag('render_empty_system_message');
  if (renderEmpty !== undefined) template.render_empty_system_message = renderEmpty;
  return template;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export interface ConvTemplateOptions {
  /** Id stored on runs; default `conv:{name}`. */
  id?: string;
  /**
   * Text of the begin-of-sequence token (system_prefix_token_ids holds only ids). '' when unknown: then the prompt
   * relies on the engine's measured BOS behaviour.
   */
  bosToken?: string;
  /** A string that is exactly one token for this model (for the BOS probe); default: its first stop string. */
  probeToken?: string;
  /**
   * Render the conv_template's default system_message when the conversation has none, as WebLLM's chat path does.
   * Default false: no injected system prompt in Magpie prompts (magpie-method.md §3).
   */
  useDefaultSystem?: boolean;
}

/** A conv_template's separators and role strings that can be stop strings (not plain whitespace). */
const visible = (items: readonly (string | undefined)[]): string[] =>
  [...new Set(items.filter((s): s is string => s !== undefined && s.trim() !== ''))];

/**
 * A ChatTemplate from a model's conv_template, rendering what WebLLM's Conversation.getPromptArray concatenates:
 * system_template with the system message, then per message `role + role_content_sep + content + seps[i % n]`
 * (role_templates filled in, the role dropped after the system prompt when add_role_after_system_message is
 * false), and `role + role_empty_sep` as the generation prompt. Placeholders are filled literally, where WebLLM's
 * String.replace would expand `$&`-style patterns in the content.
 */
export function templateFromConvTemplate(conv: MlcConvTemplate, options: ConvTemplateOptions = {}): FamilyTemplate {
  const id = options.id ?? `conv:${conv.name ?? 'custom'}`;
  // WebLLM treats a missing separator (undefined or null) as ": " and keeps an explicit "".
  const contentSep = conv.role_content_sep ?? ': ';
  const emptySep = conv.role_empty_sep ?? ': ';
  const fill = (template: string, placeholder: string, value: string): string => {
    const at = template.indexOf(placeholder);
    return at < 0 ? template : template.slice(0, at) + value + template.slice(at + placeholder.length);
  };
  const body = (role: 'user' | 'assistant', text: string): string => {
    const template = conv.role_templates?.[role];
    return template === undefined ? text : fill(fill(template, PLACEHOLDER[role], text), FUNCTION, '');
  };
  const systemPrompt = (message: string): string =>
    message === '' && conv.render_empty_system_message === false ? '' : fill(conv.system_template, SYSTEM, message);

  const render = (messages: readonly ChatMessage[], { addGenerationPrompt }: { addGenerationPrompt: boolean }): string => {
    if (messages.length === 0) throw new Error(`Template ${id}: cannot render a conversation with no messages.`);
    const first = messages[0];
    const hasSystem = first?.role === 'system';
    const system =
      hasSystem ? systemPrompt(first.content) : options.useDefaultSystem ? systemPrompt(conv.system_message) : '';
    const turns = hasSystem ? messages.slice(1) : messages;
    let text = system;
    turns.forEach((message, i) => {
      if (message.role === 'system') {
        throw new Error(`Template ${id}: WebLLM accepts a system message only as the first message.`);
      }
      const omitRole = conv.add_role_after_system_message === false && system !== '' && i === 0;
      const prefix = omitRole ? '' : conv.roles[message.role] + contentSep;
      text += prefix + body(message.role, message.content) + (conv.seps[i % conv.seps.length] ?? '');
    });
    if (addGenerationPrompt) text += conv.roles.assistant + emptySep;
    return text;
  };

  const endOfTurn = conv.stop_str.find((s) => s.trim() !== '') ?? conv.seps[0]?.trim() ?? '';
  const userTemplate = conv.role_templates?.user;
  const userHeader =
    conv.roles.user + contentSep + (userTemplate === undefined ? '' : userTemplate.split(PLACEHOLDER.user)[0] ?? '');
  const template: FamilyTemplate = {
    id,
    label: `${conv.name ?? 'Custom model'} (from mlc-chat-config.json)`,
    bosToken: options.bosToken ?? '',
    endOfTurn,
    specialTokens: visible([...conv.stop_str, ...conv.seps]),
    // The role strings too: a role header written as text must end the query like a special token would.
    instructionStop: visible([...conv.stop_str, ...conv.seps, conv.roles.user, conv.roles.assistant]),
    responseStop: visible([...conv.stop_str, ...conv.seps]),
    probeToken: options.probeToken ?? endOfTurn,
    supportsSystem: conv.system_template.includes(SYSTEM),
    userHeader,
    generationPrompt: conv.roles.assistant + emptySep,
    defaultSampling: { instruction: { ...DEFAULT_INSTRUCTION }, response: { ...DEFAULT_RESPONSE } },
    quirks: GENERIC_QUIRKS,
    source: 'conv-template',
    render,
    preQuery: (preQueryOptions) => cutPreQuery(template, preQueryHistory(preQueryOptions)),
  };
  return template;
}

/** Why a custom pre-query template was refused. */
export class PreQueryTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PreQueryTemplateError';
  }
}

/** What a custom pre-query template is checked against: the template it will be used with. */
export type PreQueryBase = Pick<
  FamilyTemplate,
  'id' | 'label' | 'bosToken' | 'endOfTurn' | 'responseStop' | 'userHeader' | 'generationPrompt'
>;

const show = (s: string): string => JSON.stringify(s);

/**
 * Throws a PreQueryTemplateError unless `text` ends where a user message begins. With `base` it must end with the
 * base's user header; without one, it may not start with any registry family's BOS nor end after its end-of-turn
 * token or assistant header.
 */
export function checkPreQueryTemplate(text: string, base?: PreQueryBase): void {
  if (text.trim() === '') throw new PreQueryTemplateError('The pre-query template is empty: it must end with a user header.');
  const bases: PreQueryBase[] = base ? [base] : listTemplates().map((info) => getTemplate(info.id));
  const trimmedEnd = text.trimEnd();
  for (const b of bases) {
    if (b.bosToken !== '' && text.startsWith(b.bosToken)) {
      throw new PreQueryTemplateError(
        `Leave out the begin-of-sequence token ${show(b.bosToken)}: it is added once, depending on whether the ` +
          'engine adds it itself.',
      );
    }
    if (b.generationPrompt !== '' && text.endsWith(b.generationPrompt)) {
      throw new PreQueryTemplateError(
        `It ends inside an assistant turn (after ${show(b.generationPrompt)}): the model would write a response, ` +
          `not an instruction. End it with the user header ${show(b.userHeader)}.`,
      );
    }
    const end = [b.endOfTurn, ...b.responseStop].find((token) => token !== '' && trimmedEnd.endsWith(token));
    if (end !== undefined) {
      throw new PreQueryTemplateError(
        `It ends after the end-of-turn token ${show(end)}: the model would open a turn of its choosing. ` +
          `Append the user header ${show(b.userHeader)}.`,
      );
    }
  }
  if (base && !text.endsWith(base.userHeader)) {
    throw new PreQueryTemplateError(
      `It must end with ${base.label}'s user header ${show(base.userHeader)}, so that the model's first token ` +
        'starts the user message.',
    );
  }
}

/**
 * `base` with a user-written pre-query template (checked by checkPreQueryTemplate); responses still render with
 * `base`. The text carries its own system prompt, so `preQuery({system})` refuses one.
 */
export function customPreQueryTemplate(text: string, base: FamilyTemplate): FamilyTemplate {
  checkPreQueryTemplate(text, base);
  return {
    ...base,
    id: `${base.id}+custom-pre-query`,
    label: `${base.label} (custom pre-query)`,
    source: 'custom',
    preQuery: (options) => {
      if (options?.system !== undefined) {
        throw new PreQueryTemplateError(
          'A custom pre-query template carries its own system prompt: write it into the template.',
        );
      }
      return text;
    },
  };
}
