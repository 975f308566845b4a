// A stack's config as the CLI reads it: validated sections, the decrypted secrets and every literal a
// log must mask (docs/architecture.md, "Layers").
import { join } from "node:path";
import {
  parseStackConfig,
  PLAIN_KEYS,
  secretValueProblems,
  SECRET_KEYS,
  type SecretKey,
  type StackConfig,
} from "../../config";
import { derivedAppPassword } from "../../core/database/roles";
import { urlSecrets } from "../../core/log/redact";
import { webhookSecrets } from "../../core/notify";
import type { ConfigMap } from "../../core/release/stack-port";

/** The decrypted secrets of a stack (kept in memory, registered with every logger for masking). */
export type StackSecrets = Partial<Record<SecretKey, string>>;

/** Splits a stack's config into the validated sections and the secrets. Throws one ConfigError. */
export function configFromStack(
  map: ConfigMap,
  stack: string,
): { config: StackConfig; secrets: StackSecrets } {
  const raw: Record<string, unknown> = {};
  const secrets: StackSecrets = {};
  const plainSecrets: string[] = [];
  for (const [key, entry] of Object.entries(map)) {
    if (!key.startsWith("safe-deploy:")) continue;
    const k = key.slice("safe-deploy:".length);
    if ((SECRET_KEYS as readonly string[]).includes(k)) {
      secrets[k as SecretKey] = entry.value;
      if (!entry.secret) plainSecrets.push(k);
      continue;
    }
    let value: unknown = entry.value;
    try {
      value = JSON.parse(entry.value);
    } catch {
      // a plain string value
    }
    raw[k] = (PLAIN_KEYS as readonly string[]).includes(k) ? value : true;
  }
  raw.secretsSet = Object.keys(secrets);
  if (plainSecrets.length) raw.secretsInPlainText = plainSecrets;
  const malformed = secretValueProblems(secrets);
  if (malformed.length) raw.secretsMalformed = malformed;
  return { config: parseStackConfig(raw, stack), secrets };
}

/**
 * Every literal a log or notification must mask: each secret, each value of the JSON maps (`appSecrets`,
 * `hookSecrets`: a hook or the app prints one value, never the whole map) and the password of each URL,
 * raw and decoded. The ledger keeps the plain list: it refuses records holding any of these.
 */
export function secretLiterals(secrets: StackSecrets): string[] {
  const out = new Set<string>();
  for (const [key, value] of Object.entries(secrets)) {
    if (!value) continue;
    out.add(value);
    if (key === "slackWebhookUrl" || key === "webhookUrl") for (const w of webhookSecrets(value)) out.add(w);
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      parsed = undefined;
    }
    if (parsed && typeof parsed === "object") {
      for (const v of Object.values(parsed)) if (typeof v === "string" && v) out.add(v);
    }
    for (const u of urlSecrets(value)) out.add(u);
    // The app role's password when none is set is derived from dbPassword (issue 15): mask it too.
    if (key === "dbPassword" && !secrets.dbAppPassword) out.add(derivedAppPassword(value));
  }
  return [...out];
}

/** The stack's `Pulumi.<stack>.yaml`. */
export function stackFile(projectDir: string, stack: string): string {
  return join(projectDir, `Pulumi.${stack}.yaml`);
}
