import { after, test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { once } from "node:events";
import dnsPacket from "dns-packet";
import { silentLogger } from "../lib/log.js";
import { startDnsResponder, type DnsResponder } from "./dns.js";

let responder: DnsResponder;
const client = dgram.createSocket("udp4");
after(async () => {
  await responder?.close();
  client.close();
});

const names: Record<string, string[]> = { web: ["127.77.0.5"] };

type Reply = Omit<dnsPacket.DecodedPacket, "answers"> & { rcode: string; answers: { type: string; name: string; data: unknown }[] };

async function query(name: string, type: "A" | "AAAA" = "A"): Promise<Reply> {
  responder ??= await startDnsResponder({ host: "127.0.0.1", port: 0, resolve: (n) => names[n], log: silentLogger() });
  const id = Math.floor(Math.random() * 65535);
  client.send(dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] }), responder.port, "127.0.0.1");
  const [msg] = (await once(client, "message")) as [Buffer];
  const reply = dnsPacket.decode(msg) as Reply; // @types/dns-packet lacks the decoded rcode
  assert.equal(reply.id, id);
  return reply;
}

test("an A query for a service name gets its VIP", async () => {
  const r = await query("web");
  assert.equal(r.rcode, "NOERROR");
  assert.deepEqual(r.answers.map((a) => [a.type, a.name, a.data]), [["A", "web", "127.77.0.5"]]);
  assert.equal(r.flag_aa, true);
  assert.equal(r.flag_rd, true, "RD is echoed");
});

test("names are matched case-insensitively and with a trailing dot", async () => {
  const r = await query("WEB.");
  assert.equal(r.answers[0]?.data, "127.77.0.5");
});

test("an unknown name is NXDOMAIN", async () => {
  const r = await query("nope");
  assert.equal(r.rcode, "NXDOMAIN");
  assert.deepEqual(r.answers, []);
});

test("another record type for a known name is an empty NOERROR", async () => {
  const r = await query("web", "AAAA");
  assert.equal(r.rcode, "NOERROR");
  assert.deepEqual(r.answers, []);
});
