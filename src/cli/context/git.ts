// git in the project: the commit a release runs, whether a commit is still there, migrations at a commit.
import { execFile } from "node:child_process";
import { isAbsolute, join } from "node:path";
import { promisify } from "node:util";
import type { StackConfig } from "../../config";
import { CannotRunError } from "../../core/errors";

const run = promisify(execFile);

/** Runs git in `projectDir`; its trimmed stdout, or a CannotRunError quoting git's stderr. */
export async function git(projectDir: string, args: string[]): Promise<string> {
  try {
    return (await run("git", ["-C", projectDir, ...args], { maxBuffer: 16 << 20 })).stdout.trim();
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new CannotRunError(`git ${args[0]} failed in ${projectDir}: ${(err.stderr || err.message).trim()}`);
  }
}

/** Migration versions (file names without extension) in the migrations directory at `commit`. */
export async function migrationsAt(
  projectDir: string,
  config: StackConfig,
  commit: string,
): Promise<string[] | undefined> {
  if (config.migrations.tool !== "node-pg-migrate" && config.migrations.tool !== "prisma") return undefined;
  const dir = join(config.migrations.workDir, config.migrations.dir);
  if (isAbsolute(dir)) return undefined;
  const names = await git(projectDir, ["ls-tree", "--name-only", `${commit}:${dir}`]).catch(() => undefined);
  if (names === undefined) return undefined;
  return names
    .split("\n")
    .filter(Boolean)
    .map((n) => n.replace(/\.[^.]+$/, ""));
}

/** Whether `commit` is in the git repository at `dir` (a force-push or a shallow clone may have lost it). */
export async function hasCommit(dir: string, commit: string): Promise<boolean> {
  return git(dir, ["cat-file", "-e", `${commit}^{commit}`]).then(
    () => true,
    () => false,
  );
}
