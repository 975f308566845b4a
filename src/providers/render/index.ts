import * as pulumi from "@pulumi/pulumi";
import { renderRelease, type RenderRelease } from "../../core/render/api";
import { deploys, diffRenderDeploy, rollbackTarget } from "./diff";

/** Inputs of a RenderDeploy. */
export interface RenderDeployArgs {
  /** `https://api.render.com`. */
  apiUrl: pulumi.Input<string>;
  /** Secret: Render API key. */
  apiKey: pulumi.Input<string>;
  serviceId: pulumi.Input<string>;
  /** The release's commit (deployed unless `imageUrl` is set; recorded either way). */
  commit: pulumi.Input<string>;
  /** An image-backed service's image; "" for a Git-backed service. */
  imageUrl?: pulumi.Input<string>;
  timeoutSeconds: pulumi.Input<number>;
  pollSeconds: pulumi.Input<number>;
}

/** The provider's plain inputs. */
export interface RenderDeployInputs {
  apiUrl: string;
  apiKey: string;
  serviceId: string;
  commit: string;
  imageUrl?: string;
  timeoutSeconds: number;
  pollSeconds: number;
}

const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

async function release(inputs: RenderDeployInputs, rollbackTo?: string) {
  try {
    const r = await renderRelease(inputs, {
      commitId: inputs.commit,
      imageUrl: inputs.imageUrl || undefined,
      rollbackTo,
      timeoutSeconds: inputs.timeoutSeconds,
      pollSeconds: inputs.pollSeconds,
    });
    return { ...inputs, ...r };
  } catch (e) {
    const started = (e as { release?: RenderRelease }).release;
    // A deploy that started but failed or timed out is recorded (partial failure): the rollback that
    // follows must know which deploy was live before it.
    if (started) {
      // The host sends these properties in a gRPC trailer: the serialized provider (`__provider`, the
      // host passes it in the inputs) would overflow the trailer, and the host then never answers.
      const { __provider: _p, ...plain } = inputs as RenderDeployInputs & { __provider?: string };
      throw Object.assign(new Error((e as Error).message), {
        id: `render-${inputs.serviceId}`,
        properties: { ...plain, ...started },
        reasons: [(e as Error).message],
      });
    }
    throw e;
  }
}

const provider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: RenderDeployInputs, news: RenderDeployInputs) {
    const failures: { property: string; reason: string }[] = [];
    const known = (v: unknown) => v !== undefined && v !== UNKNOWN;
    if (known(news.serviceId) && !/^srv-[a-z0-9]+$/.test(news.serviceId)) {
      failures.push({ property: "serviceId", reason: "`serviceId` must look like `srv-cq1abc23def`" });
    }
    if (known(news.apiUrl) && !/^https?:\/\//.test(news.apiUrl)) {
      failures.push({ property: "apiUrl", reason: "`apiUrl` must be an http(s) URL" });
    }
    if (known(news.commit) && !news.commit)
      failures.push({ property: "commit", reason: "`commit` is required" });
    for (const k of ["timeoutSeconds", "pollSeconds"] as const) {
      if (known(news[k]) && !(typeof news[k] === "number" && news[k] > 0)) {
        failures.push({ property: k, reason: `\`${k}\` must be a number > 0` });
      }
    }
    return { inputs: news, failures };
  },

  async diff(_id: string, olds: RenderDeployInputs & RenderRelease, news: RenderDeployInputs) {
    return diffRenderDeploy({ ...olds }, { ...news });
  },

  async create(inputs: RenderDeployInputs) {
    const outs = await release(inputs);
    return { id: `render-${inputs.serviceId}`, outs };
  },

  async update(_id: string, olds: RenderDeployInputs & RenderRelease, news: RenderDeployInputs) {
    if (!deploys({ ...olds }, { ...news })) {
      const { deployId, previousDeployId, previousCommit } = olds;
      return { outs: { ...news, deployId, previousDeployId, previousCommit } };
    }
    return { outs: await release(news, rollbackTarget({ ...olds }, { ...news })) };
  },

  async delete() {
    // A deploy cannot be undone on Render by deleting it: the service keeps its live deploy.
  },
};

/** Deploys a release on Render and waits for it to go live; re-applying the previous release rolls back. */
export class RenderDeploy extends pulumi.dynamic.Resource {
  /** The deploy this release made live. */
  declare readonly deployId: pulumi.Output<string>;
  /** The deploy that was live before ("" for the first release). */
  declare readonly previousDeployId: pulumi.Output<string>;
  /** The commit of that deploy. */
  declare readonly previousCommit: pulumi.Output<string>;

  constructor(name: string, args: RenderDeployArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        ...args,
        imageUrl: args.imageUrl ?? "",
        apiKey: pulumi.secret(args.apiKey),
        deployId: undefined,
        previousDeployId: undefined,
        previousCommit: undefined,
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["apiKey"] }),
      "safe-deploy",
      "RenderDeploy",
    );
  }
}
