// Runs `up` as the deploy does (openStack, catchingSignals' abort forwarded to the engine), for
// engine-signals.test.ts. argv: projectDir, state dir, marker file written once a signal was handled.
import { writeFileSync } from "node:fs";
import { openStack } from "../../src/cli/stack";
import { catchingSignals } from "../../src/core/backup/interrupt";

async function main(): Promise<void> {
  const [projectDir, state, marker] = process.argv.slice(2);
  const stack = await openStack({
    stack: "staging",
    projectDir,
    env: { PULUMI_BACKEND_URL: `file://${state}` },
  });
  await catchingSignals(
    async (_interrupted, abort) => {
      await stack.up({ signal: abort }).then(
        () => process.stdout.write("up finished\n"),
        (e: Error) => process.stdout.write(`up failed: ${e.message.split("\n")[0]}\n`),
      );
    },
    // Runs before the abort reaches the engine; setImmediate comes after every abort listener ran.
    () => setImmediate(() => writeFileSync(marker, "")),
  );
}
void main();
