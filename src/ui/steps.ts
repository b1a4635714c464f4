/** What the live panel says for a step of any mode ('instruction_2' → "Writing follow-up question 2"). */
export function stepLabel(step: string | null | undefined, attempt: number): string {
  if (!step) return 'Starting…';
  const at = ` (attempt ${attempt})`;
  if (step === 'instruction') return `Writing instruction${at}`;
  if (step === 'response') return `Writing response${at}`;
  const m = /^(instruction|response|candidate|judge)_(\d+)$/.exec(step);
  if (m?.[1] === 'instruction') return `Writing follow-up question ${m[2]}${at}`;
  if (m?.[1] === 'response') return `Writing response ${m[2]}${at}`;
  if (m?.[1] === 'candidate') return `Writing candidate response ${m[2]}${at}`;
  if (step.startsWith('judge')) return `Judging the candidates${at}`;
  return `${step}${at}`;
}
