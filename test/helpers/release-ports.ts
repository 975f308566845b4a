// Recording ports for the release orchestrator (issue 22): a real ledger on disk holding one good
// release, and every other port a recorder a test overrides where its case needs. The Pulumi engine is
// a scripted StackAccess: `up` reports the given step events, then answers the given url.
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import { Ledger, type ReleaseRecord } from "../../src/core/release/ledger";
import type { DeployPorts, NotifyType } from "../../src/core/release/orchestrator";
import type { ConfigMap, StackAccess, StepEvent, UpOptions } from "../../src/core/release/stack-port";

/** One notification as sent. */
export interface Note {
  type: NotifyType;
  message: string;
  fields: Record<string, string>;
}

/** The ports and what they recorded. */
export interface Recording {
  p: DeployPorts;
  calls: string[];
  notes: Note[];
  logs: string[];
  ledger: Ledger;
  /** The good release before this one (commit aaaaaaa…, config image web:old). */
  prev: ReleaseRecord;
  isLocked(): boolean;
}

/** A git port at `head` whose checkouts are recorded in `calls` (a worktree path, never created). */
export const recordingGit = (calls: string[], head: string): DeployPorts["git"] => ({
  head: async () => head,
  checkout: async (commit) => {
    calls.push(`checkout ${commit.slice(0, 7)}`);
    return {
      dir: `/tmp/worktree-${commit.slice(0, 7)}`,
      remove: async () => void calls.push("worktree removed"),
    };
  },
});

/** A log port writing each line to `logs` under its level. */
export const recordingLog = (logs: string[]): DeployPorts["log"] => ({
  step: (m) => void logs.push(`step: ${m}`),
  info: (m) => void logs.push(`info: ${m}`),
  warn: (m) => void logs.push(`warn: ${m}`),
  error: (m) => void logs.push(`error: ${m}`),
});

/** A step event of `up`, its URN built from type and name. */
export const stepEvent = (
  type: string,
  name: string,
  e: Partial<Omit<StepEvent, "type" | "urn">> = {},
): StepEvent => ({
  kind: "done",
  op: "create",
  type,
  urn: `urn:pulumi:staging::safe-deploy::${type}::${name}`,
  ...e,
});

export const NEW_COMMIT = "bbbbbbb0000000000000000000000000000000000";
export const OLD_COMMIT = "aaaaaaa0000000000000000000000000000000000";

/** Ports over a ledger under `dir`; `up` sends `events` and answers `url` (none: no url output). */
export async function recordingPorts(
  dir: string,
  o: { events?: StepEvent[]; url?: string; pending?: number } = {},
): Promise<Recording> {
  const calls: string[] = [];
  const notes: Note[] = [];
  const logs: string[] = [];
  let locked = false;
  const ledger = new Ledger(await mkdtemp(join(dir, "state-")), "staging");
  const prev = await ledger.create({
    stack: "staging",
    commit: OLD_COMMIT,
    config: {},
    configFile: "config:\n  safe-deploy:app:\n    image: web:old\n",
    time: new Date("2026-11-22T12:00:00Z"),
  });
  await ledger.markResult(prev.id, "good");
  const url: ConfigMap = o.url === undefined ? {} : { url: { value: o.url, secret: false } };
  const stack: StackAccess = {
    name: "staging",
    getAllConfig: async () => assert.fail("getAllConfig would decrypt secrets"),
    setAllConfig: async () => assert.fail("setAllConfig is not how a release is re-applied"),
    exportState: async () => {
      calls.push("exportState");
      return {
        version: 3,
        deployment: { resources: [], pending_operations: Array(o.pending ?? 0).fill({}) },
      };
    },
    importState: async (st) => {
      const pending = (st as { deployment: { pending_operations: unknown[] } }).deployment.pending_operations;
      calls.push(`importState pending=${pending.length}`);
    },
    refresh: async () => void calls.push("refresh"),
    up: async (u: UpOptions = {}) => {
      calls.push(`up${u.workDir ? ` workDir=${u.workDir}` : ""} commit=${u.env?.SAFE_DEPLOY_COMMIT}`);
      for (const e of o.events ?? []) u.onEvent?.(e);
      return { outputs: url };
    },
    history: async () => [],
    outputs: async () => url,
    cancel: async () => void calls.push("cancel"),
  };
  const p: DeployPorts = {
    stack,
    releases: ledger,
    config: {
      read: async () => "config:\n  safe-deploy:app:\n    image: web:new\n",
      write: async (text, where) =>
        void calls.push(`writeConfig ${where} ${/web:old/.test(text) ? "old" : "?"}`),
    },
    lock: async (stackName, command) => {
      assert.equal(locked, false, "lock taken twice");
      locked = true;
      calls.push(`lock ${stackName} ${command}`);
      return async () => {
        locked = false;
        calls.push("unlock");
      };
    },
    preflight: async () => [],
    database: {
      schemaVersion: async () => "002",
      safetyBackup: async () => {
        calls.push("safetyBackup");
        return join(dir, "safety.dump");
      },
      restore: async (file, safety) => void calls.push(`restore ${file} safety=${safety}`),
    },
    verify: async (u) => void calls.push(`verify ${u}`),
    notify: async (type, message, fields) => void notes.push({ type, message, fields }),
    git: recordingGit(calls, NEW_COMMIT),
    archiveCheckpoint: async (id) => join(dir, `${id}.checkpoint.json`),
    log: recordingLog(logs),
  };
  return { p, calls, notes, logs, ledger, prev, isLocked: () => locked };
}
