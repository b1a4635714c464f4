/**
 * The instruction sanitizer of the Magpie reference (magpie-method.md §5), as an optional cleaner: Llama-3.1+ and
 * Gemma-2 often ramble past the query (a label, then the question, then an answer), so keep the first question or
 * the first line. Rules run in a fixed order; the result says which ones changed the text.
 */

/** Rule names; a rule's class number is its index here (0: nothing changed). */
export const SANITIZE_RULES = [
  'unchanged',
  'enumerator',
  'label',
  'answer-marker',
  'step-header',
  'wrapped-question',
  'bold',
  'first-question',
  'first-line',
] as const;

export type SanitizeRuleName = (typeof SANITIZE_RULES)[number];

export interface SanitizeResult {
  text: string;
  /** Class number of the last rule that changed the text (the one that decided the result); 0 when none did. */
  rule: number;
  ruleName: SanitizeRuleName;
  /** Every rule that changed the text, in the order they ran. */
  applied: SanitizeRuleName[];
}

const LABEL = String.raw`(?:task|prompt|question|problem|scenario|context|challenge|query|request|instructions?|descriptions?|part)(?:\s*#?\d+)?`;

/** `1.`, `12)`, `a)`, `(b)` at the very start, followed by whitespace. */
const ENUMERATOR = /^(?:\(\s*(?:\d{1,3}|[a-z])\s*\)|(?:\d{1,3}|[a-z])[.)])\s+/i;

/** One leading label in its usual dresses; a bare word without a colon, bold or header is left alone. */
const LABEL_FORMS: readonly RegExp[] = [
  // `## Task: …`, `### Question 3` (header line)
  new RegExp(String.raw`^#{1,6}[ \t]*(?:\*\*)?[ \t]*${LABEL}[ \t]*(?:\*\*)?[ \t]*:?[ \t]*(?:\*\*)?\s*`, 'i'),
  // `**Task:** …`, `**Question 2**: …`, `**Problem**`
  new RegExp(String.raw`^\*\*[ \t]*${LABEL}[ \t]*:?[ \t]*\*\*[ \t]*:?\s*`, 'i'),
  // `Task: …`, `Question 3: …`, `Part 2: …`
  new RegExp(String.raw`^${LABEL}[ \t]*:\s*`, 'i'),
  // `Q3. …`, `Q12: …`
  /^Q\d+[ \t]*[.:)]\s*/i,
];

/** Where the model starts answering its own query. */
const ANSWER_MARKER = /(?:\*\*)?(?:answer[ \t]*:|the answer is|correct answer|explanation[ \t]*:|solution[ \t]*:|here are some)/i;

/** A worked solution's first step header. */
const STEP_HEADER = /#{1,6}[ \t]*(?:\*\*)?[ \t]*step[ \t]*1\b/i;

/** A question wrapped in emphasis or quotes at the start: `*How …?*`, `"How …?"`. */
const WRAPPED_QUESTION: readonly RegExp[] = [/^\*{1,2}([^*\n]+?\?)(?=\*|\s|$)/, /^["“]([^"”\n]+?\?)["”]/];

/** Cut before the first match, unless it is at the start (then the marker is the query itself). */
function cutBefore(text: string, pattern: RegExp): string {
  const match = pattern.exec(text);
  if (!match || match.index === 0) return text;
  const head = text.slice(0, match.index).trim();
  return head === '' ? text : head;
}

/** Clean one generated instruction. Pure; never throws. */
export function sanitizeInstruction(raw: string): SanitizeResult {
  const applied: SanitizeRuleName[] = [];
  let text = raw.trim();
  const step = (name: SanitizeRuleName, next: string): void => {
    const cleaned = next.trim();
    if (cleaned !== text) {
      applied.push(name);
      text = cleaned;
    }
  };

  step('enumerator', text.replace(ENUMERATOR, ''));
  const label = LABEL_FORMS.find((form) => form.test(text));
  if (label) step('label', text.replace(label, ''));
  step('answer-marker', cutBefore(text, ANSWER_MARKER));
  step('step-header', cutBefore(text, STEP_HEADER));

  const wrapped = WRAPPED_QUESTION.map((form) => form.exec(text)?.[1]).find((q) => q !== undefined);
  if (wrapped !== undefined) {
    step('wrapped-question', wrapped);
  } else {
    step('bold', text.replaceAll('**', ''));
    const question = text.indexOf('?');
    if (question >= 0) {
      step('first-question', text.slice(0, question + 1));
    } else {
      step('first-line', text.split('\n')[0] ?? text);
    }
  }

  const ruleName = applied[applied.length - 1] ?? 'unchanged';
  return { text, rule: SANITIZE_RULES.indexOf(ruleName), ruleName, applied };
}
