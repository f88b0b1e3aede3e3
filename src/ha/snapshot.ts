import { Readable } from "node:stream";
import { BatonError } from "../lib/errors.js";
import { newEtcdClient, type EtcdConnection } from "../store/etcd/etcd-client.js";

/** A snapshot being read from an etcd member. */
export interface EtcdSnapshot {
  /**
   * The store revision when the snapshot began: it holds at least that one (etcd 3.4 does not
   * put the snapshot's own revision in the stream; later versions do, and it is used then).
   */
  revision: number;
  /** The snapshot file's bytes, as `etcdctl snapshot save` writes them (etcd's hash at the end). */
  stream: Readable;
}

/**
 * Starts an etcd snapshot through the maintenance API (what `etcdctl snapshot save` does) and
 * resolves once its first chunk arrived, so the caller knows it works before answering.
 * The snapshot is the member's whole backend: every key of every Baton object at one revision.
 */
export async function openSnapshot(conn: EtcdConnection): Promise<EtcdSnapshot> {
  const client = newEtcdClient(conn);
  // The gRPC stream is a Node stream: paused while the HTTP answer is slower than etcd, so a
  // snapshot of gigabytes is not held in memory.
  let source: Awaited<ReturnType<typeof client.maintenance.snapshot>> & { pause(): void; resume(): void };
  const out = new Readable({ read: () => source?.resume() });
  try {
    const before = Number((await client.maintenance.status()).header.revision);
    source = (await client.maintenance.snapshot()) as typeof source;
    // A reader that goes away (the CLI interrupted) ends the gRPC call and the client.
    out.once("close", () => {
      (source as unknown as { cancel?: () => void }).cancel?.();
      client.close();
    });
    return await new Promise<EtcdSnapshot>((resolve, reject) => {
      let started = false;
      source.on("data", (chunk) => {
        if (!started) {
          started = true;
          const rev = (chunk.header as { revision?: string } | null)?.revision;
          resolve({ revision: rev ? Number(rev) : before, stream: out });
        }
        if (!out.push(chunk.blob)) source.pause();
      });
      source.on("end", () => {
        if (!started) reject(new BatonError("UNAVAILABLE", "etcd sent an empty snapshot"));
        out.push(null);
        client.close();
      });
      source.on("error", (err) => {
        client.close();
        const e = new BatonError("UNAVAILABLE", `etcd snapshot failed: ${err.message}`, [], { cause: err, retryable: true });
        if (started) out.destroy(e);
        else reject(e);
      });
    });
  } catch (err) {
    client.close();
    throw err instanceof BatonError ? err : new BatonError("UNAVAILABLE", `etcd snapshot failed: ${(err as Error).message}`, [], { cause: err, retryable: true });
  }
}
