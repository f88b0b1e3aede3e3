/** A placement constraint, docker syntax: node.labels.tier == data, node.role != manager. */
export interface Constraint {
  key: string;
  op: "==" | "!=";
  value: string;
  text: string;
}

const KEYS = /^(node\.id|node\.hostname|node\.role|node\.platform\.os|node\.platform\.arch|node\.labels\.[A-Za-z0-9_.-]+)$/;

/** Returns the constraint or a problem sentence. */
export function parseConstraint(text: string): Constraint | string {
  const m = /^\s*([^=!\s]+)\s*(==|!=)\s*(\S.*?)\s*$/.exec(text);
  if (!m) return `"${text}" is not KEY==VALUE or KEY!=VALUE`;
  if (!KEYS.test(m[1]!)) return `unknown constraint key "${m[1]}" (node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<name>)`;
  return { key: m[1]!, op: m[2] as "==" | "!=", value: m[3]!, text: `${m[1]} ${m[2]} ${m[3]}` };
}
