import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { checksumDir } from "../../src/core/checksum";
import { docker, ensureDocker, nodeBaseImage } from "./docker";

const run = promisify(execFile);

/** The demo app's build context (examples/app, with its production node_modules installed). */
export const APP_CONTEXT = resolve(__dirname, "..", "..", "examples", "app");

/** Runs the real `docker build` of the demo app's Dockerfile on a local base image; returns its output. */
export async function dockerBuild(context: string, tag: string, extra: string[] = []): Promise<string> {
  const base = await nodeBaseImage();
  try {
    // --network none: a build here must never reach out; a context without node_modules then fails.
    const { stdout, stderr } = await run(
      "docker",
      [
        "build",
        "--force-rm",
        "--network",
        "none",
        "--build-arg",
        `NODE_IMAGE=${base}`,
        "-t",
        tag,
        ...extra,
        context,
      ],
      { maxBuffer: 64 << 20, timeout: 600_000 },
    );
    return stdout + stderr;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    throw new Error(`docker build of ${context} failed:\n${err.stdout ?? ""}${err.stderr ?? ""}`, {
      cause: e,
    });
  }
}

/**
 * Builds (or reuses) the demo app image, tagged with a hash of its sources and base image, so a changed
 * app rebuilds and an unchanged one is reused.
 */
export async function demoAppImage(): Promise<string> {
  await ensureDocker();
  const base = await nodeBaseImage();
  const hash = checksumDir(APP_CONTEXT, ["node_modules", "test"]).slice(0, 8);
  const tag = `safe-deploy-test/app:${hash}-${base.split(":").pop()}`;
  if (await docker(["image", "ls", "-q", tag])) return tag;
  if (!existsSync(resolve(APP_CONTEXT, "node_modules", "pg"))) {
    throw new Error("examples/app has no node_modules: run `npm ci --prefix examples/app` first");
  }
  await dockerBuild(APP_CONTEXT, tag);
  return tag;
}
