// Where `history` and `lock` find a project's release state, as `up`/`status`/`rollback` do.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError } from "../core/errors";

/**
 * `<project>/.safe-deploy` (or `--state-dir`, relative to the project). A missing state directory in a
 * directory that is not a Pulumi project is a mistyped `--project-dir`, not "no releases yet".
 */
export function stateDirOf(o: { projectDir?: string; stateDir?: string }): string {
  const project = resolve(o.projectDir ?? ".");
  const stateDir = resolve(project, o.stateDir ?? ".safe-deploy");
  if (!existsSync(stateDir) && !existsSync(join(project, "Pulumi.yaml"))) {
    throw new ConfigError(
      `${project} is not a safe-deploy project (no Pulumi.yaml, no ${o.stateDir ?? ".safe-deploy"}/): run from the project's directory or pass \`--project-dir\``,
    );
  }
  return stateDir;
}
