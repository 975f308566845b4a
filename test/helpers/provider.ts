import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";

// Pulumi's own provider host and the SDK's own gRPC stubs; the host is the process the engine starts
// for every `pulumi-nodejs:dynamic` resource. Loaded through the SDK's paths so the stubs and
// grpc-js are the very instances the host uses.
const grpc: typeof import("@grpc/grpc-js") = require("@grpc/grpc-js");
const provrpc = require("@pulumi/pulumi/proto/provider_grpc_pb");
const provproto = require("@pulumi/pulumi/proto/provider_pb");
const statusproto = require("@pulumi/pulumi/proto/status_pb");
const { Struct } = require("google-protobuf/google/protobuf/struct_pb");

/** The dynamic provider methods Pulumi's provider host calls. */
export type ProviderMethod = "check" | "diff" | "create" | "read" | "update" | "delete";

/** What the engine sends for a value not known yet (preview): `runtime/rpc.js` `unknownValue`. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** A secret as it travels on the wire (`runtime/rpc.js` `specialSigKey` / `specialSecretSig`). */
export function secret<T>(value: T): { [SIG_KEY]: string; value: T } {
  return { [SIG_KEY]: SECRET_SIG, value };
}

/**
 * A provider method's error as the host reported it: `message` is the gRPC status details (the
 * provider's own message); `id`, `properties` and `reasons` are set for a partial failure
 * (`ErrorResourceInitFailed` in `grpc-status-details-bin`).
 */
export class SerializedProviderError extends Error {
  code?: number;
  id?: string;
  properties?: Record<string, unknown>;
  reasons?: string[];
}

/** A harness or host problem (not the provider's own error): a test that hits it is wrong. */
export class ProviderHarnessError extends Error {}

interface Host {
  child: ChildProcess;
  /** host:port of the host's gRPC server; one client per call, closed after it, so no channel keeps the test alive. */
  address: string;
  stderr: string[];
  /** From Configure: false (the dynamic host's answer) means the engine strips secrets before CRUD. */
  acceptSecrets: boolean;
}

const hosts = new Map<string, Promise<Host>>();
const ROOT = join(__dirname, "..", "..");

/** Options for one call; `env` and `cwd` select the host process (one per distinct pair, reused). */
export interface CallOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Resource URN sent with the request (the host ignores it; the engine always sends one). */
  urn?: string;
  /** Old inputs for diff/update/delete (the engine sends them beside the old outputs); default the olds. */
  oldInputs?: Record<string, unknown>;
  /** false: the host exactly as Pulumi ships it, without the undefined-value guard (provider-guard.js). */
  guard?: boolean;
  /** Provider config sent in Configure `args` (secrets wrapped, as the engine sends them). */
  config?: Record<string, unknown>;
}

async function startHost(
  cwd: string,
  env: NodeJS.ProcessEnv,
  guard: boolean,
  config: Record<string, unknown>,
) {
  const hostDir = join(dirname(require.resolve("@pulumi/pulumi/package.json")), "cmd", "dynamic-provider");
  // The engine passes its own address as the one argument and the project in the environment.
  const child = spawn(
    process.execPath,
    ["--require", join(__dirname, "provider-guard.js"), hostDir, "127.0.0.1:0"],
    {
      cwd,
      env: {
        ...env,
        PULUMI_NODEJS_PROJECT: "safe-deploy",
        PULUMI_PROJECT: "safe-deploy",
        SAFE_DEPLOY_PROVIDER_GUARD: guard ? "on" : "off",
      },
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  const stderr: string[] = [];
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    stderr.push(d);
    if (stderr.length > 200) stderr.shift();
  });
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once("line", (l) => resolve(Number(l.trim())));
    child.once("error", reject);
    child.once("exit", (code) =>
      reject(
        new ProviderHarnessError(
          `provider host exited ${code} before printing its port:\n${stderr.join("")}`,
        ),
      ),
    );
  });
  // Nothing here may keep the test process alive; the host exits when its stdin closes.
  child.unref();
  for (const s of [child.stdin, child.stdout, child.stderr])
    (s as unknown as { unref?: () => void })?.unref?.();
  process.once("exit", () => child.kill());

  const address = `127.0.0.1:${port}`;
  // The engine configures the provider once before any resource call (provider_plugin.go Configure):
  // secrets kept in `args`, variables as "<pkg>:config:<key>" strings.
  const req = new provproto.ConfigureRequest();
  req.setAcceptsecrets(true);
  req.setAcceptresources(true);
  req.setSendsOldInputs(true);
  req.setSendsOldInputsToDelete(true);
  for (const [k, v] of Object.entries(config)) {
    const plain = unwrapSecrets(v);
    req
      .getVariablesMap()
      .set(`pulumi-nodejs:config:${k}`, typeof plain === "string" ? plain : JSON.stringify(plain));
  }
  req.setArgs(toStruct(config, "configure args"));
  const resp = await unary({ child, stderr, address }, "configure", req, 30_000);
  return { child, address, stderr, acceptSecrets: resp.getAcceptsecrets() } satisfies Host;
}

