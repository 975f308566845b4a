import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { CannotRunError } from "../errors";

const run = promisify(execFile);

/** One local image of the app's repository. */
export interface LocalImage {
  ref: string;
  id: string;
  created: Date;
}

/**
 * Which release images to remove: all but the `keep` newest, never one still needed (`protect`: the
 * running release's and the last good release's images), so a rollback to a recent release starts
 * without a rebuild. Pure; the order of the input doesn't matter.
 */
export function imagesToRemove(
  images: readonly LocalImage[],
  keep: number,
  protect: readonly string[] = [],
): LocalImage[] {
  if (!Number.isInteger(keep) || keep < 1) throw new Error("`keep` must be a whole number of at least 1");
  const newestFirst = [...images].sort((a, b) => b.created.getTime() - a.created.getTime());
  const kept = new Set(newestFirst.slice(0, keep).map((i) => i.ref));
  return newestFirst.filter((i) => !kept.has(i.ref) && !protect.includes(i.ref) && !protect.includes(i.id));
}

function dockerEnv(dockerHost?: string): NodeJS.ProcessEnv {
  return dockerHost ? { ...process.env, DOCKER_HOST: dockerHost } : process.env;
}

/** Lists the local images of `repository` (all tags) on the Docker host. */
export async function listImages(repository: string, dockerHost?: string): Promise<LocalImage[]> {
  try {
    const { stdout } = await run(
      "docker",
      ["image", "ls", repository, "--format", "{{.Repository}}:{{.Tag}}\t{{.ID}}\t{{.CreatedAt}}"],
      { env: dockerEnv(dockerHost) },
    );
    return stdout
      .split("\n")
      .filter((l) => l.trim() && !l.includes("<none>"))
      .map((l) => {
        const [ref, id, createdAt] = l.split("\t");
        // "2026-11-23 02:50:01 +0000 UTC" -> drop the zone name Date can't parse.
        return { ref, id, created: new Date(createdAt.replace(/ [A-Z]+$/, "")) };
      });
  } catch (e) {
    throw new CannotRunError(
      `cannot list images of ${repository}: ${(e as Error).message.split("\n")[0]}. Is Docker running?`,
    );
  }
}

/** Removes old release images of `repository`, keeping `keep` and the protected ones; returns the refs removed. */
export async function pruneImages(
  repository: string,
  keep: number,
  protect: readonly string[] = [],
  dockerHost?: string,
): Promise<string[]> {
  const doomed = imagesToRemove(await listImages(repository, dockerHost), keep, protect);
  const removed: string[] = [];
  for (const img of doomed) {
    // An image a container still uses is refused by Docker: leave it, it is still needed.
    await run("docker", ["image", "rm", img.ref], { env: dockerEnv(dockerHost) }).then(
      () => removed.push(img.ref),
      () => undefined,
    );
  }
  return removed;
}
