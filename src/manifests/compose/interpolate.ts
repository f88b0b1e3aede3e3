/**
 * Compose's variable interpolation on the values of a parsed stack file (keys are left alone, as
 * compose does): `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset),
 * `${VAR:?message}` / `${VAR?message}` (an error), `${VAR:+alt}` / `${VAR+alt}`, and `$$` for a
 * literal `$`. Defaults and messages may themselves hold variables.
 */

export type Lookup = (name: string) => string | undefined;

/** A problem in one string; the caller adds the path and line. */
export class InterpolationError extends Error {}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/**
 * Interpolates one string. Unset variables without a default become "" and are reported through
 * `onUnset` (compose warns about them rather than failing).
 */
export function interpolateString(text: string, lookup: Lookup, onUnset: (name: string) => void = () => {}): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf("$", i);
    if (dollar < 0) return out + text.slice(i);
    out += text.slice(i, dollar);
    const next = text[dollar + 1];
    if (next === "$") {
      out += "$";
      i = dollar + 2;
    } else if (next === "{") {
      const end = closingBrace(text, dollar + 2);
      if (end < 0) throw new InterpolationError(`"${text}": \${ is never closed with }`);
      out += expandBraced(text.slice(dollar + 2, end), lookup, onUnset);
      i = end + 1;
    } else {
      const name = NAME.exec(text.slice(dollar + 1))?.[0];
      if (!name) throw new InterpolationError(`"${text}": a lone $ must be written $$ (or use $VAR, \${VAR})`);
      const v = lookup(name);
      if (v === undefined) onUnset(name);
      out += v ?? "";
      i = dollar + 1 + name.length;
    }
  }
  return out;
}

/** Index of the `}` closing a `${` whose body starts at `from`, nested `${…}` included; -1 if none. */
function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let i = from; i < text.length; i++) {
    if (text[i] === "$" && text[i + 1] === "{") {
      depth++;
      i++;
    } else if (text[i] === "}" && --depth === 0) return i;
  }
  return -1;
}

function expandBraced(body: string, lookup: Lookup, onUnset: (name: string) => void): string {
  const name = NAME.exec(body)?.[0];
  if (!name) throw new InterpolationError(`"\${${body}}": "${body.slice(0, 40)}" is not a variable name`);
  const rest = body.slice(name.length);
  const value = lookup(name);
  if (rest === "") {
    if (value === undefined) onUnset(name);
    return value ?? "";
  }
  const op = /^(:?[-?+])/.exec(rest)?.[1];
  if (!op) throw new InterpolationError(`"\${${body}}": unknown modifier "${rest.slice(0, 10)}" (use :-, -, :?, ?, :+ or +)`);
  const operand = (): string => interpolateString(rest.slice(op.length), lookup, onUnset);
  const missing = op.startsWith(":") ? value === undefined || value === "" : value === undefined;
  switch (op.replace(":", "")) {
    case "-":
      return missing ? operand() : value!;
    case "?":
      if (missing) throw new InterpolationError(`required variable ${name} is ${value === undefined ? "not set" : "empty"}${rest.length > op.length ? `: ${operand()}` : ""}`);
      return value!;
    default: // "+"
      return missing ? "" : operand();
  }
}

/**
 * Interpolates every string value of a parsed document, depth first. `fail` receives the path
 * of each string that could not be interpolated; `onUnset` the unset variables by path.
 */
export function interpolateTree(value: unknown, lookup: Lookup, fail: (path: (string | number)[], problem: string) => void, onUnset: (path: (string | number)[], name: string) => void, path: (string | number)[] = []): unknown {
  if (typeof value === "string") {
    try {
      return interpolateString(value, lookup, (name) => onUnset(path, name));
    } catch (err) {
      if (!(err instanceof InterpolationError)) throw err;
      fail(path, err.message);
      return value;
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateTree(v, lookup, fail, onUnset, [...path, i]));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateTree(v, lookup, fail, onUnset, [...path, k])]));
  }
  return value;
}
