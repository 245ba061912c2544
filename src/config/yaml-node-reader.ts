import { isMap, isScalar, isSeq, type LineCounter, type Node } from 'yaml';
import { ConfigError, MAX_UINT32 } from '../core';

/*
 * Reads one YAML node of a rule file with the failsafe schema, where every scalar is a string, so
 * that numbers and booleans are parsed here with one set of rules and every error can name the
 * file, the line and the path of the node (e.g. `descriptors[1].rate_limit.unit`).
 */
export class YamlNodeReader {
  constructor(
    private readonly file: string,
    private readonly lines: LineCounter,
    readonly node: Node | null,
    readonly path: string,
  ) {}

  get line(): number | undefined {
    const offset = this.node?.range?.[0];
    return offset === undefined ? undefined : this.lines.linePos(offset).line;
  }

  fail(reason: string): never {
    const line = this.line;
    throw new ConfigError(this.file, this.path, reason, line === undefined ? {} : { line });
  }

  private child(node: Node | null, path: string): YamlNodeReader {
    return new YamlNodeReader(this.file, this.lines, node, path);
  }

  /** The fields of a map, refusing any name not in `allowed` ('any': free-form, like `metadata`). */
  fields(allowed: readonly string[] | 'any'): Map<string, YamlNodeReader> {
    if (!isMap(this.node)) this.fail(`expected a map, found ${describeNode(this.node)}`);
    const fields = new Map<string, YamlNodeReader>();
    for (const pair of this.node.items) {
      const keyNode = pair.key as Node | null;
      const name = isScalar(keyNode)
        ? String(keyNode.value)
        : this.child(keyNode, this.path).fail('field names must be plain strings');
      const fieldPath = this.path ? `${this.path}.${name}` : name;
      if (allowed !== 'any' && !allowed.includes(name)) {
        this.child(keyNode, fieldPath).fail(`unknown field '${name}' (allowed here: ${allowed.join(', ')})`);
      }
      fields.set(name, this.child(pair.value as Node | null, fieldPath));
    }
    return fields;
  }

  items(): YamlNodeReader[] {
    if (this.isEmpty()) return [];
    if (!isSeq(this.node)) this.fail(`expected a list, found ${describeNode(this.node)}`);
    return this.node.items.map((item, index) => this.child(item as Node | null, `${this.path}[${index}]`));
  }

  /** True for a missing value (`field:` with nothing after it). */
  isEmpty(): boolean {
    return this.node === null || (isScalar(this.node) && (this.node.value === null || this.node.value === ''));
  }

  string(): string {
    if (this.node === null) return '';
    if (!isScalar(this.node)) this.fail(`expected a string, found ${describeNode(this.node)}`);
    return this.node.value === null ? '' : String(this.node.value);
  }

  bool(): boolean {
    const text = this.string();
    if (/^(true|True|TRUE)$/.test(text)) return true;
    if (/^(false|False|FALSE)$/.test(text)) return false;
    return this.fail(`expected true or false, found '${text}'`);
  }

  uint32(): number {
    const text = this.string().trim();
    if (/^-\d+$/.test(text)) this.fail(`must not be negative, found ${text}`);
    if (!/^\d+$/.test(text)) this.fail(`expected a whole number, found '${text}'`);
    const value = Number(text);
    if (value > MAX_UINT32) this.fail(`must be at most ${MAX_UINT32}, found ${text}`);
    return value;
  }
}

function describeNode(node: Node | null): string {
  if (node === null) return 'nothing';
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  return `'${String((node as { value?: unknown }).value)}'`;
}
