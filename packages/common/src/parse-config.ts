import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { ConfigValidationError } from './errors.js';

export interface SchemaIssueOptions {
  /** Prepended to every path, e.g. `/sft` when the value is one section of a larger config. */
  prefix?: string;
  /**
   * Other libraries' names for a setting (`{ max_length: 'maxSeqLen' }`): an unknown key that
   * matches one is reported as "did you mean" the setting it names.
   */
  aliases?: Readonly<Record<string, string>>;
  /** Fill in the schema's `default`s on the value itself (ajv `useDefaults`); off by default. */
  useDefaults?: boolean;
}

export interface ParseConfigOptions extends SchemaIssueOptions {
  /** What the value is, for the error message: `'SFT config'`, `'Sandbox options'`. */
  what: string;
}

// One ajv per `useDefaults` setting; `verbose` so issues can name the value and the known keys.
// Not strict: several schemas carry annotations (`description`, `$schema`, `default` on unions)
// that strict mode rejects, and the schema tests of each package check the schemas themselves.
const instances = new Map<boolean, Ajv>();
const compiled = new Map<boolean, WeakMap<object, ValidateFunction>>();

function validatorFor(schema: object, useDefaults: boolean): ValidateFunction {
  let cache = compiled.get(useDefaults);
  if (cache === undefined) {
    cache = new WeakMap();
    compiled.set(useDefaults, cache);
  }
  let validate = cache.get(schema);
  if (validate === undefined) {
    let ajv = instances.get(useDefaults);
    if (ajv === undefined) {
      ajv = new Ajv({ allErrors: true, verbose: true, strict: false, useDefaults });
      instances.set(useDefaults, ajv);
    }
    validate = ajv.compile(schema);
    cache.set(schema, validate);
  }
  return validate;
}

/**
 * Every way `value` breaks `schema`, one `path: message` line each (JSON Pointer paths, `/` for
 * the value itself); empty when it is valid. The schema is compiled once and cached.
 */
export function schemaIssues(
  schema: object,
  value: unknown,
  options: SchemaIssueOptions = {},
): string[] {
  const validate = validatorFor(schema, options.useDefaults ?? false);
  if (validate(value)) return [];
  return formatSchemaIssues(validate.errors, options.prefix, options.aliases);
}

/**
 * Validates `input` against `schema` and returns it typed; throws `ConfigValidationError` listing
 * every issue as `path: message`. The one place a config, options object or record is checked.
 */
export function parseConfig<T>(schema: object, input: unknown, options: ParseConfigOptions): T {
  const issues = schemaIssues(schema, input, options);
  if (issues.length > 0) throw new ConfigValidationError(options.what, issues);
  return input as T;
}

/**
 * Turns ajv errors into `path: message` lines a person can act on: an unknown key gets the
 * nearest known key (`num_generations` → `numGenerations`, TRL's `max_length` → `maxSeqLen`) or the
 * list of known keys, an enum lists its values, and a tagged union (`{ kind: … }`) reports only
 * the branch its `kind` names instead of every branch's complaints. Needs ajv's `verbose: true`
 * (errors carry their schema and data), as `schemaIssues` compiles.
 */
