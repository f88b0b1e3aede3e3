import type { Node, Service, Task } from "../../model/objects.js";
import { taskName } from "../../model/objects.js";
import { BatonError } from "../../lib/errors.js";
import { isCurrentSpec, isTaskUp, serviceStatus } from "../../model/service-status.js";
import type { ApiClient } from "../client.js";

const STAGES = ["new", "pending", "assigned", "accepted", "preparing", "starting", "running"];
const BAR = 50;
/** Above this many slots only the overall line is drawn. */
const MAX_SLOT_LINES = 10;

/**
 * The terminal bytes that replace a drawing of `drawn` lines with `lines`: back up, redraw each
 * line, and clear what is left below when the new drawing is shorter (the slot list shrinks when a
 * scale down lands while we watch).
 */
export function redraw(drawn: number, lines: string[]): string {
  return (drawn ? `\x1b[${drawn}A` : "") + lines.map((l) => `\x1b[2K${l}\n`).join("") + (drawn > lines.length ? "\x1b[J" : "");
}

/**
 * Shows per-slot progress until the service has converged (every slot one running — and
 * healthy — task of the current spec), like `docker service create`. Follows the events stream,
 * so it reacts as soon as the store changes. Fails when a slot will not be restarted.
 */
export async function waitConverged(c: ApiClient, serviceId: string, expect: "converged" | "update" | "rollback" = "converged"): Promise<void> {
  const tty = process.stdout.isTTY === true;
  const { revision } = await c.call<{ revision: number }>("GET", "/v1/info");
  let service = await c.call<Service>("GET", `/v1/services/${serviceId}`);
  const tasks = new Map((await c.call<Task[]>("GET", `/v1/tasks?service=${serviceId}`)).map((t) => [t.id, t]));
  const nodes = await c.call<Node[]>("GET", "/v1/nodes");
  const ac = new AbortController();
  let drawn = 0;
  let lastOverall = "";
  let outcome: Error | null | undefined;

  const render = (): void => {
    const st = serviceStatus(service, [...tasks.values()], nodes);
    const u = service.updateStatus;
    const overall = expect !== "converged" && u ? u.message : `overall progress: ${st.running} out of ${st.desired} tasks`;
    const current = [...tasks.values()].filter((t) => t.desiredState === "running" && isCurrentSpec(t, service));
    if (tty) {
      const lines = [overall];
      if (st.desired <= MAX_SLOT_LINES) {
        const sorted = current.sort((a, b) => a.slot - b.slot || (a.nodeId ?? "").localeCompare(b.nodeId ?? ""));
        for (const t of sorted) {
          const label = t.slot > 0 ? `${t.slot}/${st.desired}` : `${taskName(t)}`;
          const waiting = t.status.state !== "running" ? "" : t.spec.health && t.status.health !== "healthy" ? t.status.health ?? "starting" : t.spec.targets?.length && !t.status.ready ? "not ready" : "";
          const health = waiting ? ` (${waiting})` : "";
          const stage = STAGES.indexOf(t.status.state);
          const filled = stage < 0 ? 0 : Math.round(((stage + (isTaskUp(t) ? 1 : 0)) / STAGES.length) * BAR);
          const bar = stage < 0 ? "" : `[${"=".repeat(Math.max(0, filled - 1))}${filled ? ">" : ""}${" ".repeat(BAR - filled)}]`;
          lines.push(`${`${label}: ${t.status.state}${health}`.padEnd(24)} ${bar}`);
        }
      }
      process.stdout.write(redraw(drawn, lines));
      drawn = lines.length;
    } else if (overall !== lastOverall) {
      process.stdout.write(overall + "\n");
      lastOverall = overall;
    }
  };

  const check = (): void => {
    const st = serviceStatus(service, [...tasks.values()], nodes);
    const u = service.updateStatus;
    // An update ends completed (exit 0), paused or rolled back (exit 1: CI can rely on it).
    if (expect !== "converged" && u) {
      if (u.state === "paused" || u.state === "rollback_paused") {
        outcome = new BatonError("UPDATE_FAILED", `${u.message}; see \`baton service ps ${service.spec.name}\``);
        return;
      }
      if (u.state === "rollback_completed" && expect === "update") {
        outcome = new BatonError("UPDATE_FAILED", u.reason ?? "the update was rolled back");
        return;
      }
      if (u.state !== "completed" && u.state !== "rollback_completed") return;
      // Completed: every slot's new task stayed up for the monitor period, or failed within
      // what the update tolerates (the message says so) — do not wait on a slot that failed.
      outcome = null;
      return;
    }
    if (st.converged) {
      outcome = null;
      return;
    }
    const stuck = [...tasks.values()].find((t) => t.desiredState === "running" && t.restartBlocked);
    if (stuck) {
      outcome = new BatonError("VALIDATION_FAILED", `task ${taskName(stuck)} ${stuck.status.state}: ${stuck.status.err ?? stuck.status.message} (${stuck.restartBlocked}); see \`baton service ps ${service.spec.name}\``);
    }
  };

  render();
  check();
  if (outcome === undefined) {
    await c.events(`?since=${revision}&service=${serviceId}`, (data) => {
      const e = data as { kind: string; op: string; object: Task & Service };
      if (e.kind === "services") {
        if (e.op === "delete") outcome = new BatonError("NOT_FOUND", `service ${service.spec.name} was removed`);
        else service = e.object;
      } else if (e.kind === "tasks") {
        const prev = tasks.get(e.object.id);
        if (e.op === "delete") tasks.delete(e.object.id);
        else if (!prev || prev.version <= e.object.version) tasks.set(e.object.id, e.object);
      }
      render();
      if (outcome === undefined) check();
      if (outcome !== undefined) ac.abort();
    }, ac.signal);
  }
  if (outcome === undefined) throw new BatonError("UNAVAILABLE", "baton closed the connection before the service converged");
  if (outcome) throw outcome;
  const u = service.updateStatus;
  process.stdout.write(
    expect === "converged"
      ? `verify: Service ${service.spec.name} converged\n`
      : u?.message && /failed/.test(u.message)
        ? `verify: Service ${service.spec.name}: ${u.message}\n`
        : `verify: Service ${service.spec.name} ${expect === "update" ? "updated" : "rolled back"} and converged\n`,
  );
}
