import { test } from "node:test";
import assert from "node:assert/strict";
import { chunkPlan } from "./plan-chunks.js";
import type { Plan } from "./plan.js";
import { aService, aTask } from "../../test/harness/builders.js";
import { newTask, shutdownTask } from "./task-factory.js";
import { slotKey } from "../model/slots.js";

const svc = aService({ name: "web", replicas: 10 });
const fresh = { attempts: 0, recent: [], streak: 0 };

test("a plan within the limit, or with none, is one transaction", () => {
  const plan: Plan = { create: [newTask(svc, "1", 0, fresh), newTask(svc, "2", 0, fresh)], update: [], delete: [] };
  assert.deepEqual(chunkPlan(plan, [], 2), [plan]);
  assert.deepEqual(chunkPlan(plan, [], undefined), [plan]);
});

test("chunks hold at most the limit, keep each slot's writes together, and cover the plan exactly once", () => {
  // Slots 1..7: the old task stopped and its successor created (a restart or a stop-first move);
  // slots 8..10: an ended task deleted from history; slots 11..14: new.
  const old = Array.from({ length: 7 }, (_, i) => aTask(svc, { slot: i + 1 }));
  const ended = Array.from({ length: 3 }, (_, i) => aTask(svc, { slot: i + 8, state: "failed", desiredState: "shutdown" }));
  const plan: Plan = {
    update: old.map((t) => shutdownTask(t, 5)),
    delete: ended.map((t) => t.id),
    create: [...old.map((t) => newTask(svc, String(t.slot), 5, fresh)), ...[11, 12, 13, 14].map((s) => newTask(svc, String(s), 5, fresh))],
    requeueAfterMs: 200,
  };
  const chunks = chunkPlan(plan, [...old, ...ended], 5);
  const size = (p: Plan): number => p.create.length + p.update.length + p.delete.length;
  assert.ok(chunks.length >= 5, `${chunks.length} chunks`);
  for (const c of chunks) assert.ok(size(c) <= 5, `chunk of ${size(c)}`);
  // Every write once.
  assert.deepEqual(chunks.flatMap((c) => c.update.map((t) => t.id)).sort(), plan.update.map((t) => t.id).sort());
  assert.deepEqual(chunks.flatMap((c) => c.delete).sort(), [...plan.delete].sort());
  assert.equal(chunks.flatMap((c) => c.create).length, plan.create.length);
  // A slot's stop and its successor are in the same chunk.
  for (const t of old) {
    const holder = chunks.findIndex((c) => c.update.some((u) => u.id === t.id));
    assert.ok(chunks[holder]!.create.some((n) => slotKey(n) === slotKey(t)), `slot ${t.slot} split across chunks`);
  }
  // The requeue is the last chunk's: the sync asks again once everything is written.
  assert.equal(chunks.at(-1)!.requeueAfterMs, 200);
  assert.ok(chunks.slice(0, -1).every((c) => c.requeueAfterMs === undefined));
});

test("a slot with more writes than the limit is split: stops first, then deletes, then creates", () => {
  const tasks = Array.from({ length: 4 }, () => aTask(svc, { slot: 1 }));
  const plan: Plan = { update: tasks.slice(0, 2).map((t) => shutdownTask(t, 1)), delete: tasks.slice(2).map((t) => t.id), create: [newTask(svc, "1", 1, fresh)] };
  const chunks = chunkPlan(plan, tasks, 2);
  assert.deepEqual(chunks.map((c) => [c.update.length, c.delete.length, c.create.length]), [[2, 0, 0], [0, 2, 0], [0, 0, 1]]);
});
