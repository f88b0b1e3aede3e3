import { request, type RequestOptions } from "node:https";
import type { JoinRequest, JoinResponse, JoinTransport } from "../ca/join.js";
import { RevocationList } from "../ca/revocation.js";
import { clientTlsOptions } from "../ca/tls.js";
import { verifyPeer } from "../ca/verify.js";
import type { NodeCredentials } from "../ca/node-cert.js";
import type { Clock } from "../lib/clock.js";
import { BatonError, type ErrorCode } from "../lib/errors.js";
import { parseHostPort } from "./config.js";

const TIMEOUT_MS = 10_000;

/** One HTTPS exchange with a manager; errors come back as the API's BatonErrors. */
function exchange(manager: string, path: string, tls: RequestOptions, body?: unknown): Promise<string> {
  const { host, port } = parseHostPort(manager, "manager");
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port,
        path,
        method: data === undefined ? "GET" : "POST",
        headers: data === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(data) },
        timeout: TIMEOUT_MS,
        agent: false,
        ...tls,
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString("utf8")));
        res.on("end", () => {
          if ((res.statusCode ?? 500) < 400) return resolve(text);
          let j: { code?: ErrorCode; message?: string } = {};
          try {
            j = JSON.parse(text) as typeof j;
          } catch {
            /* not JSON */
          }
          reject(new BatonError(j.code ?? "UNAVAILABLE", j.message ?? `manager ${manager} answered HTTP ${res.statusCode}`));
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on("error", (err) => reject(err instanceof BatonError ? err : new BatonError("UNAVAILABLE", `cannot reach manager ${manager}: ${err.message}`)));
    req.end(data);
  });
}

/**
 * How a joining node reaches the manager before it has a certificate. The CA is fetched over a
 * connection that trusts nothing (it is checked against the token's fingerprint next); the
 * token is sent only over a connection whose server proved a manager certificate of that CA.
 */
export function httpsJoinTransport(manager: string, clock: Clock): JoinTransport {
  return {
    fetchCaCert: () => exchange(manager, "/v1/join/ca", { rejectUnauthorized: false }),
    requestCertificate: async (req: JoinRequest, caCertPem: string): Promise<JoinResponse> => {
      const deps = { caCertPem, clock, revocations: new RevocationList() };
      const tls: RequestOptions = {
        ca: [caCertPem],
        rejectUnauthorized: true,
        minVersion: "TLSv1.3",
        checkServerIdentity: (_host, cert) => {
          try {
            verifyPeer(cert, deps, { requireRole: "manager" });
            return undefined;
          } catch (err) {
            return err instanceof Error ? err : new Error(String(err));
          }
        },
      };
      return JSON.parse(await exchange(manager, "/v1/join", tls, req)) as JoinResponse;
    },
  };
}

/** A promoted worker exchanges its worker certificate (mutual TLS) and a CSR for a manager's and the manager material. */
export async function fetchPromotion(manager: string, creds: NodeCredentials, csrPem: string, clock: Clock): Promise<JoinResponse> {
  const tls = clientTlsOptions(creds, { caCertPem: creds.caCertPem, clock, revocations: new RevocationList() }, { requireRole: "manager" });
  return JSON.parse(await exchange(manager, "/v1/join/promote", tls as RequestOptions, { csrPem })) as JoinResponse;
}

/** A node renews its certificate with the one it has (mutual TLS), keeping its key's successor. */
export async function renewCertificate(manager: string, creds: NodeCredentials, csrPem: string, clock: Clock): Promise<JoinResponse> {
  const tls = clientTlsOptions(creds, { caCertPem: creds.caCertPem, clock, revocations: new RevocationList() }, { requireRole: "manager" });
  return JSON.parse(await exchange(manager, "/v1/join/renew", tls as RequestOptions, { csrPem })) as JoinResponse;
}
