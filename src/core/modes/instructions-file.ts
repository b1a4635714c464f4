/**
 * "Bring your own instructions": read a JSONL or TXT file of instructions. Malformed lines are reported by line
 * number and skipped; the valid ones are used, in file order.
 */
import type { ImportedInstruction } from '../recipe';

export interface InstructionFileError {
  /** 1-based line number. */
  line: number;
  message: string;
}

export interface InstructionFileParse {
  format: 'jsonl' | 'txt';
  instructions: ImportedInstruction[];
  errors: InstructionFileError[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The first user turn of a `messages` / `conversations` list (or its first entry when roles are absent). */
function firstUserText(list: unknown, roleKey: string, contentKey: string, userRoles: readonly string[]): unknown {
  if (!Array.isArray(list)) return undefined;
  const turns = list.filter(isObj);
  const user = turns.find((t) => typeof t[roleKey] === 'string' && userRoles.includes(t[roleKey]));
  return (user ?? turns[0])?.[contentKey];
}

/** instruction | prompt | messages[0].content | conversations[0].value, in that order. */
function instructionOf(o: Obj): unknown {
  if (o.instruction !== undefined) return o.instruction;
  if (o.prompt !== undefined) return o.prompt;
  if (o.messages !== undefined) return firstUserText(o.messages, 'role', 'content', ['user']);
  if (o.conversations !== undefined) return firstUserText(o.conversations, 'from', 'value', ['human', 'user']);
  return undefined;
}

function formatOf(fileName: string, lines: readonly string[]): 'jsonl' | 'txt' {
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.json') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.txt')) return 'txt';
  return lines.find((l) => l.trim() !== '')?.trim().startsWith('{') ? 'jsonl' : 'txt';
}

export function parseInstructionFile(fileName: string, text: string): InstructionFileParse {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
  const format = formatOf(fileName, lines);
  const instructions: ImportedInstruction[] = [];
  const errors: InstructionFileError[] = [];
  lines.forEach((raw, i) => {
    const line = i + 1;
    const trimmed = raw.trim();
    if (trimmed === '') return;
    if (format === 'txt') {
      instructions.push({ line, text: trimmed });
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(trimmed) as unknown;
    } catch {
      errors.push({ line, message: 'not valid JSON' });
      return;
    }
    if (!isObj(value)) {
      errors.push({ line, message: 'not a JSON object' });
      return;
    }
    const found = instructionOf(value);
    if (found === undefined) {
      errors.push({ line, message: 'no instruction, prompt, messages[0].content or conversations[0].value field' });
    } else if (typeof found !== 'string') {
      errors.push({ line, message: 'the instruction is not a string' });
    } else if (found.trim() === '') {
      errors.push({ line, message: 'the instruction is empty' });
    } else {
      instructions.push({ line, text: found.trim() });
    }
  });
  return { format, instructions, errors };
}
