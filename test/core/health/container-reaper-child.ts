// A stand-in for a health test file (container-reaper.test.ts): starts the reaper unless told not to,
// runs a crash-looping container with its label, prints the label, then waits to be killed.
import { ensureBusyboxImage, runContainer } from "../../helpers/health-image";
import { reapContainersOnExit } from "./container-reaper";

const reap = process.argv[2] !== "no-reaper";
const label = reap ? reapContainersOnExit("reaper-test") : `safe-deploy-test.run=no-reaper-${process.pid}`;
void (async () => {
  const image = await ensureBusyboxImage();
  await runContainer(["--label", label, "--restart", "always", image, "sh", "-c", "sleep 1; exit 3"]);
  process.stdout.write(`${label}\n`);
  setInterval(() => {}, 1 << 30);
})();
