// Off-site manifests signed with the backup key (issue 15 A): anyone who can write to the bucket can
// plant an object and a manifest beside it, so with a key only a manifest whose MAC checks is believed,
// and only its signed `createdAt` decides which copy is the newest.
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";

/** The `auth.algorithm` of a signed manifest: HMAC-SHA256 of its canonical JSON under an HKDF subkey. */
export const MANIFEST_MAC = "hmac-sha256/hkdf-sha256";

/** What a manifest carries once signed. */
export interface ManifestAuth {
  algorithm: typeof MANIFEST_MAC;
  mac: string;
}

// A subkey, not the AES key itself, so the cipher and the MAC never share a key.
function macKey(backupKey: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", backupKey, "", "safe-deploy off-site manifest v1", 32));
}

// Sorted keys: the stored JSON may be re-indented or re-ordered by a tool without breaking the MAC.
// Required here: this runs inside the serialized backup provider, which captures no module values.
function macOf(fields: object, backupKey: Buffer): Buffer {
  const { stringify } = require("safe-stable-stringify") as typeof import("safe-stable-stringify");
  return createHmac("sha256", macKey(backupKey))
    .update(stringify(fields) ?? "", "utf8")
    .digest();
}

/** `m` with an `auth` field whose MAC covers every other field. Pure. */
export function signManifest<T extends object>(m: T, backupKey: Buffer): T & { auth: ManifestAuth } {
  const { auth: _old, ...fields } = m as T & { auth?: unknown };
  return {
    ...(fields as T),
    auth: { algorithm: MANIFEST_MAC, mac: macOf(fields, backupKey).toString("hex") },
  };
}

/** Whether `m` is signed with `backupKey`: "ok", "unsigned" (no `auth`), or "bad" (altered or another key). Pure. */
export function manifestAuthStatus(m: unknown, backupKey: Buffer): "ok" | "unsigned" | "bad" {
  if (!m || typeof m !== "object") return "bad";
  const { auth, ...fields } = m as { auth?: Partial<ManifestAuth> };
  if (auth === undefined) return "unsigned";
  if (auth?.algorithm !== MANIFEST_MAC || typeof auth.mac !== "string" || !/^[0-9a-f]{64}$/.test(auth.mac))
    return "bad";
  return timingSafeEqual(Buffer.from(auth.mac, "hex"), macOf(fields, backupKey)) ? "ok" : "bad";
}
