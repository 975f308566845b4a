import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

// Busybox gives sh, httpd and wget: enough for containers that turn healthy, never do, or crash-loop.
// test/helpers/docker.ts (issue 4's helper) builds images the same way; the lead may swap this for it.
const BUSYBOX = { packages: ["busybox"], changes: ['CMD ["/bin/busybox","sh"]'] };
// HAProxy from Debian, plus busybox for a shell: the blue-green proxy (only healthy backends).
const HAPROXY = { packages: ["busybox", "haproxy"], changes: ['CMD ["/bin/busybox","sh"]'] };

/** The tag of the busybox test image, built with debootstrap + docker import when missing (~1 min, once). */
export function ensureBusyboxImage(): Promise<string> {
  return ensureImage("health-busybox", BUSYBOX);
}

/** The tag of the HAProxy test image (Debian's haproxy package), built when missing. */
export function ensureHaproxyImage(): Promise<string> {
  return ensureImage("health-haproxy", HAPROXY);
}

async function ensureImage(name: string, recipe: { packages: string[]; changes: string[] }): Promise<string> {
  const hash = createHash("sha256").update(JSON.stringify(recipe)).digest("hex").slice(0, 12);
  const tag = `safe-deploy-test/${name}:${hash}`;
  const exists = await run("docker", ["image", "inspect", tag]).then(
    () => true,
    () => false,
  );
  if (exists) return tag;
  const work = await mkdtemp(join(tmpdir(), "sd-health-image-"));
  try {
    const script = [
      'debootstrap --variant=minbase --include="$1" bookworm "$2/rootfs" >/dev/null',
      'chroot "$2/rootfs" /bin/busybox --install -s /usr/local/bin',
      'rm -rf "$2/rootfs/var/lib/apt/lists/"* "$2/rootfs/var/cache/apt/"*.bin',
      'tar -C "$2/rootfs" -c . | docker import --change "$4" - "$3" >/dev/null',
    ].join("\n");
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        "bash",
        ["-o", "pipefail", "-ec", script, "bash", recipe.packages.join(","), work, tag, recipe.changes[0]],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      let err = "";
      child.stderr.on("data", (d: Buffer) => (err = (err + d).slice(-4000)));
      child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`image build failed: ${err}`))));
    });
    return tag;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Runs a labelled detached container and returns its id; `cleanup()` removes every one started. */
export async function runContainer(args: string[]): Promise<string> {
  const { stdout } = await run("docker", ["run", "-d", "--label", "safe-deploy-test=health", ...args]);
  return stdout.trim();
}

/** The host port Docker published for a container port on 127.0.0.1. */
export async function publishedPort(id: string, port: number): Promise<number> {
  const { stdout } = await run("docker", ["port", id, `${port}/tcp`]);
  const m = /127\.0\.0\.1:(\d+)/.exec(stdout);
  if (!m) throw new Error(`no 127.0.0.1 port for ${port} on ${id}: ${stdout}`);
  return Number(m[1]);
}

/** Removes the given containers (forcefully). */
export async function removeContainers(ids: string[]): Promise<void> {
  if (ids.length) await run("docker", ["rm", "-f", "-v", ...ids]).catch(() => undefined);
}
