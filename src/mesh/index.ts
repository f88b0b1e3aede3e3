export { Mesh, type MeshDeps } from "./mesh.js";
export { startDnsResponder, type DnsResponder, type DnsResponderOptions, type ResolveName } from "./dns.js";
export { allocateVip, envPrefix, serviceEnv, VIP_RANGE } from "../model/service-address.js";
export { withActivator, pickNow, type Acquire, type ActivatorDeps } from "./activator.js";
export { retryOnConnectFailure, neverRetry, type RetryPolicy, type AttemptOutcome } from "./l7/retry.js";
export * from "./types.js";
