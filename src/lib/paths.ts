import { join } from "node:path";

/** `$BATON_DATA_DIR`, else `~/.baton`: where `baton up` keeps its store, logs and socket. */
export const defaultDataDir = (): string => process.env.BATON_DATA_DIR ?? join(process.env.HOME ?? "/root", ".baton");
