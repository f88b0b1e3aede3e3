/**
 * Set on a request one manager forwards to another (cluster/session-forward.ts): the receiver
 * serves it from the agent sessions it holds and never forwards it again, so a session that
 * moved meanwhile is an error rather than a loop.
 */
export const FORWARDED_HEADER = "x-baton-forwarded";
