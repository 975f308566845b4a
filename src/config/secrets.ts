// Shape checks of the stack's secret values. They run when the CLI reads the stack (before any deploy
// step), so a mistyped URL or key fails at once, by key name, instead of half-way through a release or
// after the dump. The values themselves never appear in a message.
import { parseKey } from "../core/backup/offsite";
import { insecureUrlProblem, portProblem } from "../core/address";
import { smtpUrlProblem } from "../core/notify/channels";
import type { SecretKey } from "./schema";

const again = (k: SecretKey, example: string) =>
  `set it again with \`pulumi config set --secret ${k} ${example}\``;

function urlWith(value: string, protocols: string[]): URL | undefined {
  try {
    const u = new URL(value.trim());
    return protocols.includes(u.protocol) && u.hostname ? u : undefined;
  } catch {
    return undefined;
  }
}

const RULES: Partial<Record<SecretKey, (v: string) => string | undefined>> = {
  slackWebhookUrl: (v) =>
    urlWith(v, ["https:", "http:"]) && !insecureUrlProblem(v.trim())
      ? undefined
      : `${insecureUrlProblem(v.trim()) ?? "is not an http(s) URL"}; ${again("slackWebhookUrl", "https://hooks.slack.com/services/...")}`,
  webhookUrl: (v) =>
    urlWith(v, ["https:", "http:"]) && !insecureUrlProblem(v.trim())
      ? undefined
      : `${insecureUrlProblem(v.trim()) ?? "is not an http(s) URL"}; ${again("webhookUrl", "https://example.com/deploy-hook")}`,
  smtpUrl: (v) => {
    const problem = smtpUrlProblem(v.trim());
    return problem && `${problem}; ${again("smtpUrl", "'smtps://user:password@smtp.example.com:465'")}`;
  },
  databaseUrl: (v) =>
    urlWith(v, ["postgres:", "postgresql:"])
      ? undefined
      : `${portProblem(v.trim()) ?? "is not a postgres:// URL"}; ${again("databaseUrl", "'postgres://user:password@host:5432/db'")}`,
  appDatabaseUrl: (v) =>
    urlWith(v, ["postgres:", "postgresql:"])
      ? undefined
      : `${portProblem(v.trim()) ?? "is not a postgres:// URL"}; ${again("appDatabaseUrl", "'postgres://app_rw:password@host:5432/db'")}`,
  dbAppPassword: (v) =>
    v.length >= 16
      ? undefined
      : `is shorter than 16 characters; ${again("dbAppPassword", '"$(openssl rand -base64 24)"')}`,
  backupEncryptionKey: (v) => {
    try {
      parseKey(v, "backupEncryptionKey");
      return undefined;
    } catch {
      return `must be 32 bytes as 64 hex chars or base64 (AES-256); ${again("backupEncryptionKey", '"$(openssl rand -hex 32)"')}`;
    }
  },
  appSecrets: (v) => jsonObject(v, "appSecrets", `'{"JWT_SECRET_KEY":"..."}'`),
  hookSecrets: (v) => jsonObject(v, "hookSecrets", `'{"SENTRY_TOKEN":"..."}'`),
};

function jsonObject(v: string, k: SecretKey, example: string): string | undefined {
  try {
    const o: unknown = JSON.parse(v);
    if (
      o &&
      typeof o === "object" &&
      !Array.isArray(o) &&
      Object.values(o).every((x) => typeof x === "string")
    )
      return undefined;
  } catch {
    // reported below
  }
  return `is not a JSON object of names to strings; ${again(k, example)}`;
}

/** `key: rule` for every secret whose value has the wrong shape; values are never included. */
export function secretValueProblems(secrets: Partial<Record<SecretKey, string>>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(secrets) as [SecretKey, string | undefined][]) {
    const problem = v === undefined ? undefined : RULES[k]?.(v);
    if (problem) out.push(`${k}: ${problem}`);
  }
  return out;
}
