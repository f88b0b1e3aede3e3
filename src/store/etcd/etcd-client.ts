import { readFileSync } from "node:fs";
import { noop } from "cockatiel";
import { Etcd3, type IOptions } from "etcd3";
import { BatonError } from "../../lib/errors.js";
import type { Logger } from "../../lib/log.js";
import { EndpointHealth } from "./endpoint-health.js";

/** PEM material for TLS to etcd: the CA that signed the members' certificates, and a client certificate. */
export interface EtcdTls {
  caCertPem: string;
  /** With `keyPem`: the client certificate etcd's --client-cert-auth asks for. */
  certPem?: string;
  keyPem?: string;
}

/** Where an etcd cluster answers and how to speak to it. */
export interface EtcdConnection {
  /** Client URLs (`https://10.0.0.5:2379`); https when `tls` is set. */
  endpoints: string[];
  tls?: EtcdTls;
}

/** What newEtcdClient adds beside etcd3's own options. */
export interface EtcdClientExtras {
  /**
   * Probe every member and route around the ones that stop answering (EndpointHealth). On by
   * default with several endpoints, unless `faultHandling.host` is given.
   */
  endpointHealth?: boolean;
  /** Told when a member is found down or back (probes on). */
  onEndpointChange?: (endpoint: string, up: boolean, reason: string) => void;
  /** Logs each member found down (warn) or back (info), when given. */
  log?: Logger;
}

/**
 * An etcd3 client without client-side retries: a call whose answer was lost may have been
 * applied, and a retry would then report a conflict (or add a member twice) for something that
 * happened. Callers decide what is safe to retry.
 *
 * With several endpoints, each member is probed (src/store/etcd/endpoint-health.ts): a member that
 * stops answering is skipped by new calls, and the calls waiting on it — a transaction, the
 * store's watch — are cancelled as UNAVAILABLE within about a second, so a partition costs
 * callers one failed call, not a 5 s deadline on every third call.
 */
export function newEtcdClient(conn: EtcdConnection, extra: Partial<IOptions> = {}, extras: EtcdClientExtras = {}): Etcd3 {
  const tls = conn.tls;
  const credentials: Partial<IOptions> = tls
    ? {
        credentials: {
          rootCertificate: Buffer.from(tls.caCertPem),
          ...(tls.keyPem && tls.certPem ? { privateKey: Buffer.from(tls.keyPem), certChain: Buffer.from(tls.certPem) } : {}),
        },
      }
    : {};
  const probing = extras.endpointHealth ?? (conn.endpoints.length > 1 && extra.faultHandling?.host === undefined);
  if (!probing) return new Etcd3({ hosts: conn.endpoints, faultHandling: { global: noop }, ...credentials, ...extra });
  const health = new EndpointHealth({
    endpoints: conn.endpoints,
    clientOptions: { ...credentials, ...(extra.grpcOptions ? { grpcOptions: extra.grpcOptions } : {}) },
    onChange: (endpoint, up, reason) => {
      if (up) extras.log?.info({ endpoint }, "etcd member answers again");
      else extras.log?.warn({ endpoint, reason }, "etcd member stopped answering: calls go to the other members");
      extras.onEndpointChange?.(endpoint, up, reason);
    },
  });
  const callOptions = extra.defaultCallOptions;
  const client = new Etcd3({
    hosts: conn.endpoints,
    ...credentials,
    ...extra,
    faultHandling: { ...extra.faultHandling, global: extra.faultHandling?.global ?? noop, host: (h) => health.hostPolicy(h) },
    defaultCallOptions: (ctx) => {
      const base = typeof callOptions === "function" ? callOptions(ctx) : (callOptions ?? {});
      const interceptor = health.interceptor();
      return interceptor ? { ...base, interceptors: [...(base.interceptors ?? []), interceptor] } : base;
    },
  });
  const close = client.close.bind(client);
  client.close = () => {
    health.close();
    close();
  };
  health.start();
  return client;
}

/** The files of `--etcd-ca`, `--etcd-cert` and `--etcd-key` (absolute paths, as cluster.json keeps them). */
export interface EtcdTlsFiles {
  ca: string;
  cert?: string;
  key?: string;
}

/**
 * Checks the flags together: a CA is needed for any TLS, and a certificate comes with its key.
 * Returns undefined when no TLS flag was given.
 */
export function etcdTlsFlags(flags: { etcdCa?: string | undefined; etcdCert?: string | undefined; etcdKey?: string | undefined }): EtcdTlsFiles | undefined {
  const { etcdCa, etcdCert, etcdKey } = flags;
  if (etcdCa === undefined && etcdCert === undefined && etcdKey === undefined) return undefined;
  const problems = [];
  if (etcdCa === undefined) problems.push({ path: ["--etcd-ca"], problem: "required with --etcd-cert/--etcd-key (the CA that signed the etcd members' certificates)" });
  if ((etcdCert === undefined) !== (etcdKey === undefined))
    problems.push({ path: [etcdCert === undefined ? "--etcd-cert" : "--etcd-key"], problem: "--etcd-cert and --etcd-key go together" });
  if (problems.length > 0) throw new BatonError("VALIDATION_FAILED", `TLS to etcd: ${problems.map((p) => `${p.path[0]}: ${p.problem}`).join("; ")}`, problems);
  return { ca: etcdCa!, ...(etcdCert !== undefined ? { cert: etcdCert, key: etcdKey! } : {}) };
}

/** Reads the PEM files; an unreadable or non-PEM file is an error naming its flag. */
export function loadEtcdTls(files: EtcdTlsFiles): EtcdTls {
  const read = (path: string, flag: string, label: RegExp): string => {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new BatonError("VALIDATION_FAILED", `${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, [{ path: [flag], problem: "unreadable" }], { cause: err });
    }
    if (!label.test(text)) throw new BatonError("VALIDATION_FAILED", `${flag} ${path}: not a PEM file of the expected kind`, [{ path: [flag], problem: "not PEM" }]);
    return text;
  };
  return {
    caCertPem: read(files.ca, "--etcd-ca", /-----BEGIN CERTIFICATE-----/),
    ...(files.cert && files.key
      ? { certPem: read(files.cert, "--etcd-cert", /-----BEGIN CERTIFICATE-----/), keyPem: read(files.key, "--etcd-key", /-----BEGIN [A-Z ]*PRIVATE KEY-----/) }
      : {}),
  };
}
