import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { isAbsolute, relative, resolve } from "node:path";
import { checksumDir } from "../core/checksum";
import { dockerInfo, localImageId, requireClassicStore } from "../core/images/resolve";

/** Where the app image comes from: a registry reference, or a build of the release's source. */
export interface AppImageArgs {
  image?: string;
  build?: {
    context: string;
    dockerfile?: string;
    target?: string;
    platform?: string;
    args: Record<string, string>;
    secrets: Array<{ id: string; env: string }>;
    repository?: string;
    push: boolean;
  };
  appName: string;
  /** The release's git commit: the tag of a built image. */
  commit: string;
  projectDir: string;
  /** The Docker host (`docker.host`), read for the tag's current content id. */
  dockerHost?: string;
}

/** The tag a build of `commit` gets: `<repository>:<commit[0..12]>`. */
export function buildTag(repository: string, commit: string): string {
  return `${repository}:${commit.slice(0, 12)}`;
}

/**
 * The image stage: it resolves (pull by reference, or build and optionally push) before anything else
 * runs, so a failed build fails the deploy before the backup. Images are kept on the host
 * (`keepLocally`) so a rollback to a recent release starts without a rebuild.
 */
export function appImage(
  name: string,
  args: AppImageArgs,
  opts: pulumi.CustomResourceOptions,
): { image: docker.RemoteImage; imageId: pulumi.Output<string>; ref: string; pushed?: docker.RegistryImage } {
  if (!args.image && !args.build) throw new Error("`image` or `build` is required");
  if (args.image) {
    const image = new docker.RemoteImage(`${name}-app-image`, { name: args.image, keepLocally: true }, opts);
    // Deploy by content: RemoteImage keeps the id it saw at creation, so a rebuild under the same tag
    // would change nothing. The id the tag has on the host now decides (the container's image and the
    // release key); RemoteImage still pulls a tag the host does not have yet.
    // A digest-pinned reference cannot move: RemoteImage's id is then already the content.
    const ref = args.image;
    const pinned = /@sha256:[0-9a-f]{64}$|^sha256:[0-9a-f]{64}$/.test(ref);
    const imageId = pinned
      ? image.imageId
      : image.imageId.apply(async (stored) => (await localImageId(ref, args.dockerHost)) ?? stored);
    return { image, imageId, ref };
  }
  const b = args.build!;
  requireClassicStore(dockerInfo(args.dockerHost), args.dockerHost);
  const context = isAbsolute(b.context) ? b.context : resolve(args.projectDir, b.context);
  const ref = buildTag(b.repository ?? `safe-deploy/${args.appName}`, args.commit);
  const image = new docker.RemoteImage(
    `${name}-app-image`,
    {
      name: ref,
      keepLocally: true,
      build: {
        // Relative to the project root (the provider's directory) when inside it: an absolute checkout
        // path would rebuild after a rollback run from a temporary worktree (issue 14, item 11).
        context: relative(args.projectDir, context).startsWith("..")
          ? context
          : relative(args.projectDir, context) || ".",
        dockerfile: b.dockerfile,
        target: b.target,
        platform: b.platform,
        buildArgs: b.args,
        // Build secrets are read from this machine's environment by name; their values never enter
        // the program, the state or the image history (unlike build args).
        secrets: b.secrets.map((s) => ({ id: s.id, env: s.env })),
        label: { "org.opencontainers.image.revision": args.commit },
      },
      triggers: { context: checksumDir(context, ["node_modules", ".git"]), commit: args.commit },
    },
    opts,
  );
  const pushed = b.push
    ? new docker.RegistryImage(`${name}-app-push`, { name: image.name, keepRemotely: true }, opts)
    : undefined;
  return { image, imageId: image.imageId, ref, pushed };
}
