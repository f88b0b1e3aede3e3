/**
 * Several `-c` files merge as compose merges them: later files override earlier ones. Mappings
 * merge key by key; `environment`, `labels`, `deploy.labels`, `networks` and `depends_on` merge by
 * key whether written as a list or a mapping; `ports`, `volumes`, `secrets`, `configs`,
 * `env_file`, `tmpfs` and `placement.constraints` are appended (duplicates dropped); every other
 * value, lists included (`command`, `entrypoint`, `healthcheck.test`), is replaced.
 */

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

const BY_KEY = new Set(["environment", "labels", "networks", "depends_on"]);
const APPENDED = new Set(["ports", "volumes", "secrets", "configs", "env_file", "tmpfs", "constraints"]);

/** `["A=1", "B"]` → `{A: "1", B: null}`; networks/depends_on lists → `{name: null}`. Anything else as it is. */
function asMap(key: string, v: unknown): unknown {
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) return v;
  const out: Obj = {};
  for (const item of v as string[]) {
    if (key === "environment" || key === "labels") {
      const eq = item.indexOf("=");
      out[eq < 0 ? item : item.slice(0, eq)] = eq < 0 ? null : item.slice(eq + 1);
    } else out[item] = null;
  }
  return out;
}

function mergeValues(key: string, base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (BY_KEY.has(key) && base !== undefined) {
    const [a, b] = [asMap(key, base), asMap(key, over)];
    if (isObj(a) && isObj(b)) return mergeMaps(a, b);
    return over;
  }
  if (APPENDED.has(key) && Array.isArray(base)) {
    const list = [...base];
    for (const x of Array.isArray(over) ? over : [over]) if (!list.some((y) => JSON.stringify(y) === JSON.stringify(x))) list.push(x);
    return list;
  }
  if (isObj(base) && isObj(over)) return mergeMaps(base, over);
  return over;
}

function mergeMaps(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = mergeValues(k, base[k], v);
  return out;
}

/** Merges parsed stack files in order; a file that is not a mapping replaces what came before (validation then names it). */
export function mergeStackFiles(files: unknown[]): unknown {
  return files.reduce((acc, f) => (acc === undefined ? f : isObj(acc) && isObj(f) ? mergeMaps(acc, f) : f), undefined);
}
