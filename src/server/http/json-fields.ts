import { HttpError } from './http-types';

/**
 * Typed reads of a JSON object's fields, each failure a 400 naming the field by its path
 * (`descriptors[0].entries[1].key`). Unknown fields are refused too, so a typo is not a silent
 * default.
 */
export class JsonFields {
  constructor(
    private readonly object: Record<string, unknown>,
    private readonly path: string,
  ) {}

  /** Refuses any field not among `known` (each given by every name it may have). */
  only(...known: string[]): this {
    for (const name of Object.keys(this.object)) {
      if (!known.includes(name)) throw bad(this.at(name), 'is not a known field');
    }
    return this;
  }

  /** The first of `names` present (e.g. camelCase and snake_case spellings). */
  private pick(names: readonly string[]): { name: string; value: unknown } {
    for (const name of names) {
      if (this.object[name] !== undefined) return { name, value: this.object[name] };
    }
    return { name: names[0] as string, value: undefined };
  }

  string(...names: string[]): string {
    const found = this.optionalString(...names);
    if (found === undefined) throw bad(this.at(names[0] as string), 'is required');
    return found;
  }

  optionalString(...names: string[]): string | undefined {
    const { name, value } = this.pick(names);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') throw bad(this.at(name), 'must be a string');
    return value;
  }

  number(...names: string[]): number {
    const found = this.optionalNumber(...names);
    if (found === undefined) throw bad(this.at(names[0] as string), 'is required');
    return found;
  }

  /** A JSON number, or a string holding one (protojson writes 64-bit integers as strings). */
  optionalNumber(...names: string[]): number | undefined {
    const { name, value } = this.pick(names);
    if (value === undefined || value === null) return undefined;
    const parsed = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    if (typeof parsed !== 'number' || !Number.isFinite(parsed)) throw bad(this.at(name), 'must be a number');
    return parsed;
  }

  /** Each element of an array field as a JsonFields; absent = []. */
  objects(...names: string[]): JsonFields[] {
    const { name, value } = this.pick(names);
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) throw bad(this.at(name), 'must be an array');
    return value.map((element, index) => fieldsOf(element, `${this.at(name)}[${index}]`));
  }

  optionalObject(...names: string[]): JsonFields | undefined {
    const { name, value } = this.pick(names);
    if (value === undefined || value === null) return undefined;
    return fieldsOf(value, this.at(name));
  }

  private at(name: string): string {
    return this.path === '' ? name : `${this.path}.${name}`;
  }
}

export function fieldsOf(value: unknown, path: string): JsonFields {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad(path === '' ? 'body' : path, 'must be a JSON object');
  return new JsonFields(value as Record<string, unknown>, path);
}

function bad(field: string, problem: string): HttpError {
  return new HttpError(400, `${field} ${problem}`, field);
}
