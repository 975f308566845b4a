import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse } from "yaml";

/** What a program run through the language host's path produced. */
export interface LanghostRun {
  resources: { type: string; name: string }[];
  /** From the process start until the program registered its last resource: compile plus run. */
  lastResourceMs: number;
  /** Until the program's first resource (not the Stack): loading and compiling the modules `main` imports. */
  firstProgramResourceMs: number;
  /** Packages from node_modules the run loaded. */
  modules: string[];
  typescript: boolean;
  main: string;
  exitCode: number;
  stderr: string;
}

/**
 * Reads a stack file's `config:` as the engine hands it to the program: namespaced keys, objects as JSON.
 * `secure:` values cannot be decrypted here; tests pass the secrets they need.
 */
export async function stackFileConfig(file: string): Promise<Record<string, string>> {
  const doc = parse(await readFile(file, "utf8")) as { config?: Record<string, unknown> };
  return Object.fromEntries(
    Object.entries(doc.config ?? {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
}

/**
 * Loads the program in `projectDir` under Pulumi mocks in a fresh Node process, through the SDK's own
 * `cmd/run` exactly as `pulumi up`'s Node language host starts it (test/helpers/langhost-child.js).
 * `typescript` / `main` override Pulumi.yaml (to measure the old path).
 */
export async function runLikeLanghost(opts: {
  projectDir: string;
  stack: string;
  config: Record<string, string>;
  secrets?: Record<string, string>;
  /** Outputs the mocked engine adds per resource type. */
  state?: Record<string, Record<string, unknown>>;
  typescript?: boolean;
  main?: string;
  env?: Record<string, string>;
}): Promise<LanghostRun> {
  const tmp = await mkdtemp(join(tmpdir(), "sd-langhost-"));
  const out = join(tmp, "result.json");
  const project = "safe-deploy";
  const secrets = Object.fromEntries(
    Object.entries(opts.secrets ?? {}).map(([k, v]) => [`${project}:${k}`, v]),
  );
  const input = {
    projectDir: opts.projectDir,
    stack: opts.stack,
    config: { ...opts.config, ...secrets },
    secretKeys: Object.keys(secrets),
    state: opts.state,
    typescript: opts.typescript,
    main: opts.main,
    out,
  };
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env, LANGHOST_INPUT: JSON.stringify(input) };
  // The test runner's loader must not reach the program's process.
  delete env.NODE_OPTIONS;
  try {
    const { code, stderr } = await new Promise<{ code: number; stderr: string }>((done) => {
      execFile(
        process.execPath,
        [resolve(__dirname, "langhost-child.js")],
        { cwd: opts.projectDir, env, maxBuffer: 64 << 20 },
        (err, _stdout, stderr) => done({ code: err ? Number(err.code ?? 1) : 0, stderr }),
      );
    });
    const res = JSON.parse(await readFile(out, "utf8").catch(() => "{}"));
    return {
      resources: [],
      lastResourceMs: NaN,
      firstProgramResourceMs: NaN,
      modules: [],
      ...res,
      exitCode: code,
      stderr,
    };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
