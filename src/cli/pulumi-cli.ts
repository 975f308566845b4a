// The Pulumi CLI comes with the project (issue 14, part 4): the `pulumi` on PATH when there is one,
// otherwise the version the SDK pins, installed once by the Automation API into ~/.pulumi/versions.
import { homedir } from "node:os";
import { join } from "node:path";
import type { PulumiCommand } from "@pulumi/pulumi/automation";
import { version as sdkVersion } from "@pulumi/pulumi/version";
import { CannotRunError } from "../core/errors";

/** Where `PulumiCommand.install` fetches its installer from (automation/cmd.js, installPosix). */
export const INSTALLER_URL = "https://get.pulumi.com/install.sh";

/**
 * The Pulumi CLI version the project pins: the installed `@pulumi/pulumi` SDK's own (package.json
 * `~3.248.0`, exact in package-lock.json), which is also what the Automation API installs by default.
 */
export function pinnedPulumiVersion(): string {
  return sdkVersion;
}

/** The command that installs the pinned CLI by hand. */
export function manualInstallCommand(version = pinnedPulumiVersion()): string {
  return `curl -fsSL https://get.pulumi.com | sh -s -- --version ${version}`;
}

/** How to find or install the CLI. */
export interface PulumiCliOptions {
  /** Install root; default ~/.pulumi/versions/<version>, the Automation API's own default. */
  root?: string;
  /** Told when the CLI is not the one on PATH (where it came from). */
  note?: (line: string) => void;
}

/**
 * The Pulumi CLI to run: a suitable `pulumi` on PATH as is; else the pinned version from (or installed
 * into) `root`. Throws CannotRunError (exit 3) naming what was tried and the manual install command.
 */
export async function pulumiCli(opts: PulumiCliOptions = {}): Promise<PulumiCommand> {
  const { PulumiCommand } = await import("@pulumi/pulumi/automation");
  const version = pinnedPulumiVersion();
  const root = opts.root ?? join(homedir(), ".pulumi", "versions", version);
  let onPath: string;
  try {
    return await PulumiCommand.get();
  } catch (e) {
    onPath = firstLine(e);
  }
  try {
    // install() first uses an existing installation in `root`, then downloads the installer.
    const cmd = await PulumiCommand.install({ root });
    opts.note?.(`using Pulumi CLI ${cmd.version ?? version} from ${root} ('pulumi' on PATH: ${onPath})`);
    return cmd;
  } catch (e) {
    throw new CannotRunError(
      `the Pulumi CLI is not available. Tried: 'pulumi' on PATH (${onPath}); installing version ${version} ` +
        `into ${root} with ${INSTALLER_URL} (${firstLine(e)}). Install it by hand with ` +
        `'${manualInstallCommand(version)}' (see https://www.pulumi.com/docs/install/) and run again.`,
    );
  }
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  if (/ENOENT/.test(text)) return "not found";
  return text.trim().split("\n")[0].slice(0, 300);
}
