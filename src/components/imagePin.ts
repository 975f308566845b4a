import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";

/** The command that prints the content id a reference has on the Docker host. Pure. */
export function imageIdCommand(ref: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$/.test(ref))
    throw new Error(`\`image\` must be a plain image reference, got ${JSON.stringify(ref)}`);
  return `docker image inspect --format '{{.Id}}' ${ref}`;
}

/**
 * A service image (database, Redis, proxy) pinned to the content id it had when first deployed.
 * `pulumi refresh` re-reads what a tag points at now (RemoteImage's read sets image_id from the local
 * tag), so a container fed RemoteImage.imageId is replaced on the next `up` after someone pulled a newer
 * `postgres:15` (issue 14, item 6). The pin is a command that ran once: refresh leaves its stdout alone,
 * and only a change of the configured reference runs it again.
 */
export function pinnedImage(
  name: string,
  ref: string,
  dockerHost: string | undefined,
  opts: pulumi.CustomResourceOptions,
): { image: docker.RemoteImage; id: pulumi.Output<string> } {
  const image = new docker.RemoteImage(name, { name: ref, keepLocally: true }, opts);
  const pin = new command.local.Command(
    `${name}-pin`,
    {
      create: imageIdCommand(ref),
      environment: dockerHost ? { DOCKER_HOST: dockerHost } : undefined,
      addPreviousOutputInEnv: false,
    },
    // The pin reads the host: the Docker provider must have pulled the image first.
    { parent: opts.parent, dependsOn: [image] },
  );
  // The command provider always sets stdout; only a mocked engine leaves it out.
  return { image, id: pin.stdout.apply((s) => s?.trim()) };
}
