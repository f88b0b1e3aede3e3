import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from "yaml";

export type Path = (string | number)[];
const keyOf = (path: Path): string => JSON.stringify(path);

/**
 * Where each value of a YAML document starts: path → line (1-based). A mapping entry is placed on
 * its key's line, which is what a user looks for. Aliases are not followed: a path under an alias
 * takes the alias's line.
 */
export function lineMap(doc: Document, counter: LineCounter): Map<string, number> {
  const lines = new Map<string, number>();
  const lineAt = (offset: number | undefined): number | undefined => (offset === undefined ? undefined : counter.linePos(offset).line);
  const walk = (node: Node | null | undefined, path: Path, line: number | undefined): void => {
    const at = line ?? lineAt(node?.range?.[0]);
    if (at !== undefined) lines.set(keyOf(path), at);
    if (!node || isAlias(node) || isScalar(node)) return;
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const k = isScalar(pair.key) ? pair.key.value : pair.key;
        if (typeof k !== "string" && typeof k !== "number") continue;
        walk(pair.value as Node | null, [...path, String(k)], lineAt((pair.key as Node | null)?.range?.[0]));
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item as Node | null, [...path, i], undefined));
    }
  };
  walk(doc.contents as Node | null, [], undefined);
  return lines;
}

/** The line of `path` in a map, or of its nearest ancestor that has one. */
export function lineOf(lines: Map<string, number>, path: Path): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const line = lines.get(keyOf(path.slice(0, n)));
    if (line !== undefined) return line;
  }
  return undefined;
}

/** The exact line of `path`, without falling back to an ancestor. */
export const exactLineOf = (lines: Map<string, number>, path: Path): number | undefined => lines.get(keyOf(path));
