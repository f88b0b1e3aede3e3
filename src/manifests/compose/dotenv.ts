/**
 * The `.env` / `env_file` format compose reads: `KEY=VALUE` per line, an optional `export `
 * prefix, `#` comments, '…' taken literally, "…" with \n \t \" \\ escapes, and ` #` starting a
 * comment after an unquoted value. A line that is only `KEY` sets nothing (compose: unset).
 * Returns the pairs in order, or throws with the line number.
 */
export function parseDotenv(text: string, source: string): [string, string][] {
  const out: [string, string][] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "").trim();
    if (!line || line.startsWith("#")) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:=\s*(.*))?$/.exec(line);
    if (!m) throw new Error(`${source} line ${i + 1}: "${line.slice(0, 60)}" is not KEY=VALUE`);
    if (m[2] === undefined) return;
    out.push([m[1]!, unquote(m[2], `${source} line ${i + 1}`)]);
  });
  return out;
}

function unquote(v: string, where: string): string {
  const q = v[0];
  if (q === "'" || q === '"') {
    const end = v.indexOf(q, 1);
    // A double-quoted value may contain escaped quotes: find the first unescaped one.
    let close = end;
    if (q === '"') {
      close = -1;
      for (let i = 1; i < v.length; i++) {
        if (v[i] === "\\") i++;
        else if (v[i] === '"') {
          close = i;
          break;
        }
      }
    }
    if (close < 0) throw new Error(`${where}: the ${q} quote is never closed`);
    const inner = v.slice(1, close);
    return q === "'" ? inner : inner.replace(/\\(.)/g, (_, c: string) => ({ n: "\n", t: "\t", r: "\r" })[c] ?? c);
  }
  const comment = v.search(/\s#/);
  return (comment < 0 ? v : v.slice(0, comment)).trim();
}
