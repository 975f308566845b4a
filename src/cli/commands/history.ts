import { Command } from "commander";
import { basename } from "node:path";
import type { ReleaseRecord } from "../../core/release/ledger";
import { formatDuration, projectDirOption, stateDirOption } from "../shared";

/** Options of `history`. */
export interface HistoryOpts {
  stack: string;
  /** The Pulumi project directory; default `.`. */
  projectDir?: string;
  /** Where releases are kept, relative to `projectDir`; default `.safe-deploy`. */
  stateDir?: string;
  json?: boolean;
}

type Out = (line: string) => void;
const stdout: Out = (l) => process.stdout.write(l + "\n");

/** `history --stack S`: every release of the stack, newest first (id, time, commit, image, schema, backup, result, duration). */
export async function runHistory(o: HistoryOpts, out: Out = stdout): Promise<void> {
  const { Ledger, describeUnreadable } = await import("../../core/release/ledger");
  const { CheckFailedError } = await import("../../core/errors");
  const { stateDirOf } = await import("../state-dir");
  const stateDir = stateDirOf(o);
  const { releases: list, unreadable } = await new Ledger(stateDir, o.stack).readAll();
  // The readable releases are shown, then the unreadable ones fail the command: never a silent gap.
  printHistory(o, list, out);
  if (unreadable.length) throw new CheckFailedError(describeUnreadable(o.stack, unreadable));
}

function printHistory(o: HistoryOpts, list: ReleaseRecord[], out: Out): void {
  if (o.json)
    return out(
      JSON.stringify(
        list.map(({ configFile: _c, ...r }) => r),
        null,
        2,
      ),
    );
  if (!list.length)
    return out(`no releases of stack "${o.stack}" yet: deploy with 'safe-deploy up --stack ${o.stack}'`);
  const rows = list.map((r) => [
    r.id,
    r.time.replace("T", " ").slice(0, 19),
    r.commit.slice(0, 12),
    r.imageDigest ? r.imageDigest.replace(/^sha256:/, "").slice(0, 12) : "-",
    r.schemaVersion ?? r.schemaVersionBefore ?? "-",
    r.backupFile ? basename(r.backupFile) : "-",
    r.result + (r.failedStage ? ` (${r.failedStage})` : "") + (r.rolledBackTo ? ` -> ${r.rolledBackTo}` : ""),
    formatDuration(r.durationMs),
  ]);
  const head = ["RELEASE", "TIME (UTC)", "COMMIT", "IMAGE", "SCHEMA", "BACKUP", "RESULT", "DURATION"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [head, ...rows])
    out(
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join("  ")
        .trimEnd(),
    );
}

/** Registers `history`. */
export function register(program: Command): void {
  program
    .command("history")
    .description(
      "List the stack's releases: id, time, commit, image, schema version, backup, result, duration",
    )
    .requiredOption("--stack <name>", "the stack")
    .addOption(projectDirOption())
    .addOption(stateDirOption())
    .option("--json", "one JSON array, for machines")
    .action(async (o: HistoryOpts) => runHistory(o));
}
