/**
 * What the full-metadata export says about a record's template: the run's quirks, a custom model's template with the
 * data to rebuild it, and what the sanitizer changed, so an exported dataset can be reproduced.
 */
import type { MlcConvTemplate } from './conv-template';
import type { MagpieRecord, Run } from './record';

/** The run fields the export reads (absent on runs made before quirks and custom models). */
export type RunTemplateInfo = Partial<Pick<Run, 'quirks' | 'customTemplate'>>;

export interface TemplateMetadata {
  quirks?: {
    first_token_ban: { token_ids: number[]; strings: string[] } | null;
    early_stop_newline: boolean;
    assistant_stop_word: boolean;
    sanitize: boolean;
  };
  custom_template?: {
    source: 'conv_template' | 'custom';
    pre_query: string;
    conv_template?: MlcConvTemplate;
    base_template_id?: string;
    bos_token?: string;
  };
  /** The model's raw query and the sanitizer rule that changed it. */
  sanitized?: { raw: string; rule: number; rule_name: string };
}

export function templateMetadata(record: Pick<MagpieRecord, 'sanitized'>, run: RunTemplateInfo = {}): TemplateMetadata {
  const meta: TemplateMetadata = {};
  const q = run.quirks;
  if (q) {
    meta.quirks = {
      first_token_ban: q.firstTokenBan
        ? { token_ids: [...q.firstTokenBan.tokenIds], strings: [...q.firstTokenBan.strings] }
        : null,
      early_stop_newline: q.earlyStopNewline,
      assistant_stop_word: q.assistantStopWord,
      sanitize: q.sanitize,
    };
  }
  const c = run.customTemplate;
  if (c) {
    const custom: NonNullable<TemplateMetadata['custom_template']> = { source: c.source, pre_query: c.preQuery };
    if (c.convTemplate) custom.conv_template = c.convTemplate;
    if (c.baseTemplateId !== undefined) custom.base_template_id = c.baseTemplateId;
    if (c.bosToken !== undefined) custom.bos_token = c.bosToken;
    meta.custom_template = custom;
  }
  const s = record.sanitized;
  if (s) meta.sanitized = { raw: s.raw, rule: s.rule, rule_name: s.ruleName };
  return meta;
}
