// The engine's port to a Pulumi stack: what the deploy and rollback need of one, and nothing more.
// The Automation API adapter (src/cli/stack.ts) implements it; tests implement it with a recording fake.
// Pulumi-free on purpose (docs/architecture.md, "Layers").

/** A config value as the stack holds it. */
export interface ConfigEntry {
  value: string;
  secret: boolean;
}
/** All config of a stack, keys namespaced (`safe-deploy:app`). */
export type ConfigMap = Record<string, ConfigEntry>;

/** One past update of the stack, as `pulumi stack history` reports it. */
export interface HistoryEntry {
  version: number;
  kind: string;
  result: string;
  startTime: string;
  endTime?: string;
  config: ConfigMap;
}

/** One resource step of an update, as the deploy needs to know it. */
export interface StepEvent {
  kind: "done" | "failed";
  /** create, update, replace, same, delete, ... */
  op: string;
  type: string;
  urn: string;
  /** Outputs of a finished step (secret values arrive as "[secret]"). */
  outputs?: Record<string, unknown>;
}

/** What the deploy and rollback need of a stack, and nothing more. */
export interface StackAccess {
  readonly name: string;
  getAllConfig(): Promise<ConfigMap>;
  setAllConfig(config: ConfigMap): Promise<void>;
  /** `pulumi stack export`: the checkpoint, to archive with the release. */
  exportState(): Promise<unknown>;
  /** `pulumi stack import`: for recovering broken state, always followed by `refresh`; never a rollback. */
  importState(state: unknown): Promise<void>;
  /** `pulumi up` of the program in `workDir` (default: the project), streaming the engine's output. */
  up(opts?: UpOptions): Promise<{ outputs: ConfigMap }>;
  refresh(opts?: { onOutput?: (line: string) => void }): Promise<void>;
  history(): Promise<HistoryEntry[]>;
  outputs(): Promise<ConfigMap>;
  /** Cancels an update in progress (removes a file-backend lock). */
  cancel(): Promise<void>;
}

/** Options of one `up`. */
export interface UpOptions {
  onOutput?: (line: string) => void;
  onEvent?: (e: StepEvent) => void;
  /** Run the program in this directory (a worktree of an older commit) instead of the project's. */
  workDir?: string;
  /** Extra environment for the program (e.g. SAFE_DEPLOY_COMMIT). */
  env?: Record<string, string>;
  /** Cancels the update (the engine gets SIGINT and stops gracefully); `up` then rejects. */
  signal?: AbortSignal;
}
