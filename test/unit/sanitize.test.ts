import { describe, expect, test } from 'vitest';
import { SANITIZE_RULES, sanitizeInstruction, type SanitizeRuleName } from '../../src/core/sanitize';

type Row = [input: string, text: string, rule: SanitizeRuleName, applied?: SanitizeRuleName[]];

const table = (rows: Row[]): Row[] => rows;

describe('each rule on its own', () => {
  test.each(
    table([
      // unchanged
      ['How do I bake sourdough bread?', 'How do I bake sourdough bread?', 'unchanged'],
      ['Write a haiku about autumn', 'Write a haiku about autumn', 'unchanged'],
      ['  Explain recursion.  ', 'Explain recursion.', 'unchanged'],
      // enumerator
      ['1. How do magnets work?', 'How do magnets work?', 'enumerator'],
      ['12) Name three primes.', 'Name three primes.', 'enumerator'],
      ['a) What is osmosis?', 'What is osmosis?', 'enumerator'],
      ['(b) Define entropy.', 'Define entropy.', 'enumerator'],
      // label forms
      ['Task: Summarize the French Revolution.', 'Summarize the French Revolution.', 'label'],
      ['**Question:** Why is the sky blue?', 'Why is the sky blue?', 'label'],
      ['**Problem**: Solve x^2 = 4.', 'Solve x^2 = 4.', 'label'],
      ['## Task: Write a limerick.', 'Write a limerick.', 'label'],
      ['### Scenario\nYou run a bakery. Plan a menu.', 'You run a bakery. Plan a menu.', 'label'],
      ['Question 3: What is 7 times 8?', 'What is 7 times 8?', 'label'],
      ['Q3. Which planet is largest?', 'Which planet is largest?', 'label'],
      ['Part 2: Describe the water cycle.', 'Describe the water cycle.', 'label'],
      ['Instructions: List five fruits.', 'List five fruits.', 'label'],
      ['DESCRIPTION: Rewrite this email politely.', 'Rewrite this email politely.', 'label'],
      // answer markers
      ['Name the capital of Peru.\nAnswer: Lima', 'Name the capital of Peru.', 'answer-marker'],
      ['Compute 2+3. The answer is 5.', 'Compute 2+3.', 'answer-marker'],
      ['Pick the odd one out: cat, dog, car. Correct answer: car', 'Pick the odd one out: cat, dog, car.', 'answer-marker'],
      ['Translate "hola".\n**Explanation:** it means hello', 'Translate "hola".', 'answer-marker'],
      ['Integrate x dx.\nSolution: x^2/2', 'Integrate x dx.', 'answer-marker'],
      ['Suggest a weekend plan. Here are some ideas: hiking', 'Suggest a weekend plan.', 'answer-marker'],
      // step header
      ['Prove that sqrt(2) is irrational.\n## Step 1: Assume it is rational', 'Prove that sqrt(2) is irrational.', 'step-header'],
      // wrapped question
      ['*How can I learn piano faster?* I practice daily but feel stuck.', 'How can I learn piano faster?', 'wrapped-question'],
      ['"What makes a good password?" asked the user.', 'What makes a good password?', 'wrapped-question'],
      ['“Is coffee bad for you?” Many people wonder.', 'Is coffee bad for you?', 'wrapped-question'],
      // bold
      ['Explain **photosynthesis** simply.', 'Explain photosynthesis simply.', 'bold'],
      // first question
      ['What is a black hole? I read about it yesterday and want details.', 'What is a black hole?', 'first-question'],
      // first line
      ['Write a story about a dragon.\nMake it funny.\nKeep it short.', 'Write a story about a dragon.', 'first-line'],
    ]),
  )('%j → %j (%s)', (input, text, rule) => {
    const result = sanitizeInstruction(input);
    expect(result.text).toBe(text);
    expect(result.ruleName).toBe(rule);
    expect(result.rule).toBe(SANITIZE_RULES.indexOf(rule));
  });
});

describe('rules combine, and the last one that changed the text is reported', () => {
  test.each(
    table([
      ['1. **Question:** What is DNA?\nAnswer: a molecule', 'What is DNA?', 'answer-marker', ['enumerator', 'label', 'answer-marker']],
      ['Task: Explain **gravity**.\nUse simple words.', 'Explain gravity.', 'first-line', ['label', 'bold', 'first-line']],
      ['**Challenge:** *Why do cats purr?* Explain.', 'Why do cats purr?', 'wrapped-question', ['label', 'wrapped-question']],
      ['2) Q1: Is zero even? Justify it.', 'Is zero even?', 'first-question', ['enumerator', 'label', 'first-question']],
    ]),
  )('%j', (input, text, rule, applied) => {
    const result = sanitizeInstruction(input);
    expect(result.text).toBe(text);
    expect(result.ruleName).toBe(rule);
    expect(result.applied).toEqual(applied);
  });
});

describe('what the sanitizer leaves alone', () => {
  test.each([
    ['a label word without its dress', 'Context matters: when should I use a mutex?', 'Context matters: when should I use a mutex?'],
    ['a marker at the very start is the query itself', 'Here are some numbers: 3, 5, 8. Which is prime', 'Here are some numbers: 3, 5, 8. Which is prime'],
    ['"C#" inside a query', 'How do I learn C# quickly?', 'How do I learn C# quickly?'],
    ['a sentence that starts with a capital letter and a period-less word', 'I need help planning a trip to Japan.', 'I need help planning a trip to Japan.'],
    ['a word that begins like a label', 'Problematic code: why does this loop never end?', 'Problematic code: why does this loop never end?'],
  ])('%s', (_name, input, text) => {
    const result = sanitizeInstruction(input);
    expect(result.text).toBe(text);
  });

  test('a question ending the text is not cut', () => {
    expect(sanitizeInstruction('Why?').ruleName).toBe('unchanged');
  });

  test('empty input stays empty and reports no rule', () => {
    expect(sanitizeInstruction('   ')).toEqual({ text: '', rule: 0, ruleName: 'unchanged', applied: [] });
  });

  test('rule numbers are stable class numbers', () => {
    expect(SANITIZE_RULES[0]).toBe('unchanged');
    expect(new Set(SANITIZE_RULES).size).toBe(SANITIZE_RULES.length);
  });
});
