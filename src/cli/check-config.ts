import { errorMessage } from '../core';
import { describeRuleSet } from '../config/describe-rules';
import { loadRuleDir } from '../config/load-rule-dir';

export interface CheckReport {
  readonly ok: boolean;
  readonly lines: readonly string[];
}

/** `ringlimit check <dir>`: the same load as the server's, reported for a person. */
export async function checkConfigDir(dir: string): Promise<CheckReport> {
  try {
    const rules = await loadRuleDir(dir);
    const lines: string[] = [];
    for (const domain of rules.domains.values()) {
      lines.push(`domain ${domain.domain} (${domain.file})`);
    }
    lines.push(...describeRuleSet(rules).map((line) => `  ${line}`));
    lines.push(`ok: ${rules.domains.size} domain(s) in ${rules.files.length} file(s)`);
    return { ok: true, lines };
  } catch (error) {
    return { ok: false, lines: [`error: ${errorMessage(error)}`] };
  }
}
