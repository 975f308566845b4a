import { X509Certificate } from "node:crypto";
import { Command, Option } from "commander";

/** Options of `safe-deploy health` (flags as parsed: strings until checked). */
export interface HealthOpts {
  url?: string;
  retries?: string | number;
  delay?: string | number;
  timeout?: string | number;
  expectStatus?: string | number | Array<string | number>;
  /** Attempts of the soak after the check passes; `true` means the users' default of 15. */
  soak?: boolean | string | number;
  /** JSON body assertion `PATH=VALUE`, VALUE parsed as JSON when it can be. */
  expectJson?: string;
  /** PEM file of a CA to trust for an https:// URL. */
  ca?: string;
  /** Seconds between soak attempts; default the stack's `health.soakDelaySeconds` default, 2. */
  soakDelay?: string | number;
  /** Print the result as JSON on stdout (progress stays on stderr). */
  json?: boolean;
}

/** The stack's soak gap (`health.soakDelaySeconds`' default): the soak is not paced by `--delay`'s 10 s. */
export const DEFAULT_SOAK_DELAY = 2;

/** Whether PEM text holds at least one certificate Node can parse. */
function holdsCertificate(pem: string): boolean {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.some((b) => {
    try {
      new X509Certificate(b);
      return true;
    } catch {
      return false;
    }
  });
}

/** The users' "up to 15 times" (shared/seeds): the soak's default attempts. */
export const DEFAULT_SOAK = 15;

type Out = (line: string) => void;
const stderr: Out = (l) => process.stderr.write(l + "\n");

async function configError(message: string): Promise<never> {
  const { ConfigError } = await import("../../core/errors");
  throw new ConfigError(message);
}

async function num(flag: string, v: string | number | undefined, dflt: number, min: number, int: boolean) {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || (int && !Number.isInteger(n))) {
    return configError(
      `\`--${flag}\` must be ${int ? "an integer" : "a number"} >= ${min}, got ${JSON.stringify(v)}`,
    );
  }
  return n;
}

/**
 * `safe-deploy health`: polls the URL until healthy (defaults 3 attempts, 10 s apart, 5 s each),
 * then, with `--soak`, requires N more healthy answers in a row. Throws CheckFailedError (exit 1)
 * with every attempt summarised; bad flags are ConfigError (exit 2).
 */
