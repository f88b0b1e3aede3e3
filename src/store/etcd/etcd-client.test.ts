import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatonError } from "../../lib/errors.js";
import { etcdTlsFlags, loadEtcdTls } from "./etcd-client.js";

const fieldOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof BatonError && e.code === "VALIDATION_FAILED", String(e));
    return String(e.fields[0]?.path[0]);
  }
  return undefined;
};

test("--etcd-* flags: none is no TLS; a CA alone is server TLS; cert and key go together, with a CA", () => {
  assert.equal(etcdTlsFlags({}), undefined);
  assert.deepEqual(etcdTlsFlags({ etcdCa: "ca.pem" }), { ca: "ca.pem" });
  assert.deepEqual(etcdTlsFlags({ etcdCa: "ca.pem", etcdCert: "c.pem", etcdKey: "k.pem" }), { ca: "ca.pem", cert: "c.pem", key: "k.pem" });
  assert.equal(fieldOf(() => etcdTlsFlags({ etcdCa: "ca.pem", etcdCert: "c.pem" })), "--etcd-key");
  assert.equal(fieldOf(() => etcdTlsFlags({ etcdCa: "ca.pem", etcdKey: "k.pem" })), "--etcd-cert");
  assert.equal(fieldOf(() => etcdTlsFlags({ etcdCert: "c.pem", etcdKey: "k.pem" })), "--etcd-ca");
});

test("--etcd-* files: a missing or non-PEM file is refused naming its flag", () => {
  const d = mkdtempSync(join(tmpdir(), "baton-etcd-tls-"));
  const cert = join(d, "c.pem");
  writeFileSync(cert, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  const key = join(d, "k.pem");
  writeFileSync(key, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  assert.equal(fieldOf(() => loadEtcdTls({ ca: join(d, "none.pem") })), "--etcd-ca");
  assert.equal(fieldOf(() => loadEtcdTls({ ca: cert, cert: key, key })), "--etcd-cert");
  assert.equal(fieldOf(() => loadEtcdTls({ ca: cert, cert, key: cert })), "--etcd-key");
  assert.deepEqual(Object.keys(loadEtcdTls({ ca: cert, cert, key })).sort(), ["caCertPem", "certPem", "keyPem"]);
});
