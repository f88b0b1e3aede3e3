// The API in tests: buildApp with what a test does not care about filled in (no task logs, a
// system that stops nothing), over any store; `memoryApi` adds a memory store on a fake clock.
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../src/api/app.js";
import type { ApiDeps } from "../../src/api/deps.js";
import { silentLogger } from "../../src/lib/log.js";
import { createMemoryStore } from "../../src/store/memory/memory-store.js";
import { FakeClock } from "./fake-clock.js";

export type TestApiDeps = Pick<ApiDeps, "store" | "clock"> & Partial<Omit<ApiDeps, "store" | "clock">>;

export function testApi(deps: TestApiDeps): Promise<FastifyInstance> {
  return buildApp({
    log: silentLogger(),
    logs: { open: () => ({ done: Promise.resolve(), cancel: () => undefined }) },
    system: { info: () => ({ version: "test" }), shutdown: async () => ({ stoppedTasks: 0 }), exit: async () => undefined },
    ...deps,
  });
}

/** The API on a fresh memory store and fake clock; `post` sends a JSON body. */
export async function memoryApi(deps: Partial<Omit<ApiDeps, "store" | "clock">> = {}) {
  const clock = new FakeClock();
  const store = createMemoryStore({ clock });
  const a = await testApi({ store, clock, ...deps });
  const post = (url: string, payload: object) => a.inject({ method: "POST", url, payload });
  return { a, store, clock, post };
}
