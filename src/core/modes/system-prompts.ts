/**
 * System prompts that steer what the model asks about (magpie-method.md §4: control by system prompt), written for
 * this project, and the "describe your dataset" helper that has the loaded model draft one.
 */
import type { CompletionRequest } from '../engine';
import type { SystemPromptChoice } from '../recipe';
import type { ChatTemplate } from '../templates/types';
import { withBos } from '../templates/types';

export interface SystemPromptPreset {
  key: string;
  label: string;
  prompt: string;
}

export const SYSTEM_PROMPT_PRESETS: readonly SystemPromptPreset[] = [
  {
    key: 'general',
    label: 'General chat',
    prompt:
      'You are a friendly, knowledgeable assistant. Users come to you with everyday questions, requests for advice, ' +
      'explanations of ideas and help with writing; answer them clearly and helpfully.',
  },
  {
    key: 'math',
    label: 'Math',
    prompt:
      'You are a patient mathematics tutor. Users bring you problems from arithmetic to calculus, probability and ' +
      'proofs; work through each one step by step and state the final answer clearly.',
  },
  {
    key: 'coding',
    label: 'Coding',
    prompt:
      'You are an experienced software engineer. Users ask you to write, explain, review and debug code in many ' +
      'languages; give correct, idiomatic code and explain the important choices.',
  },
  {
    key: 'translation',
    label: 'Translation',
    prompt:
      'You are a professional translator. Users give you sentences and short texts to translate between languages, ' +
      'and ask about wording and nuance; keep the meaning, tone and register of the original.',
  },
  {
    key: 'creative-writing',
    label: 'Creative writing',
    prompt:
      'You are a creative writing partner. Users ask for stories, poems, dialogue, characters and ideas, or for help ' +
      'revising their own drafts; write vividly and follow the requested form and style.',
  },
  {
    key: 'reasoning',
    label: 'Reasoning',
    prompt:
      'You are a careful thinker. Users pose logic puzzles, riddles, planning problems and questions that need ' +
      'several steps of reasoning; lay out your reasoning and check it before you conclude.',
  },
  {
    key: 'data-analysis',
    label: 'Data analysis',
    prompt:
      'You are a data analyst. Users share tables, numbers and questions about statistics, spreadsheets, SQL and ' +
      'charts; analyse the data correctly and explain what it shows in plain language.',
  },
];

/** The follow-up system prompt of multi-turn runs, used only while writing follow-up queries. */
export const DEFAULT_FOLLOW_UP_SYSTEM =
  'You are a helpful assistant in a conversation that runs over several rounds: the user asks a first question, ' +
  'then keeps asking follow-up questions that build on your earlier answers. Give thorough, relevant answers.';

export function presetChoice(key: string, weight = 1): SystemPromptChoice {
  const preset = SYSTEM_PROMPT_PRESETS.find((p) => p.key === key);
  if (!preset) throw new Error(`Unknown system prompt preset "${key}".`);
  return { key: preset.key, prompt: preset.prompt, weight };
}

/** What the user message of the drafting request says; the description is quoted, never interpreted. */
export function systemPromptDraftMessage(description: string): string {
  return (
    'I am building a dataset of conversations between users and an AI assistant. Write the system prompt for that ' +
    'assistant. It should say, in two to four sentences addressed to the assistant ("You are ..."), what role it ' +
    'plays and what kinds of requests its users bring. Reply with the system prompt only, without quotes or ' +
    `any other text.\n\nDescription of the dataset:\n${description.trim()}`
  );
}

/**
 * The drafting request as a raw completion: rendered with the family's own template (byte-exact, no injected
 * default system prompt), greedy so the same description gives the same draft.
 */
export function systemPromptDraftRequest(template: ChatTemplate, description: string, engineAddsBos: boolean): CompletionRequest {
  if (description.trim() === '') throw new Error('Describe the dataset first.');
  const body = template.render([{ role: 'user', content: systemPromptDraftMessage(description) }], { addGenerationPrompt: true });
  return {
    prompt: withBos(template, body, engineAddsBos),
    temperature: 0,
    topP: 1,
    maxTokens: 300,
    stop: [...template.responseStop],
  };
}

/** The model's draft, minus wrapping quotes or a "System prompt:" label it may add anyway. */
export function cleanSystemPromptDraft(text: string): string {
  let t = text.trim().replace(/^(?:\*\*)?system prompt(?:\*\*)?\s*:\s*/i, '');
  const quoted = /^(["“'])([\s\S]*)(["”'])$/.exec(t);
  if (quoted?.[2] !== undefined) t = quoted[2];
  return t.trim();
}
