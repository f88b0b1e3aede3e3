/** Baton's version, shown by `baton --version` and reported by every agent. */
export const BATON_VERSION = "0.1.0";
