// A stack's containers as the Docker host reports them, found by their labels (src/core/release/labels.ts).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { CannotRunError } from "../core/errors";
import { ROLE_LABEL, STACK_LABEL, type StackContainer } from "../core/release/labels";

const run = promisify(execFile);

/** Every container (running or not) labelled with `stack`, at `dockerHost`. */
export async function stackContainers(dockerHost: string, stack: string): Promise<StackContainer[]> {
  const format = `{{.ID}}\t{{.Names}}\t{{.Label "${ROLE_LABEL}"}}\t{{.State}}\t{{.CreatedAt}}`;
  let stdout: string;
  try {
    ({ stdout } = await run(
      "docker",
      ["ps", "-a", "--no-trunc", "--filter", `label=${STACK_LABEL}=${stack}`, "--format", format],
      { env: { ...process.env, DOCKER_HOST: dockerHost }, timeout: 60_000, maxBuffer: 16 << 20 },
    ));
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new CannotRunError(
      `cannot list the containers of stack ${stack} at ${dockerHost}: ${(err.stderr || err.message).trim().split("\n")[0]} (check docker.host)`,
    );
  }
  return stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [id, name, role, state, created] = line.split("\t");
      return { id, name, role, state, created };
    });
}

/** Force-removes containers one by one (Docker 20.10 can deadlock removing several of one network at once). */
export async function removeContainers(dockerHost: string, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    await run("docker", ["rm", "-f", id], {
      env: { ...process.env, DOCKER_HOST: dockerHost },
      timeout: 120_000,
    }).catch((e: { stderr?: string; message: string }) => {
      throw new CannotRunError(`could not remove container ${id}: ${(e.stderr || e.message).trim()}`);
    });
  }
}
