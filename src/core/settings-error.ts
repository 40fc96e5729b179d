/**
 * Settings problems: one {@link SettingsIssue} per problem, all of them in one
 * {@link SettingsError} (`SETTINGS_INVALID`).
 */
import { ErrorCode, EsperError } from './errors.js';

/** Where a settings problem was found. */
export type SettingsSource = 'env' | 'file' | 'overrides' | 'rule';

/** One problem found while loading settings. Never contains a secret value. */
export interface SettingsIssue {
  readonly source: SettingsSource;
  /**
   * The offending name: the environment variable (`env`), the dotted key inside the file or
   * overrides (`file`, `overrides`; empty for a problem with the whole file), or the keys a
   * cross-field rule combines, joined by ` + ` (`rule`).
   */
  readonly key: string;
  /** Dotted settings path the problem concerns, when it names a known key. */
  readonly settingPath?: string;
  /** The config file's path (`file` only). */
  readonly file?: string;
  /** What is wrong (`expected integer ≥ 1, got "0"`). */
  readonly message: string;
}

/** Thrown by `loadSettings` and `readConfigFile`: every problem found, in one error. */
export class SettingsError extends EsperError {
  /** Every problem, in the order found (env, file, overrides, then cross-field rules). */
  readonly issues: readonly SettingsIssue[];

  constructor(issues: readonly SettingsIssue[]) {
    const lines = issues.map((issue) => `  - ${formatSettingsIssue(issue)}`);
    const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
    super(ErrorCode.SETTINGS_INVALID, `invalid settings (${count}):\n${lines.join('\n')}`, {
      details: {
        issueCount: issues.length,
        keys: issues.map((issue) => issue.key || (issue.file ?? issue.source)).join(','),
      },
    });
    this.issues = Object.freeze(issues.map((issue) => Object.freeze({ ...issue })));
  }
}

/** One line describing an issue: `<where>: <message>`. */
export function formatSettingsIssue(issue: SettingsIssue): string {
  switch (issue.source) {
    case 'env':
      return `${issue.key}: ${issue.message}`;
    case 'file':
      return issue.key === ''
        ? `config file ${issue.file ?? ''}: ${issue.message}`
        : `config file ${issue.file ?? ''} at ${issue.key}: ${issue.message}`;
    case 'overrides':
      return `overrides.${issue.key}: ${issue.message}`;
    case 'rule':
      return `${issue.key}: ${issue.message}`;
  }
}
