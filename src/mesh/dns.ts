import dgram from "node:dgram";
import dnsPacket from "dns-packet";
import type { Logger } from "../lib/log.js";

/**
 * Addresses for a name (service name → VIP) as `from` (the asker's address) may see it;
 * undefined = the name does not exist for it.
 */
export type ResolveName = (name: string, from: string) => string[] | undefined;

export interface DnsResponderOptions {
  host: string;
  /** 0 picks a free port (tests); read the bound one from `port`. */
  port: number;
  resolve: ResolveName;
  log: Logger;
  /**
   * TTL of answers. Short: a VIP is stable, but a removed service should stop resolving soon.
   * @default 5
   */
  ttlSeconds?: number;
}

export interface DnsResponder {
  readonly port: number;
  close(): Promise<void>;
}

const RCODE = { NOERROR: 0, FORMERR: 1, NXDOMAIN: 3, NOTIMP: 4 } as const;
/** Bits of the query's flags echoed in the reply: opcode (11-14) and RD (8). */
const ECHOED_FLAGS = 0x7800 | dnsPacket.RECURSION_DESIRED;

/**
 * A minimal authoritative DNS server over UDP for service names: A queries get the names'
 * addresses, any other type for a known name gets an empty NOERROR (the name exists, without
 * that record), unknown names NXDOMAIN, and opcodes other than QUERY NOTIMP. It answers
 * nothing else and forwards nothing: resolv.conf should list it for service names only.
 */
export async function startDnsResponder(opts: DnsResponderOptions): Promise<DnsResponder> {
  const ttl = opts.ttlSeconds ?? 5;
  const socket = dgram.createSocket(opts.host.includes(":") ? "udp6" : "udp4");
  socket.on("message", (msg, rinfo) => {
    const reply = answer(msg, (name) => opts.resolve(name, rinfo.address), ttl);
    if (reply) socket.send(reply, rinfo.port, rinfo.address);
  });
  socket.on("error", (err) => opts.log.warn({ err }, "dns responder error"));
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ address: opts.host, port: opts.port, exclusive: true }, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  return {
    port: socket.address().port,
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

/** The reply to one datagram, or undefined when it is not a DNS query at all (dropped). */
export function answer(msg: Buffer, resolve: (name: string) => string[] | undefined, ttl: number): Buffer | undefined {
  let q: dnsPacket.Packet;
  try {
    q = dnsPacket.decode(msg);
  } catch {
    return msg.length >= 2 ? reply(msg.readUInt16BE(0), 0, [], [], RCODE.FORMERR) : undefined;
  }
  if (q.type !== "query") return undefined;
  const flags = (q.flags ?? 0) & ECHOED_FLAGS;
  const questions = q.questions ?? [];
  if (((flags >> 11) & 0xf) !== 0 || questions.length !== 1) return reply(q.id ?? 0, flags, questions, [], RCODE.NOTIMP);
  const question = questions[0]!;
  const addrs = resolve(question.name.toLowerCase().replace(/\.$/, ""));
  if (addrs === undefined) return reply(q.id ?? 0, flags, questions, [], RCODE.NXDOMAIN);
  const answers: dnsPacket.Answer[] = question.type === "A" ? addrs.filter((a) => !a.includes(":")).map((data) => ({ type: "A", name: question.name, ttl, data })) : [];
  return reply(q.id ?? 0, flags, questions, answers, RCODE.NOERROR);
}

function reply(id: number, flags: number, questions: dnsPacket.Question[], answers: dnsPacket.Answer[], rcode: number): Buffer {
  return dnsPacket.encode({ type: "response", id, flags: flags | dnsPacket.AUTHORITATIVE_ANSWER | rcode, questions, answers });
}
