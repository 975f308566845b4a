// For scripts/deploy-staging.sh: the same Pulumi CLI and backend `safe-deploy up` would use, so the
// script's own `pulumi stack select` / `config set` reach the same stack. Prints two lines: the CLI's
// command, then the PULUMI_BACKEND_URL to export (empty when the user's own backend or login applies).
// Exits 3 (CLI unavailable) or 2 (no backend for this stack) with the message on stderr.
import { resolve } from "node:path";
import { SafeDeployError } from "../src/core/errors";
import { pulumiCli } from "../src/cli/pulumi-cli";
import { chooseBackend } from "../src/cli/stack";

async function main(stack: string): Promise<void> {
  const note = (line: string) => process.stderr.write(`deploy-staging: ${line}\n`);
  const cli = await pulumiCli({ note });
  const backend = chooseBackend(stack, resolve(__dirname, ".."));
  process.stdout.write(`${cli.command}\n${backend.env.PULUMI_BACKEND_URL ?? ""}\n`);
}

main(process.argv[2] ?? "staging").catch((e: unknown) => {
  process.stderr.write(`deploy-staging: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = e instanceof SafeDeployError ? e.exitCode : 1;
});
