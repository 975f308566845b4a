import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { pinnedImage } from "./imagePin";
import { containerLabels } from "../core/release/labels";

/** Arguments of the optional Redis container. */
export interface RedisArgs {
  image: string;
  network: pulumi.Input<string>;
  alias?: string;
  /** A remote Docker host (`ssh://...`), where the image is looked up. */
  dockerHost?: string;
}

/** Redis on the stack's network, reachable by the app at `redis://redis:6379`. */
export class Redis extends pulumi.ComponentResource {
  /** URL from the stack's network. */
  public readonly url: pulumi.Output<string>;
  /** The container resource. */
  public readonly container: docker.Container;

  constructor(name: string, args: RedisArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("safe-deploy:redis:Redis", name, {}, opts);
    const alias = args.alias ?? "redis";
    const image = pinnedImage(`${name}-image`, args.image, args.dockerHost, { parent: this });
    this.container = new docker.Container(
      `${name}-redis`,
      {
        image: image.id,
        networksAdvanced: [{ name: args.network, aliases: [alias] }],
        restart: "unless-stopped",
        mustRun: true,
        labels: containerLabels(pulumi.getStack(), "redis"),
      },
      { parent: this },
    );
    // Derived from the container, so whatever takes the URL (the app) is ordered after Redis exists.
    this.url = this.container.id.apply(() => `redis://${alias}:6379`);
    this.registerOutputs({ url: this.url });
  }
}
