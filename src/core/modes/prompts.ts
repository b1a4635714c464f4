/**
 * The prompts of every generation mode, from the family's own template (byte-exact, BOS not included):
 * - first query: the pre-query template, with the conversation's system prompt when one steers it;
 * - follow-up query (Magpie-MT): the history rendered with the follow-up system prompt, cut at the next user header;
 * - response: the history with the conversation's system prompt (never the follow-up one) plus the assistant header.
 */
import { cutPreQuery } from '../templates/turns';
import type { ChatMessage, ChatTemplate } from '../templates/types';

const withSystem = (system: string | undefined, turns: readonly ChatMessage[]): ChatMessage[] =>
  system === undefined ? [...turns] : [{ role: 'system', content: system }, ...turns];

export function firstQueryPrompt(template: ChatTemplate, system?: string): string {
  return template.preQuery(system === undefined ? {} : { system });
}

/** `history`: the user/assistant turns so far (ending with an assistant turn); `system`: the follow-up prompt. */
export function followUpQueryPrompt(template: ChatTemplate, history: readonly ChatMessage[], system?: string): string {
  return cutPreQuery(template, withSystem(system, history));
}

/** `history`: the user/assistant turns so far, ending with the user turn to answer. */
export function responsePromptFor(template: ChatTemplate, history: readonly ChatMessage[], system?: string): string {
  return template.render(withSystem(system, history), { addGenerationPrompt: true });
}
