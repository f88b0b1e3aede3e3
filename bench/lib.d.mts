// Types of bench/lib.mjs for bench/*.ts (run with `node --import tsx`).
export interface Stats {
  n: number;
  min?: number;
  median?: number;
  p90?: number;
  max?: number;
  samples?: number[];
}
export function sleep(ms: number): Promise<void>;
export function now(): number;
export function log(...a: unknown[]): void;
export function r1(x: number): number;
export function stats(xs: (number | undefined | null)[]): Stats;
export function loadavg(): number[];
export function pollUntil<T>(fn: () => Promise<T> | T, timeoutMs: number, intervalMs: number, what?: string): Promise<Exclude<T, undefined | null | false | 0 | "">>;
export function batonApi(socketPath: string): { call<T = unknown>(method: string, path: string, body?: unknown): Promise<T>; close(): void };
