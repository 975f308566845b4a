import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { userInfo, tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection } from "node:net";
import { freePort } from "./postgres";

/** A Docker host reached over `ssh://` as production's is: an sshd on 127.0.0.1 in front of this dockerd. */
export interface SshDockerHost {
  /** `ssh://user@127.0.0.1:PORT`, for DOCKER_HOST. */
  dockerHost: string;
  /** Directory to put first on PATH: its `ssh` adds the test key and skips host-key prompts. */
  binDir: string;
  /** Every ssh command line the docker CLI ran through the wrapper, one per line. */
  calls(): string;
  close(): Promise<void>;
}

const SSHD = "/usr/sbin/sshd";

/**
 * Starts a throwaway sshd (its own host key, config, authorized key) on a random loopback port. The
 * docker CLI's ssh transport runs `ssh ... docker system dial-stdio` through it, exactly as it does
 * against a real server. Needs openssh-server (.ci/run installs it).
 */
export async function startSshDockerHost(): Promise<SshDockerHost> {
  const dir = mkdtempSync(join(tmpdir(), "sd-sshd-"));
  const port = await freePort();
  const user = userInfo().username;
  mkdirSync("/run/sshd", { recursive: true });
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_key")]);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "client_key")]);
  writeFileSync(join(dir, "authorized_keys"), execFileSync("cat", [join(dir, "client_key.pub")]));
  chmodSync(join(dir, "authorized_keys"), 0o600);
  const config = [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${join(dir, "host_key")}`,
    `PidFile ${join(dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    `AllowUsers ${user}`,
    "PermitRootLogin prohibit-password",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    "StrictModes no",
    // the session needs `docker` on PATH, as a deploy user's login would have it
    "SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  ].join("\n");
  writeFileSync(join(dir, "sshd_config"), config + "\n");
  const binDir = join(dir, "bin");
  mkdirSync(binDir);
  writeFileSync(
    join(binDir, "ssh"),
    `#!/bin/sh\necho "$*" >> ${join(dir, "calls")}\nexec /usr/bin/ssh -F /dev/null -i ${join(dir, "client_key")} -o IdentitiesOnly=yes ` +
      `-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes "$@"\n`,
  );
  chmodSync(join(binDir, "ssh"), 0o755);
  const child: ChildProcess = spawn(SSHD, ["-D", "-e", "-f", join(dir, "sshd_config")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: "127.0.0.1", port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || i > 100) {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`sshd did not start: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    dockerHost: `ssh://${user}@127.0.0.1:${port}`,
    binDir,
    calls: () => {
      try {
        return readFileSync(join(dir, "calls"), "utf8");
      } catch {
        return "";
      }
    },
    close: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