function hostFor(opts: CallOptions): Promise<Host> {
  const cwd = opts.cwd ?? ROOT;
  const env = opts.env ?? process.env;
  const guard = opts.guard ?? true;
  const config = opts.config ?? {};
  const key = JSON.stringify([cwd, guard, config, Object.entries(env).sort()]);
  let h = hosts.get(key);
  if (!h) {
    h = startHost(cwd, env, guard, config);
    hosts.set(key, h);
    h.catch(() => hosts.delete(key));
  }
  return h;
}

/** Number of provider host processes this test file started (they are reused across calls). */
export function providerHostCount(): number {
  return hosts.size;
}

/** Stops every host this file started (they also stop on their own when the test process exits). */
export async function closeProviderHosts(): Promise<void> {
  const all = [...hosts.values()];
  hosts.clear();
  for (const h of await Promise.allSettled(all)) {
    if (h.status !== "fulfilled") continue;
    h.value.child.kill();
  }
}

/** Returns the path of the first `undefined` (or value Struct would mangle) below `value`, or null. */
export function findUndefined(value: unknown, where: string): string | null {
  return require("./provider-values.js").findUnmarshallable(value, where);
}

function toStruct(value: Record<string, unknown>, what: string) {
  // The engine has no `undefined`: a test that sends one is testing something the engine never does.
  const bad = findUndefined(value, what);
  if (bad)
    throw new ProviderHarnessError(`the test sends ${bad}; the engine never sends that: leave the key out`);
  return Struct.fromJavaScript(value);
}

function unwrapSecrets(v: unknown): any {
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SIG_KEY] === SECRET_SIG) return unwrapSecrets(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrapSecrets(x)]));
  }
  return v;
}

function hasUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(hasUnknown);
  if (v && typeof v === "object") return Object.values(v).some(hasUnknown);
  return false;
}

function withoutProvider(o: Record<string, any> | undefined): Record<string, any> | undefined {
  if (!o) return o;
  const { __provider: _p, ...rest } = o;
  return rest;
}

function unary(
  host: Pick<Host, "child" | "stderr" | "address">,
  method: string,
  req: unknown,
  timeoutMs: number,
) {
  const client = new provrpc.ResourceProviderClient(host.address, grpc.credentials.createInsecure());
  return new Promise<any>((resolve, reject) => {
    client[method](req, { deadline: Date.now() + timeoutMs }, (err: any, resp: any) => {
      client.close();
      if (!err) return resolve(resp);
      if (err.code === grpc.status.DEADLINE_EXCEEDED || err.code === grpc.status.UNAVAILABLE) {
        return reject(
          new ProviderHarnessError(
            `provider host ${method}: ${err.details} (host ${host.child.exitCode === null ? "running" : `exited ${host.child.exitCode}`}); its stderr:\n${host.stderr.join("")}`,
          ),
        );
      }
      reject(fromGrpcError(err));
    });
  });
}

/** The host's error as the engine reads it (provider_plugin.go parseError). */
function fromGrpcError(err: any): Error {
  const message: string = err.details ?? err.message;
  const e = message.includes("[provider-host guard]")
    ? new ProviderHarnessError(message)
    : new SerializedProviderError(message);
  (e as SerializedProviderError).code = err.code;
  const bin = err.metadata?.get?.("grpc-status-details-bin")?.[0];
  if (bin) {
    const status = statusproto.Status.deserializeBinary(new Uint8Array(bin as Buffer));
    for (const any of status.getDetailsList()) {
      const init = any.unpack(
        provproto.ErrorResourceInitFailed.deserializeBinary,
        "pulumirpc.ErrorResourceInitFailed",
      );
      if (!init) continue;
      Object.assign(e, {
        id: init.getId(),
        properties: withoutProvider(init.getProperties()?.toJavaScript() ?? {}),
        reasons: init.getReasonsList(),
      });
    }
  }
  return e;
}

