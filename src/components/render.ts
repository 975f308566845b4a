import * as pulumi from "@pulumi/pulumi";
import { RenderDeploy } from "../providers/render";

/** Arguments of a Render service's release (issue 17, `app.target: render`). */
export interface RenderAppArgs {
  apiUrl: string;
  /** Secret: `renderApiKey`. */
  apiKey: pulumi.Input<string>;
  serviceId: string;
  commit: string;
  /** An image-backed service's image (`app.image`); absent: Render builds `commit`. */
  imageUrl?: string;
  timeoutSeconds: number;
  pollSeconds: number;
}

/** The app on Render: one deploy per release, rolled back through Render's rollback. */
export class RenderApp extends pulumi.ComponentResource {
  /** The deploy that went live. */
  public readonly deploy: RenderDeploy;

  constructor(name: string, args: RenderAppArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("safe-deploy:render:RenderApp", name, {}, opts);
    if (!args.serviceId) throw new Error("`serviceId` is required");
    if (!args.commit) throw new Error("`commit` is required");
    this.deploy = new RenderDeploy(`${name}-deploy`, args, {
      parent: this,
      dependsOn: ([] as pulumi.Resource[]).concat((opts.dependsOn as pulumi.Resource[]) ?? []),
    });
    this.registerOutputs({ deployId: this.deploy.deployId });
  }
}
