import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { CannotRunError, ConfigError } from "../errors";

const run = promisify(execFile);

function dockerEnv(dockerHost?: string): NodeJS.ProcessEnv {
  return dockerHost ? { ...process.env, DOCKER_HOST: dockerHost } : process.env;
}

/**
 * The content id (`sha256:...`) a tag points at on the Docker host right now, or undefined when the
 * host has no such image (yet). `docker.RemoteImage` only compares its inputs, so a rebuild under the
 * same tag would otherwise deploy nothing (issue 14, item 2).
 */
export async function localImageId(ref: string, dockerHost?: string): Promise<string | undefined> {
  try {
    const { stdout } = await run("docker", ["image", "inspect", "--format", "{{.Id}}", ref], {
      env: dockerEnv(dockerHost),
    });
    return stdout.trim() || undefined;
  } catch (e) {
    const msg = `${(e as { stderr?: string }).stderr ?? ""}${(e as Error).message}`;
    if (/no such (image|object)/i.test(msg)) return undefined;
    throw new CannotRunError(
      `cannot read the id of image ${ref} on the Docker host${dockerHost ? ` ${dockerHost}` : ""}: ` +
        `${msg.split("\n").find((l) => l.trim()) ?? "unknown error"}. Is Docker running (\`docker.host\`)?`,
    );
  }
}

/** The parts of `docker info --format '{{json .}}'` the store check reads. */
export interface DockerInfo {
  Driver?: string;
  DriverStatus?: Array<[string, string]> | null;
}

/**
 * Whether the engine keeps images in the containerd image store (Docker 24+ "containerd-snapshotter"
 * feature): `docker info` then reports `driver-type io.containerd.snapshotter.v1`. Pure.
 */
export function usesContainerdStore(info: DockerInfo): boolean {
  const status = info.DriverStatus ?? [];
  if (status.some(([k, v]) => k === "driver-type" && /containerd\.snapshotter/.test(v))) return true;
  // Without the status list, the snapshotter names are a sign too: the classic drivers are overlay2, btrfs,...
  return status.length === 0 && /^(overlayfs|stargz|nydus|zfs-snapshotter|native)$/.test(info.Driver ?? "");
}

/**
 * Fails when `app.build` cannot work on this engine: the Docker provider's build (RemoteImage.build) is
 * not supported with the containerd image store, where it fails late with an obscure error.
 */
export function requireClassicStore(info: DockerInfo, dockerHost?: string): void {
  if (!usesContainerdStore(info)) return;
  throw new ConfigError(
    `\`app.build\` cannot build on the Docker host${dockerHost ? ` ${dockerHost}` : ""}: it uses the containerd ` +
      `image store (docker info: driver-type io.containerd.snapshotter.v1, storage driver ${info.Driver ?? "?"}), ` +
      `which the Pulumi Docker provider's build does not support. Fix: turn the containerd image store off ` +
      `("features": {"containerd-snapshotter": false} in /etc/docker/daemon.json, then restart Docker), or ` +
      `build the image yourself and set \`app.image\` to its tag instead of \`app.build\`.`,
  );
}

/** Reads `docker info` from the host (synchronously: the program checks it before declaring the build). */
export function dockerInfo(dockerHost?: string): DockerInfo {
  try {
    return JSON.parse(
      execFileSync("docker", ["info", "--format", "{{json .}}"], {
        env: dockerEnv(dockerHost),
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      }),
    ) as DockerInfo;
  } catch (e) {
    throw new CannotRunError(
      `cannot read \`docker info\` from the Docker host${dockerHost ? ` ${dockerHost}` : ""}: ` +
        `${(e as Error).message.split("\n")[0]}. Is Docker running (\`docker.host\`)?`,
    );
  }
}
