import * as pulumi from "@pulumi/pulumi";
import type { ContainerCheck } from "../../core/health/container";
import type { JsonAssertion } from "../../core/health/http";
import type { ServiceCheck } from "../../core/swarm/check";
import { runGate, type GateSpec } from "../../core/health/run";
import { diffHealthGate } from "./diff";

/** Inputs of a HealthGate; the optional extras tune the engine. */
export interface HealthGateArgs {
  /** HTTP(S) URL polled from this machine. */
  url: pulumi.Input<string>;
  /** Default [200]. */
  expectStatus?: pulumi.Input<number[]>;
  /** Total attempts, default 3. */
  retries?: pulumi.Input<number>;
  /** Wait between attempts, default 10. */
  delaySeconds?: pulumi.Input<number>;
  /** Per attempt, default 5. */
  timeoutSeconds?: pulumi.Input<number>;
  /** e.g. { containerId, imageId }: any change re-runs the gate. */
  triggers: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Multiplier on the wait after each failure (default 1: fixed delay). */
  backoff?: pulumi.Input<number>;
  /** Cap on one wait when backing off. */
  maxDelaySeconds?: pulumi.Input<number>;
  /** Overall deadline for the whole gate. */
  deadlineSeconds?: pulumi.Input<number>;
  /** Consecutive passing attempts needed, default 1. */
  successThreshold?: pulumi.Input<number>;
  /** Assertion on the JSON body, e.g. { path: "db", equals: "ok" }. */
  json?: pulumi.Input<JsonAssertion>;
  /** PEM CA certificate(s) to trust for an https:// URL. */
  ca?: pulumi.Input<string>;
  /** Ports that must accept TCP connections, e.g. [{ host: "127.0.0.1", port: 5432 }]. */
  tcp?: pulumi.Input<{ host: string; port: number }[]>;
  /** A database the release must reach with `SELECT 1`; stored as a secret. */
  postgresUrl?: pulumi.Input<string>;
  /** The container to watch: running, Docker health `healthy`, restarts not rising, no critical log lines. */
  container?: pulumi.Input<ContainerCheck>;
  /** A Swarm service (`app.target: swarm`): Swarm did not roll back, every running task is this release. */
  service?: pulumi.Input<ServiceCheck>;
}

/** The gate's inputs: a probe spec, plus the triggers that make each release run it again. */
interface Inputs extends GateSpec {
  triggers: Record<string, string>;
}

const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

// Methods reach the engine only through functions Pulumi copies by value into `__provider`; nothing
// live is captured, so the provider host runs them in a plain node process.
const provider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: Inputs, news: Inputs) {
    const failures: { property: string; reason: string }[] = [];
    const known = (v: unknown) => v !== undefined && v !== UNKNOWN;
    if (known(news.url)) {
      let ok = false;
      try {
        ok = ["http:", "https:"].includes(new URL(news.url).protocol);
      } catch {
        ok = false;
      }
      if (!ok) failures.push({ property: "url", reason: "`url` must be an http:// or https:// URL" });
    }
    for (const k of ["retries", "successThreshold"] as const) {
      const v = news[k];
      if (known(v) && !(Number.isInteger(v) && (v as number) >= 1)) {
        failures.push({ property: k, reason: `\`${k}\` must be an integer >= 1` });
      }
    }
    for (const k of [
      "delaySeconds",
      "timeoutSeconds",
      "maxDelaySeconds",
      "deadlineSeconds",
      "backoff",
    ] as const) {
      const v = news[k];
      if (known(v) && !(typeof v === "number" && v >= 0)) {
        failures.push({ property: k, reason: `\`${k}\` must be a number >= 0` });
      }
    }
    if (known(news.expectStatus)) {
      const s = news.expectStatus;
      // In preview a code from another resource's output arrives as the unknown UUID: only known codes are judged.
      const bad = (c: unknown) =>
        known(c) && !(Number.isInteger(c) && (c as number) >= 100 && (c as number) <= 599);
      if (!Array.isArray(s) || s.length === 0 || s.some(bad)) {
        failures.push({
          property: "expectStatus",
          reason: "`expectStatus` must be a non-empty list of HTTP status codes",
        });
      }
    }
    if (news.triggers === undefined)
      failures.push({ property: "triggers", reason: "`triggers` is required" });
    return { inputs: news, failures };
  },

  async diff(_id: string, olds: Inputs, news: Inputs) {
    return diffHealthGate(
      olds as unknown as Record<string, unknown>,
      news as unknown as Record<string, unknown>,
    );
  },

  async create(inputs: Inputs) {
    const r = await runGate(inputs);
    if (!r.ok) throw new Error(r.message);
    const { randomUUID } = require("node:crypto");
    return {
      id: `healthgate-${randomUUID()}`,
      outs: { ...inputs, checkedAt: r.checkedAt, attempts: r.attempts.length },
    };
  },

  async update(_id: string, _olds: Inputs, news: Inputs) {
    const r = await runGate(news);
    if (!r.ok) throw new Error(r.message);
    return { outs: { ...news, checkedAt: r.checkedAt, attempts: r.attempts.length } };
  },

  async delete() {
    // A gate owns nothing outside the state.
  },
};

/** Polls the release until healthy on every deploy (its triggers change), or fails `pulumi up` saying why. */
export class HealthGate extends pulumi.dynamic.Resource {
  /** ISO time the gate last passed. */
  declare readonly checkedAt: pulumi.Output<string>;
  /** Attempts the last passing run needed. */
  declare readonly attempts: pulumi.Output<number>;

  constructor(name: string, args: HealthGateArgs, opts?: pulumi.CustomResourceOptions) {
    const props = {
      ...args,
      postgresUrl: args.postgresUrl === undefined ? undefined : pulumi.secret(args.postgresUrl),
      checkedAt: undefined,
      attempts: undefined,
    };
    super(
      provider,
      name,
      props,
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["postgresUrl"] }),
      "safe-deploy",
      "HealthGate",
    );
  }
}
