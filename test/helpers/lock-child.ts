// A separate process that competes for a deploy lock (test/core/release/lock.test.ts).
// Args: stateDir stack mode. Waits for "go" on stdin, then tries once; prints one JSON line.
// mode "hold": the winner keeps the lock until stdin closes; "die": the winner exits without releasing.
import { createInterface } from "node:readline";
import { acquireLock } from "../../src/core/release/lock";

const [stateDir, stack, mode] = process.argv.slice(2);
const rl = createInterface({ input: process.stdin });
process.stdout.write(JSON.stringify({ ready: process.pid }) + "\n");
rl.once("line", async () => {
  try {
    const lock = await acquireLock({ stateDir, stack, command: `safe-deploy up --stack ${stack}` });
    process.stdout.write(JSON.stringify({ won: process.pid, id: lock.info.id }) + "\n");
    if (mode === "die") process.exit(0);
    rl.once("close", async () => {
      await lock.release();
      process.exit(0);
    });
  } catch (e) {
    process.stdout.write(JSON.stringify({ lost: process.pid, message: (e as Error).message }) + "\n");
    process.exit(0);
  }
});
