import { test } from "node:test";
import assert from "node:assert/strict";
import { engineMounts, inSubnet } from "./attachments.js";

test("inSubnet: IPv4 CIDR membership, nonsense is outside", () => {
  assert.equal(inSubnet("172.18.0.5", "172.18.0.0/16"), true);
  assert.equal(inSubnet("172.19.0.5", "172.18.0.0/16"), false);
  assert.equal(inSubnet("10.0.0.1", "0.0.0.0/0"), true);
  assert.equal(inSubnet("192.168.1.255", "192.168.1.0/24"), true);
  assert.equal(inSubnet("192.168.2.0", "192.168.1.0/24"), false);
  assert.equal(inSubnet("fe80::1", "172.18.0.0/16"), false);
  assert.equal(inSubnet("172.18.0.5", "172.18.0.0/40"), false);
});

test("engine mounts: volume, read-only bind, sized tmpfs", () => {
  assert.deepEqual(engineMounts([{ type: "volume", source: "d", target: "/d" }, { type: "bind", source: "/s", target: "/s", readOnly: true }, { type: "tmpfs", target: "/t", tmpfsSizeBytes: 1024 }]), [
    { Type: "volume", Source: "d", Target: "/d" },
    { Type: "bind", Source: "/s", Target: "/s", ReadOnly: true },
    { Type: "tmpfs", Source: "", Target: "/t", TmpfsOptions: { SizeBytes: 1024, Mode: 0o1777 } },
  ]);
});
