import { redact, urlSecrets } from "../log/redact";
import type { ProbeResult } from "./types";

/** `SELECT 1` over a fresh connection within the timeout; never throws, never shows the password. */
export async function postgresProbe(databaseUrl: string, timeoutMs: number): Promise<ProbeResult> {
  // Required here, not at module scope, so a dynamic provider copying this function stays serializable.
  const { Client, DatabaseError } = require("pg");
  let client: import("pg").Client | undefined;
  try {
    // Inside the try: an unparsable URL (a port over 65535) throws here, and a probe never throws.
    client = new Client({
      connectionString: databaseUrl,
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
    }) as import("pg").Client;
    client.on("error", () => {});
    await client.connect();
    const r = await client.query("SELECT 1 AS ok");
    return r.rows[0]?.ok === 1 ? { ok: true } : { ok: false, detail: "postgres: SELECT 1 returned no row" };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    // The server's errors carry a SQLSTATE (28P01, XX000) that says less than their message; Node's a code.
    const why = err.code && !(e instanceof DatabaseError) ? err.code : err.message;
    return { ok: false, detail: `postgres: ${redact(why, urlSecrets(databaseUrl))}` };
  } finally {
    await client?.end().catch(() => {});
  }
}
