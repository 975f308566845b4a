import { z } from "zod";
import { ConfigError } from "../core/errors";
import { crossChecks, SECRET_KEYS, SECTIONS, type RawStackConfig, type StackConfig } from "./schema";

export * from "./schema";
export { secretValueProblems } from "./secrets";

type ZodIssue = z.core.$ZodIssue;

/** Formats one problem as `key.path: rule`, the way the user's `Pulumi.<stack>.yaml` names it. */
export function formatIssue(prefix: string[], issue: ZodIssue): string[] {
  const path = [...prefix, ...issue.path.map(String)];
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((k) => `${[...path, k].join(".")}: unknown key (check its spelling)`);
  }
  return [`${path.join(".") || "(config)"}: ${issue.message}`];
}

/**
 * Validates a stack's raw config (plain objects) and applies defaults. Throws ONE `ConfigError` listing
 * every problem by key path with the rule broken, so a user fixes them all in one pass.
 */
export function parseStackConfig(raw: unknown, stack = "<stack>"): StackConfig {
  const input = (raw ?? {}) as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof input !== "object" || Array.isArray(input)) {
    throw new ConfigError(`Stack config of "${stack}" must be an object of sections`, [
      "(config): not an object",
    ]);
  }
  const secretsSet = z.array(z.enum(SECRET_KEYS)).default([]).safeParse(input.secretsSet);
  if (!secretsSet.success)
    problems.push(...secretsSet.error.issues.flatMap((i) => formatIssue(["secretsSet"], i)));
  // Secret keys the stack file holds unencrypted (the CLI knows; a committed password is a leak).
  if (Array.isArray(input.secretsInPlainText)) {
    for (const k of input.secretsInPlainText) {
      problems.push(
        `${String(k)}: stored in plain text in Pulumi.${stack}.yaml; encrypt it with \`pulumi config set --secret ${String(k)} <value>\` (and rotate it if that file was ever committed)`,
      );
    }
  }
  // Secret values of the wrong shape (secrets.ts; the CLI checks them, the values never come here).
  if (Array.isArray(input.secretsMalformed)) problems.push(...input.secretsMalformed.map(String));
  const known = new Set([...Object.keys(SECTIONS), "secretsSet", "secretsInPlainText", "secretsMalformed"]);
  for (const k of Object.keys(input)) {
    if (!known.has(k)) problems.push(`${k}: unknown key (known: ${Object.keys(SECTIONS).join(", ")})`);
  }
  const parsed: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(SECTIONS)) {
    // `app` has no default: an absent section reports its required keys rather than "expected object".
    const r = (schema as z.ZodType).safeParse(key === "app" ? (input[key] ?? {}) : input[key]);
    if (r.success) parsed[key] = r.data;
    else problems.push(...r.error.issues.flatMap((i) => formatIssue([key], i)));
  }
  const namesSet = Array.isArray(input.secretsSet)
    ? input.secretsSet.filter((k) => typeof k === "string")
    : [];
  for (const i of crossChecks(parsed, secretsSet.data ?? namesSet))
    problems.push(`${i.path.join(".")}: ${i.message}`);
  if (problems.length === 0) {
    // Each stack gets its own backup directory unless one is set: with one shared `./backups`, one
    // stack's retention would count and prune the other's backups (and break its `minKeep`).
    const backup = input.backup as { dir?: unknown } | undefined;
    if (backup?.dir === undefined && stack !== "<stack>" && parsed.backup)
      (parsed.backup as { dir: string }).dir = `./backups/${stack}`;
    return { ...parsed, secretsSet: secretsSet.data } as StackConfig;
  }
  throw new ConfigError(
    `Stack config of "${stack}" is invalid (${problems.length} problem${problems.length > 1 ? "s" : ""}):\n` +
      problems.map((p) => `  - ${p}`).join("\n") +
      `\nFix them in Pulumi.${stack}.yaml (keys under "safe-deploy:") and run again.`,
    problems,
  );
}

export type { RawStackConfig, StackConfig };
