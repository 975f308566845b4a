// A separate process, a "clone" with its own state directory, that takes both deploy locks
// (test/core/release/db-lock.test.ts). Args: stateDir stack databaseUrl mode. Waits for "go" on stdin,
// tries once and prints one JSON line; "hold": keeps the locks until stdin closes; "die": killed by the test.
import { createInterface } from "node:readline";
import { acquireDeployLocks } from "../../src/core/release/db-lock";

const [stateDir, stack, url] = process.argv.slice(2);
const rl = createInterface({ input: process.stdin });
const warnings: string[] = [];
process.stdout.write(JSON.stringify({ ready: process.pid }) + "\n");
rl.once("line", async () => {
  try {
    const locks = await acquireDeployLocks(
      { stateDir, stack, command: `safe-deploy up --stack ${stack}`, warn: (m) => warnings.push(m) },
      { url },
      { checkout: stateDir, commit: "0123456789abcdef" },
    );
    process.stdout.write(
      JSON.stringify({ won: process.pid, backendPid: locks.db?.holder.backendPid, warnings }) + "\n",
    );
    rl.once("close", async () => {
      await locks.release();
      process.exit(0);
    });
  } catch (e) {
    process.stdout.write(JSON.stringify({ lost: process.pid, message: (e as Error).message }) + "\n");
    process.exit(0);
  }
});
