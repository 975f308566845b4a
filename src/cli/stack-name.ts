// A mistyped `--stack stagin` must not read as "no releases yet" (exit 0): issue 16.
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError } from "../core/errors";

/** The stacks a project has: every `Pulumi.<stack>.yaml` beside its `Pulumi.yaml`, sorted. */
export function projectStacks(projectDir: string): string[] {
  return readdirSync(projectDir)
    .map((f) => /^Pulumi\.(.+)\.ya?ml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

/**
 * Throws ConfigError (exit 2) when `stack` has no `Pulumi.<stack>.yaml` in the project directory, listing
 * the stacks there are. Outside a Pulumi project (no `Pulumi.yaml`) it says nothing: other checks name that.
 */
export function checkStackName(stack: string, projectDir = "."): void {
  const dir = resolve(projectDir);
  if (!existsSync(join(dir, "Pulumi.yaml"))) return;
  const stacks = projectStacks(dir);
  if (stacks.includes(stack)) return;
  throw new ConfigError(
    `no stack "${stack}" in ${dir} (no Pulumi.${stack}.yaml): the stacks there are ${stacks.length ? stacks.join(", ") : "(none)"}; check \`--stack\` (or \`--project-dir\`)`,
  );
}