export async function runHealth(
  o: HealthOpts,
  out: Out = stderr,
): Promise<{ attempts: number; soaked: number }> {
  if (!o.url) return configError("`--url` is required, e.g. --url http://127.0.0.1:8080/health");
  try {
    const u = new URL(o.url);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error();
  } catch {
    return configError(`\`--url\` must be an http:// or https:// URL`);
  }
  const retries = await num("retries", o.retries, 3, 1, true);
  const delaySeconds = await num("delay", o.delay, 10, 0, false);
  const soakDelaySeconds = await num("soak-delay", o.soakDelay, DEFAULT_SOAK_DELAY, 0, false);
  const timeoutSeconds = await num("timeout", o.timeout, 5, 0.001, false);
  const codes = (
    Array.isArray(o.expectStatus) ? o.expectStatus : o.expectStatus === undefined ? [] : [o.expectStatus]
  )
    .flatMap((c) => String(c).split(","))
    .map((c) => c.trim())
    .filter((c) => c !== "");
  const expectStatus = codes.map(Number);
  if (expectStatus.some((c) => !Number.isInteger(c) || c < 100 || c > 599)) {
    return configError(
      `\`--expect-status\` takes HTTP status codes (e.g. 200 or 200,204), got ${codes.join(",")}`,
    );
  }
  const soak =
    o.soak === undefined || o.soak === false
      ? 0
      : o.soak === true
        ? DEFAULT_SOAK
        : await num("soak", o.soak, DEFAULT_SOAK, 1, true);
  let json: { path: string; equals: unknown } | undefined;
  if (o.expectJson !== undefined) {
    const i = o.expectJson.indexOf("=");
    if (i <= 0) return configError('`--expect-json` takes PATH=VALUE, e.g. checks.db="ok"');
    const raw = o.expectJson.slice(i + 1);
    let equals: unknown = raw;
    try {
      equals = JSON.parse(raw);
    } catch {
      equals = raw;
    }
    json = { path: o.expectJson.slice(0, i), equals };
  }

  let ca: string | undefined;
  if (o.ca !== undefined) {
    const { readFile } = await import("node:fs/promises");
    ca = await readFile(o.ca, "utf8").catch(() => configError(`\`--ca\` file ${o.ca} cannot be read`));
    // Node skips what is not a certificate without a word: the check would then fail as if no --ca were given.
    if (!holdsCertificate(ca)) {
      return configError(
        `\`--ca\` file ${o.ca} holds no PEM certificate (-----BEGIN CERTIFICATE-----): pass the CA that signed the server's certificate, or the self-signed certificate itself (not its key)`,
      );
    }
  }

  const { runGate } = await import("../../core/health/run");
  const { CheckFailedError } = await import("../../core/errors");
  const { redactUrls } = await import("../../core/log/redact");
  const shown = redactUrls(o.url);
  const spec = {
    url: o.url,
    expectStatus: expectStatus.length ? expectStatus : undefined,
    retries,
    delaySeconds,
    timeoutSeconds,
    json,
    ca,
  };
  const progress = (label: string) => ({
    onAttempt: (a: { ok: boolean; status?: number; detail?: string }, n: number) =>
      out(
        `${label} ${n}: ${a.ok ? "ok" : "failed"}${a.status !== undefined ? ` (${a.status})` : ""}${a.ok || !a.detail ? "" : ` ${redactUrls(a.detail)}`}`,
      ),
  });
  out(
    `health: checking ${shown} (${retries} attempt(s), ${delaySeconds} s apart, ${timeoutSeconds} s timeout)`,
  );
  const first = await runGate(spec, progress("attempt"));
  if (!first.ok) {
    // The gate's message says what to do, a certificate or a redirect included.
    throw new CheckFailedError(first.message);
  }
  if (soak === 0) {
    out(`health: ${shown} is healthy after ${first.attempts.length} attempt(s)`);
    return { attempts: first.attempts.length, soaked: 0 };
  }
  out(`health: healthy; soaking ${soak} attempt(s), ${soakDelaySeconds} s apart, every one must pass`);
  const soaked = await runGate(
    { ...spec, retries: soak, successThreshold: soak, delaySeconds: soakDelaySeconds },
    progress("soak"),
  );
  if (!soaked.ok) throw new CheckFailedError(`soak after cutover failed: ${soaked.message}`);
  out(`health: ${shown} stayed healthy for ${soak} attempt(s)`);
  return { attempts: first.attempts.length, soaked: soaked.attempts.length };
}

/** Registers `health`. */
export function register(program: Command): void {
  program
    .command("health")
    .description("Poll a health URL until healthy (exit 0) or give up listing every attempt (exit 1)")
    .option("--url <url>", "HTTP(S) URL to poll")
    .option("--retries <n>", "attempts before giving up", "3")
    .option("--delay <seconds>", "wait between attempts", "10")
    .option("--timeout <seconds>", "per-attempt timeout", "5")
    .option("--expect-status <code...>", "accepted status codes (repeat or comma-separate)", ["200"])
    .addOption(
      new Option(
        "--soak [attempts]",
        `after passing, require N more healthy answers in a row (default ${DEFAULT_SOAK})`,
      ),
    )
    .option("--expect-json <path=value>", 'assert a JSON body value, e.g. checks.db="ok"')
    .option("--ca <file>", "PEM CA certificate to trust for an https:// URL")
    .option(
      "--soak-delay <seconds>",
      `wait between soak attempts (the stack's health.soakDelaySeconds default)`,
      String(DEFAULT_SOAK_DELAY),
    )
    .option("--json", "print the result as JSON on stdout")
    .action(async (o: HealthOpts) => {
      if (!o.json) return void (await runHealth(o));
      const { redactUrls } = await import("../../core/log/redact");
      const url = o.url === undefined ? undefined : redactUrls(o.url);
      const print = (v: object) => process.stdout.write(JSON.stringify({ url, ...v }, null, 2) + "\n");
      try {
        print({ healthy: true, ...(await runHealth(o)) });
      } catch (e) {
        const { CheckFailedError } = await import("../../core/errors");
        if (e instanceof CheckFailedError) print({ healthy: false, error: redactUrls(e.message) });
        throw e;
      }
    });
}
