// `npm run images`: starts dockerd when needed and builds every test image, so test runs start warm.
// Tests call the same ensure* functions, so they still work when this was never run.
import { demoAppImage } from "./app-image";
import { ALL_IMAGES as BASE_IMAGES, ensureDocker, ensureImage, imageTag, sweepDeadRuns } from "./docker";
import { BUSYBOX_IMAGE, HAPROXY_IMAGE } from "./health-image";

const ALL_IMAGES = [...BASE_IMAGES, BUSYBOX_IMAGE, HAPROXY_IMAGE];

async function main(): Promise<void> {
  await ensureDocker();
  const swept = await sweepDeadRuns();
  if (swept) console.log(`removed ${swept} container(s)/network(s)/volume(s) left by dead test runs`);
  // Two builds at a time: debootstrap mostly waits on the mirror, and the machine has two cores.
  const queue = [...ALL_IMAGES];
  const worker = async () => {
    for (let spec = queue.shift(); spec; spec = queue.shift()) {
      const started = Date.now();
      const tag = await ensureImage(spec);
      console.log(`${tag}  ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  };
  await Promise.all([worker(), worker()]);
  const started = Date.now();
  console.log(`${await demoAppImage()}  ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((e: unknown) => {
  console.error(`images: ${e instanceof Error ? e.message : String(e)}`);
  console.error(`images wanted: ${ALL_IMAGES.map(imageTag).join(", ")}`);
  process.exitCode = 1;
});