/**
 * Calls one method of a serialized dynamic provider (the `__provider` input the mocks record) through
 * Pulumi's real provider host (`@pulumi/pulumi/cmd/dynamic-provider`) over gRPC, with requests built as
 * the engine builds them: `__provider` in the properties, values as `google.protobuf.Struct`, unknowns
 * (UNKNOWN) only in check and diff, secrets kept only if the host's Configure accepted them (it does
 * not: they arrive as plain values). `args` are the provider method's own arguments; the result has the
 * method's shape with `__provider` removed. One host process per cwd/env/config, reused.
 */
export async function callSerializedProvider(
  text: string,
  method: ProviderMethod,
  args: unknown[],
  opts: CallOptions = {},
): Promise<any> {
  const host = await hostFor(opts);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const urn = opts.urn ?? "urn:pulumi:test::safe-deploy::pulumi-nodejs:dynamic:Resource::test";
  const wire = (v: unknown) => (host.acceptSecrets ? v : unwrapSecrets(v)) as Record<string, unknown>;
  const props = (v: unknown, what: string, allowUnknowns: boolean) => {
    const o = wire(v ?? {});
    if (!allowUnknowns && hasUnknown(o)) {
      throw new ProviderHarnessError(
        `the test sends an unknown value to ${method} (${what}); the engine sends unknowns only to check and diff (preview)`,
      );
    }
    return toStruct({ ...o, __provider: text }, `${method} ${what}`);
  };
  const call = (req: unknown) => unary(host, method, req, timeoutMs);

  switch (method) {
    case "check": {
      const [olds, news] = args as [Record<string, unknown>, Record<string, unknown>];
      const req = new provproto.CheckRequest();
      req.setUrn(urn);
      // A new resource has no old inputs: the engine sends an empty struct, not one with `__provider`.
      req.setOlds(olds && Object.keys(olds).length > 0 ? props(olds, "olds", true) : toStruct({}, "olds"));
      req.setNews(props(news, "news", true));
      const resp = await call(req);
      return {
        inputs: withoutProvider(resp.getInputs()?.toJavaScript()),
        failures: resp
          .getFailuresList()
          .map((f: any) => ({ property: f.getProperty(), reason: f.getReason() })),
      };
    }
    case "diff": {
      const [id, olds, news] = args as [string, Record<string, unknown>, Record<string, unknown>];
      const req = new provproto.DiffRequest();
      req.setId(id);
      req.setUrn(urn);
      req.setOlds(props(olds, "olds", true));
      req.setOldInputs(props(opts.oldInputs ?? olds, "oldInputs", true));
      req.setNews(props(news, "news", true));
      const resp = await call(req);
      const C = provproto.DiffResponse.DiffChanges;
      const changes = resp.getChanges();
      return {
        changes: changes === C.DIFF_SOME ? true : changes === C.DIFF_NONE ? false : undefined,
        replaces: resp.getReplacesList(),
        deleteBeforeReplace: resp.getDeletebeforereplace(),
      };
    }
    case "create": {
      const [inputs] = args as [Record<string, unknown>];
      const req = new provproto.CreateRequest();
      req.setUrn(urn);
      req.setProperties(props(inputs, "properties", false));
      const resp = await call(req);
      return { id: resp.getId(), outs: withoutProvider(resp.getProperties()?.toJavaScript()) };
    }
    case "update": {
      const [id, olds, news] = args as [string, Record<string, unknown>, Record<string, unknown>];
      const req = new provproto.UpdateRequest();
      req.setId(id);
      req.setUrn(urn);
      req.setOlds(props(olds, "olds", false));
      req.setOldInputs(props(opts.oldInputs ?? olds, "oldInputs", false));
      req.setNews(props(news, "news", false));
      const resp = await call(req);
      return { outs: withoutProvider(resp.getProperties()?.toJavaScript()) };
    }
    case "delete": {
      const [id, olds] = args as [string, Record<string, unknown>];
      const req = new provproto.DeleteRequest();
      req.setId(id);
      req.setUrn(urn);
      req.setProperties(props(olds, "properties", false));
      req.setOldInputs(props(opts.oldInputs ?? olds, "oldInputs", false));
      await call(req);
      return undefined;
    }
    case "read": {
      const [id, state] = args as [string, Record<string, unknown>];
      const req = new provproto.ReadRequest();
      req.setId(id);
      req.setUrn(urn);
      req.setProperties(props(state, "properties", false));
      if (opts.oldInputs) req.setInputs(props(opts.oldInputs, "inputs", false));
      const resp = await call(req);
      return {
        id: resp.getId(),
        props: withoutProvider(resp.getProperties()?.toJavaScript()),
        inputs: withoutProvider(resp.getInputs()?.toJavaScript()),
      };
    }
    default:
      throw new ProviderHarnessError(`unknown provider method ${String(method)}`);
  }
}
