import { spawn } from "node:child_process";
import { join } from "node:path";

/** The dynamic provider methods Pulumi's provider host calls. */
export type ProviderMethod = "check" | "diff" | "create" | "read" | "update" | "delete";

/** Error thrown by a serialized provider method, carrying its original name and message. */
export class SerializedProviderError extends Error {}

/**
 * Calls one method of a serialized dynamic provider (the `__provider` input the mocks receive) in a
 * fresh plain-node process, the way Pulumi's provider host does: closure-serialization mistakes surface
 * here, where calling the class directly would hide them. Resolves with the method's result.
 */
export async function callSerializedProvider(
  text: string,
  method: ProviderMethod,
  args: unknown[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<any> {
  const child = spawn(process.execPath, [join(__dirname, "provider-host.js")], {
    cwd: opts.cwd ?? join(__dirname, "..", ".."),
    env: opts.env ?? process.env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
  child.stdin.end(JSON.stringify({ text, method, args }));
  const code: number | null = await new Promise((resolve) => child.on("close", resolve));
  clearTimeout(timer);
  let parsed: { ok: boolean; result?: unknown; error?: { name?: string; message: string } };
  try {
    parsed = JSON.parse(out);
  } catch {
    throw new Error(`provider host exited ${code} without a result; stderr:\n${err}`);
  }
  if (!parsed.ok) {
    const e = new SerializedProviderError(parsed.error?.message ?? "unknown error");
    e.name = parsed.error?.name ?? "Error";
    throw e;
  }
  return parsed.result;
}
