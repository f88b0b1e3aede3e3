/** Docker-style table: upper-case headers, columns padded to the widest cell plus 3 spaces. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3)))
      .join("")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

export interface ListOptions {
  format?: string;
  quiet?: boolean;
}

/** Every list command: a table, `--format json` (one object per line, like docker) or `-q` (ids). */
export function printList<T>(items: T[], opts: ListOptions, headers: string[], row: (i: T) => string[], id: (i: T) => string, json: (i: T) => unknown = (i) => i): void {
  if (opts.quiet) {
    for (const i of items) process.stdout.write(id(i) + "\n");
  } else if (opts.format === "json") {
    for (const i of items) process.stdout.write(JSON.stringify(json(i)) + "\n");
  } else if (opts.format && opts.format !== "table") {
    throw new Error(`unknown --format "${opts.format}" (use table or json)`);
  } else {
    process.stdout.write(renderTable(headers, items.map(row)));
  }
}
