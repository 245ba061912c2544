import { readFileSync } from 'node:fs';
import { compileRuleSet } from '../../src/config/compile-rules';
import type { DomainRules, RuleSet } from '../../src/config/rule-set';
import { validateRuleFile } from '../../src/config/validate-rules';
import { fixturePath } from './paths';

export function compileYaml(...texts: string[]): RuleSet {
  return compileRuleSet(texts.map((text, index) => validateRuleFile(`inline-${index}.yaml`, text)));
}

export function fixtureText(name: string): string {
  return readFileSync(fixturePath('rules', name), 'utf8');
}

export function domainOf(rules: RuleSet, domain: string): DomainRules {
  const found = rules.domains.get(domain);
  if (found === undefined) throw new Error(`no domain ${domain}`);
  return found;
}
