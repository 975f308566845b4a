import * as pulumi from "@pulumi/pulumi";

/** One resource the program registered, as the engine would have received it. */
export interface RecordedResource {
  type: string;
  name: string;
  urn: string;
  parent: string;
  /** Deserialized inputs with secret wrappers removed, as the provider would see them. */
  inputs: Record<string, any>;
  /** Inputs as serialized on the wire: secrets still wrapped, so tests can check they stay secret. */
  wireInputs: Record<string, any>;
  /** URNs this resource depends on (explicit `dependsOn` plus input dependencies). */
  dependencies: string[];
  deleteBeforeReplace: boolean;
  additionalSecretOutputs: string[];
  custom: boolean;
}

/** The signature Pulumi puts on a serialized secret value. */
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const SIG_KEY = "4dabf18193072939515e22adb298388d";

/** Returns the wire value with every secret-wrapped node removed: what would be stored in plaintext. */
export function plaintextPart(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plaintextPart);
  if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (o[SIG_KEY] === SECRET_SIG) return "[secret]";
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, plaintextPart(v)]));
  }
  return value;
}

/** Returns the value with every secret wrapper replaced by the value it wraps. */
export function unwrapSecrets(value: unknown): any {
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (o[SIG_KEY] === SECRET_SIG) return unwrapSecrets(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, unwrapSecrets(v)]));
  }
  return value;
}

/**
 * Installs Pulumi mocks for one test file and records every registered resource with its wire inputs
 * and dependencies (the stock mocks drop both). `state` lets a test give outputs per resource type.
 */
export async function setupMocks(opts: {
  project?: string;
  stack?: string;
  preview?: boolean;
  config?: Record<string, unknown>;
  secretKeys?: string[];
  state?: (r: { type: string; name: string; inputs: Record<string, any> }) => Record<string, any>;
}): Promise<{
  resources: RecordedResource[];
  byName(name: string): RecordedResource;
  registered(...names: string[]): Promise<void>;
}> {
  const project = opts.project ?? "safe-deploy";
  const stack = opts.stack ?? "staging";
  const resources: RecordedResource[] = [];
  // Names the mocks' newResource has seen (with inputs), and tests waiting for some (issue 22: the
  // tests slept a fixed 1-1.5 s and hoped the registrations were done).
  const seen = new Set<string>();
  let waiters: Array<{ names: string[]; resolve: () => void }> = [];
  const wake = () => {
    waiters = waiters.filter((w) => {
      if (!w.names.every((n) => seen.has(n))) return true;
      w.resolve();
      return false;
    });
  };
  const { MockMonitor } = require("@pulumi/pulumi/runtime/mocks");
  const original = MockMonitor.prototype.registerResource;
  MockMonitor.prototype.registerResource = function (req: any, callback: any) {
    const type = req.getType();
    const name = req.getName();
    resources.push({
      type,
      name,
      urn: this.newUrn(req.getParent(), type, name),
      parent: req.getParent(),
      inputs: {},
      wireInputs: req.getObject()?.toJavaScript() ?? {},
      dependencies: req.getDependenciesList(),
      deleteBeforeReplace: req.getDeletebeforereplace(),
      additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      custom: req.getCustom(),
    });
    return original.call(this, req, callback);
  };
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        const rec = [...resources].reverse().find((r) => r.type === args.type && r.name === args.name);
        if (rec) rec.inputs = unwrapSecrets(args.inputs);
        seen.add(args.name);
        setImmediate(wake);
        const extra = opts.state?.({ type: args.type, name: args.name, inputs: args.inputs }) ?? {};
        return { id: `${args.name}-id`, state: { ...args.inputs, ...extra } };
      },
      call: (args) => {
        throw new Error(`unexpected provider function call ${args.token}: add it to the mocks`);
      },
    },
    project,
    stack,
    opts.preview ?? false,
  );
  const config = Object.fromEntries(
    Object.entries(opts.config ?? {}).map(([k, v]) => [
      `${project}:${k}`,
      typeof v === "string" ? v : JSON.stringify(v),
    ]),
  );
  pulumi.runtime.setAllConfig(
    config,
    (opts.secretKeys ?? []).map((k) => `${project}:${k}`),
  );
  return {
    resources,
    byName(name: string) {
      const r = resources.find((x) => x.name === name);
      if (!r) throw new Error(`no resource named ${name}; have: ${resources.map((x) => x.name).join(", ")}`);
      return r;
    },
    /** Resolves once every named resource has been registered (its inputs resolved and recorded). */
    registered(...names: string[]) {
      return new Promise<void>((resolve) => {
        waiters.push({ names, resolve });
        wake();
      });
    },
  };
}
