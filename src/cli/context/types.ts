// What a command holds for one stack. Apart from index.ts so the modules that build it (ports.ts,
// preflight.ts) import its type without an import circle.
import type { StackConfig } from "../../config";
import type { Logger } from "../../core/log/logger";
import type { Ledger } from "../../core/release/ledger";
import type { DeployPorts } from "../../core/release/orchestrator";
import type { StackAccess } from "../../core/release/stack-port";
import type { StackOptions } from "../stack";
import type { StackSecrets } from "./config";
import type { DatabaseTarget } from "./database";

/** How a command reaches a stack; tests replace `openStack` (the Pulumi engine cannot run here). */
export interface ContextOptions {
  stack: string;
  projectDir?: string;
  stateDir?: string;
  create?: boolean;
  /** Progress for a person (default stderr). */
  console?: { write(chunk: string): unknown };
  /** `update.log` (deploys) or `rollback.log` (rollbacks), in `<projectDir>/logs`. */
  logName?: string;
  openStack?: (o: StackOptions) => Promise<StackAccess>;
}

/** Everything `up`, `rollback` and `status` share for one stack. */
export interface ReleaseContext {
  stackName: string;
  projectDir: string;
  stateDir: string;
  logsDir: string;
  stack: StackAccess;
  config: StackConfig;
  secrets: StackSecrets;
  /** Console + log file; engine output goes to the file only (`fileLog`). */
  log: Logger;
  fileLog: Logger;
  ledger: Ledger;
  /** The stack's containers as its last update left them (empty before the first deploy). */
  containers(): Promise<Record<string, string>>;
  database(): Promise<DatabaseTarget | undefined>;
  /** The backup directory, absolute. */
  backupDir: string;
  /** `notifyDeadlineMs`: how long one notification may take in all (default 30 s). */
  ports(o?: {
    allowDirty?: boolean;
    allowMigrationEdits?: boolean;
    notifyDeadlineMs?: number;
    lockRenewMs?: number;
  }): DeployPorts;
}
