import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { setupMocks } from "./mocks";

/** Outputs the mocked engine returns for each resource type, so the program's graph resolves. */
export function mockState(r: {
  type: string;
  name: string;
  inputs: Record<string, any>;
}): Record<string, any> {
  const h = (s: string) => createHash("sha256").update(s).digest("hex");
  switch (r.type) {
    case "docker:index/remoteImage:RemoteImage":
      return {
        imageId: `sha256:${h(r.inputs.name)}`,
        repoDigest: `${r.inputs.name}@sha256:${h(r.inputs.name)}`,
      };
    case "docker:index/container:Container":
    case "docker:index/network:Network":
    case "docker:index/volume:Volume":
      return { name: r.inputs.name ?? `${r.name}-1234567` };
    case "aws:s3/bucket:Bucket":
      return { bucket: r.inputs.bucket ?? `${r.name}-abc123` };
    case "pulumi-nodejs:dynamic/safe-deploy:Backup":
      return { file: `/backups/backup_20261123_000000_pre-deploy.dump.zst`, sha256: h(r.name), sizeBytes: 1 };
    case "pulumi-nodejs:dynamic/safe-deploy:HealthGate":
      return { checkedAt: "2026-11-23T00:00:00.000Z", attempts: 1 };
    default:
      return {};
  }
}

/** Resolves an Output's value under mocks. */
export function valueOf<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => resolve(v)));
}

/** Mocks the engine with `config`, loads the Pulumi program, and returns its exports with the recorder. */
export async function loadProgram(opts: {
  stack?: string;
  config: Record<string, unknown>;
  secrets?: Record<string, string>;
}) {
  const secretKeys = Object.keys(opts.secrets ?? {});
  const rec = await setupMocks({
    stack: opts.stack ?? "staging",
    config: { ...opts.config, ...opts.secrets },
    secretKeys,
    state: mockState,
  });
  const program = await import("../../src/index");
  // Let every registration reach the mock monitor.
  await valueOf(program.url);
  await new Promise((r) => setTimeout(r, 200));
  return { rec, program };
}
