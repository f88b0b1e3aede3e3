// issue #7: SSE ignored backpressure on res.write; a slow reader grew the manager's memory
// without bound and then got silence.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testApi } from "../../test/harness/api.js";
import { createMemoryStore } from "../store/memory/memory-store.js";
import { systemClock } from "../lib/clock.js";
import { aService } from "../../test/harness/builders.js";
import { waitFor } from "../../test/harness/baton.js";
import { MAX_BUFFERED_BYTES } from "./stream-writer.js";

/** Reads an SSE response raw: a paused socket is a reader that has stopped reading. */
function rawEvents(socketPath: string, since: number) {
  const sock = connect(socketPath);
  sock.write(`GET /v1/events?since=${since} HTTP/1.1\r\nHost: x\r\n\r\n`);
  let text = "";
  sock.on("data", (d: Buffer) => (text += d.toString("utf8")));
  const ended = new Promise<void>((r) => sock.on("close", () => r()));
  return { sock, ended, text: () => text };
}

const revisionsIn = (text: string): number[] => [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));

test("a slow SSE reader of a 10,000-change burst: bounded buffering, then a resumable SLOW_CONSUMER error; resuming loses nothing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "baton-sse-"));
  const store = createMemoryStore({ clock: systemClock, historyLimit: 20_000 });
  const app = await testApi({ store, clock: systemClock });
  const socketPath = join(dir, "api.sock");
  await app.listen({ path: socketPath });
  try {
    const svc = aService({ name: "burst", labels: { pad: "x".repeat(800) } });
    await store.update((tx) => tx.create("services", { id: svc.id, spec: svc.spec, specVersion: 1 }));
    const start = store.revision();
    const slow = rawEvents(socketPath, start);
    await waitFor(() => slow.text().includes(": revision"), 5000, "stream head");
    slow.sock.pause();
    for (let i = 0; i < 10_000; i++) {
      await store.update((tx) => {
        const s = tx.serviceByName("burst")!;
        tx.update("services", { ...s, spec: { ...s.spec, labels: { ...s.spec.labels, n: String(i) } } });
      });
    }
    assert.equal(store.revision(), start + 10_000);
    // The reader wakes up: it finds what was buffered (bounded), then the error, then the end.
    slow.sock.resume();
    await slow.ended;
    const text = slow.text();
    assert.ok(text.length < MAX_BUFFERED_BYTES + 2 * 1024 * 1024, `at most the buffer limit (+ socket buffers) was queued for it: ${text.length} bytes`);
    const m = /event: error\ndata: (.*)\n/.exec(text);
    assert.ok(m, "the stream ended with an error event, not silence");
    const err = JSON.parse(m[1]!) as { code: string; resumeFrom: number };
    assert.equal(err.code, "SLOW_CONSUMER");
    const got = revisionsIn(text);
    assert.equal(got.at(-1), err.resumeFrom, "resumeFrom is the last revision delivered whole");
    assert.ok(err.resumeFrom < start + 10_000, "it did fall behind");
    // Resuming from there delivers the rest, with no gap and no repeat.
    const fast = rawEvents(socketPath, err.resumeFrom);
    await waitFor(() => revisionsIn(fast.text()).at(-1) === start + 10_000, 10_000, "the resumed stream reaches the last revision");
    fast.sock.destroy();
    const all = [...got, ...revisionsIn(fast.text())];
    assert.deepEqual(all, Array.from({ length: 10_000 }, (_, i) => start + 1 + i));
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
