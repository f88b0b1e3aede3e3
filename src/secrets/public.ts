import type { Kind, Secret } from "../model/objects.js";
import type { StoredObject } from "../store/store.js";

/** A secret as the API and the events stream show it: metadata, never the data (not even sealed). */
export type PublicSecret = Omit<Secret, "sealed">;

export function publicSecret(s: Secret): PublicSecret {
  const rest: Partial<Secret> = { ...s };
  delete rest.sealed;
  return rest as PublicSecret;
}

/** Any stored object as it may leave the manager through the API or the events stream. */
export function publicObject(kind: Kind, o: StoredObject): StoredObject | PublicSecret {
  return kind === "secrets" ? publicSecret(o as Secret) : o;
}
