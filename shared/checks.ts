// Runtime type checks for messages that cross a boundary (IPC payloads, pull-mode work items and results). Each
// check takes a value and the path it was found at, and returns it typed or throws an error naming the path.
// One kit serves every contract; each contract gets it with its own error class.

export type Check<T> = (value: unknown, path: string) => T;

type Field = { check: Check<unknown>; optional?: boolean };
export type Shape = Record<string, Field>;
export type FromShape<S extends Shape> = { [K in keyof S as S[K]['optional'] extends true ? never : K]: ReturnType<S[K]['check']> } & {
  [K in keyof S as S[K]['optional'] extends true ? K : never]?: ReturnType<S[K]['check']>;
};

export interface StringRule {
  max?: number;
  min?: number;
  pattern?: RegExp;
  /** How the expected value is described in errors. */
  what?: string;
}

export interface CheckKit {
  fail(path: string, expected: string, value: unknown): never;
  /** A string without NUL, of `min` to `max` characters (default max: the kit's), matching `pattern`. */
  str(rule?: StringRule): Check<string>;
  /** A safe integer of at least `min` (default 0). */
  count(rule?: { min?: number }): Check<number>;
  oneOf<T extends string>(values: readonly T[]): Check<T>;
  literal<T extends string | number>(value: T): Check<T>;
  /** An array of `min` to `max` items, each checked. */
  list<T>(item: Check<T>, rule: { min?: number; max: number }): Check<T[]>;
  nullable<T>(check: Check<T>): Check<T | null>;
  /** An object with exactly these keys: unknown keys, other prototypes and missing required keys are refused. */
  object<S extends Shape>(shape: S): Check<FromShape<S>>;
  req<T>(check: Check<T>): { check: Check<T> };
  opt<T>(check: Check<T>): { check: Check<T>; optional: true };
}

export function checkKit(makeError: (message: string) => Error, defaults: { maxString: number }): CheckKit {
  const error = (message: string): never => {
    throw makeError(message);
  };
  const fail = (path: string, expected: string, value: unknown): never => {
    const got = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
    return error(`${path}: expected ${expected}, got ${got}`);
  };
  return {
    fail,
    str: (rule = {}) => {
      const max = rule.max ?? defaults.maxString;
      const min = rule.min ?? 0;
      return (v, path) => {
        if (typeof v !== 'string') return fail(path, rule.what ?? 'a string', v);
        if (v.length < min) error(`${path}: must not be empty`);
        if (v.length > max) error(`${path}: longer than ${max} characters`);
        if (v.includes('\0')) error(`${path}: contains a NUL character`);
        if (rule.pattern && !rule.pattern.test(v)) fail(path, rule.what ?? `a string matching ${rule.pattern}`, v);
        return v;
      };
    },
    count: (rule = {}) => {
      const min = rule.min ?? 0;
      return (v, path) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= min ? v : fail(path, `a whole number of at least ${min}`, v));
    },
    oneOf: <T extends string>(values: readonly T[]): Check<T> =>
      (v, path) => (typeof v === 'string' && (values as readonly string[]).includes(v) ? (v as T) : error(`${path}: expected one of ${values.join(', ')}`)),
    literal: <T extends string | number>(value: T): Check<T> =>
      (v, path) => (v === value ? value : error(`${path}: expected ${JSON.stringify(value)}, got ${JSON.stringify(v)?.slice(0, 40)}`)),
    list: <T>(item: Check<T>, rule: { min?: number; max: number }): Check<T[]> =>
      (v, path) => {
        if (!Array.isArray(v)) return fail(path, 'an array', v);
        if (v.length > rule.max) error(`${path}: more than ${rule.max} items`);
        if (v.length < (rule.min ?? 0)) error(`${path}: fewer than ${rule.min} items`);
        // Array.from visits holes (as undefined), which map skips: a sparse array from a structured clone is refused.
        return Array.from(v, (x: unknown, i) => item(x, `${path}[${i}]`));
      },
    nullable: <T>(check: Check<T>): Check<T | null> => (v, path) => (v === null ? null : check(v, path)),
    object: <S extends Shape>(shape: S): Check<FromShape<S>> =>
      (v, path) => {
        if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(path, 'an object', v);
        const proto = Object.getPrototypeOf(v) as unknown;
        if (proto !== Object.prototype && proto !== null) fail(path, 'a plain object', v);
        for (const key of Object.keys(v)) if (!Object.hasOwn(shape, key)) error(`${path}: unknown field "${key.slice(0, 40)}"`);
        const out: Record<string, unknown> = {};
        for (const [key, field] of Object.entries(shape)) {
          const value = (v as Record<string, unknown>)[key];
          if (value === undefined) {
            if (!field.optional) error(`${path}.${key}: required`);
            continue;
          }
          out[key] = field.check(value, `${path}.${key}`);
        }
        return out as FromShape<S>;
      },
    req: <T>(check: Check<T>) => ({ check }),
    opt: <T>(check: Check<T>) => ({ check, optional: true as const }),
  };
}