export function formatSchemaIssues(
  errors: readonly ErrorObject[] | null | undefined,
  prefix = '',
  aliases: Readonly<Record<string, string>> = {},
): string[] {
  // `if`/`then` reports the failing `then` branch itself; the `if` line adds nothing
  let list = (errors ?? []).filter((e) => e.keyword !== 'if');
  // one-of errors first: they decide which of the errors beneath them are worth showing
  const unions = list.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf');
  const replaced: string[] = [];
  for (const union of unions) {
    const branches = ((
      union.parentSchema as { oneOf?: unknown[]; anyOf?: unknown[] } | undefined
    )?.[union.keyword as 'oneOf' | 'anyOf'] ?? []) as Record<string, unknown>[];
    const under = (e: ErrorObject) =>
      e !== union &&
      e.schemaPath.startsWith(`${union.schemaPath}/`) &&
      (e.instancePath === union.instancePath ||
        e.instancePath.startsWith(`${union.instancePath}/`));
    const kinds = branches.map(
      (b) => (b.properties as Record<string, { const?: unknown }> | undefined)?.kind?.const,
    );
    const path = `${prefix}${union.instancePath}` || '/';
    if (kinds.length > 0 && kinds.every((k) => typeof k === 'string')) {
      const data = union.data as Record<string, unknown> | undefined;
      const kind = typeof data === 'object' && data !== null ? data.kind : undefined;
      const index = (kinds as unknown[]).indexOf(kind);
      if (index === -1) {
        list = list.filter((e) => e !== union && !under(e));
        replaced.push(
          kind === undefined
            ? `${path}: needs "kind": one of ${kinds.map((k) => JSON.stringify(k)).join(', ')}`
            : `${path}/kind: must be one of ${kinds.map((k) => JSON.stringify(k)).join(', ')} (got ${JSON.stringify(kind)})`,
        );
      } else {
        const keep = `${union.schemaPath}/${index}/`;
        list = list.filter((e) => e !== union && (!under(e) || e.schemaPath.startsWith(keep)));
      }
    } else {
      // an untagged union (e.g. "auto" or a number): one line describing what is accepted
      list = list.filter((e) => e !== union && !under(e));
      replaced.push(`${path}: must be ${branches.map(describeSchema).join(' or ')}`);
    }
  }
  const issues = list.map((error) => {
    const path = `${prefix}${error.instancePath}` || '/';
    if (error.keyword === 'additionalProperties') {
      const key = String(error.params.additionalProperty);
      const known = Object.keys(
        (error.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ??
          {},
      ).filter((name) => name !== '$schema');
      const suggestion = suggestKey(key, known, aliases);
      return suggestion
        ? `${path}: unknown property '${key}' (did you mean '${suggestion}'?)`
        : `${path}: unknown property '${key}'${known.length > 0 ? `; known: ${known.join(', ')}` : ''}`;
    }
    if (error.keyword === 'enum') {
      return `${path}: must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}${gotValue(error.data)}`;
    }
    if (error.keyword === 'const') {
      return `${path}: must be ${JSON.stringify(error.params.allowedValue)}${gotValue(error.data)}`;
    }
    if (error.keyword === 'type') {
      return `${path}: must be ${String(error.params.type)}${gotValue(error.data)}`;
    }
    return `${path}: ${error.message ?? 'is invalid'}`;
  });
  return [...new Set([...replaced, ...issues])];
}

function gotValue(data: unknown): string {
  if (data === undefined) return '';
  const text = JSON.stringify(data);
  return text.length > 40 ? '' : ` (got ${text})`;
}

function describeSchema(schema: Record<string, unknown>): string {
  if ('const' in schema) return JSON.stringify(schema.const);
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(' or ');
  const type = schema.type;
  if (type === 'integer' || type === 'number') {
    const min = schema.minimum as number | undefined;
    const max = schema.maximum as number | undefined;
    const noun = type === 'integer' ? 'an integer' : 'a number';
    if (min !== undefined && max !== undefined) return `${noun} from ${min} to ${max}`;
    if (min !== undefined) return `${noun} >= ${min}`;
    if (max !== undefined) return `${noun} <= ${max}`;
    return noun;
  }
  if (typeof type === 'string') return `a${/^[aeiou]/.test(type) ? 'n' : ''} ${type}`;
  return 'a valid value';
}
/** `num_generations`, `NumGenerations`, `num-generations` all normalise to `numgenerations`. */
function normalise(key: string): string {
  return key.toLowerCase().replace(/[-_\s]/g, '');
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j += 1) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/**
 * The known key a mistyped or differently-spelled key most likely meant: an alias (another
 * library's name for the same setting), the same words in another case style, or a close typo.
 */
export function suggestKey(
  key: string,
  known: readonly string[],
  aliases: Readonly<Record<string, string>> = {},
): string | undefined {
  const wanted = normalise(key);
  for (const [alias, target] of Object.entries(aliases)) {
    if (normalise(alias) === wanted && known.includes(target)) return target;
  }
  const same = known.find((name) => normalise(name) === wanted);
  if (same !== undefined) return same;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of known) {
    const distance = editDistance(wanted, normalise(name));
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(wanted.length / 4)) ? best : undefined;
}
