// Runs a Pulumi program the way the Node language host does: `PULUMI_NODEJS_TYPESCRIPT` from Pulumi.yaml's
// `runtime.options.typescript` (default true), `main` as the program, and the SDK's own `cmd/run` `run()`,
// which registers ts-node itself when TypeScript is on. Plain JS on purpose: no test loader (tsx) may be
// registered here, or the program would be compiled by it instead of by what `pulumi up` uses.
// Input: JSON in LANGHOST_INPUT; result: JSON written to input.out when the process exits.
const fs = require("node:fs");
const path = require("node:path");

const input = JSON.parse(process.env.LANGHOST_INPUT);
const dir = input.projectDir;
const fromProject = (m) => require(require.resolve(m, { paths: [dir] }));
const project = require("yaml").parse(fs.readFileSync(path.join(dir, "Pulumi.yaml"), "utf8"));
const options = (typeof project.runtime === "object" && project.runtime.options) || {};
const typescript = input.typescript ?? options.typescript ?? true;
if (typescript) process.env.PULUMI_NODEJS_TYPESCRIPT = "true";
else delete process.env.PULUMI_NODEJS_TYPESCRIPT;
const main = input.main ?? project.main ?? ".";

const resources = [];
const packagesOf = () =>
  Object.keys(require.cache)
    .map((f) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f)?.[1])
    .filter(Boolean);
// Loaded by this helper, not by the program (yaml).
const before = new Set(packagesOf());
before.delete("@pulumi/pulumi");
const started = process.hrtime.bigint();
let lastResourceMs;
// The program's first resource comes once `main` and every module it imports at the top are compiled.
let firstProgramResourceMs;

const pulumi = fromProject("@pulumi/pulumi");
pulumi.runtime
  .setMocks(
    {
      newResource: (a) => {
        lastResourceMs = Number(process.hrtime.bigint() - started) / 1e6;
        if (a.type !== "pulumi:pulumi:Stack") firstProgramResourceMs ??= lastResourceMs;
        resources.push({ type: a.type, name: a.name });
        return { id: `${a.name}-id`, state: { ...a.inputs, ...(input.state?.[a.type] ?? {}) } };
      },
      call: (a) => {
        throw new Error(`unexpected provider function call ${a.token}`);
      },
    },
    project.name,
    input.stack,
    false,
  )
  .then(() => {
    // The engine's shutdown handshake, which the SDK's mock monitor lacks (it would log a TypeError).
    const { MockMonitor } = fromProject("@pulumi/pulumi/runtime/mocks");
    MockMonitor.prototype.signalAndWaitForShutdown ??= (_req, cb) => cb(null, {});
    pulumi.runtime.setAllConfig(input.config, input.secretKeys);
    process.on("exit", () => {
      const loaded = packagesOf().filter((m) => !before.has(m));
      fs.writeFileSync(
        input.out,
        JSON.stringify({
          resources,
          typescript,
          main,
          lastResourceMs,
          firstProgramResourceMs,
          modules: [...new Set(loaded)],
        }),
      );
    });
    // The language host's command line: `node <sdk>/cmd/run --monitor ... --pwd <dir> <main>`. The mock
    // monitor set above answers instead of the engine.
    process.argv = [
      process.argv[0],
      "cmd/run",
      `--monitor=mock`,
      `--stack=${input.stack}`,
      `--pwd=${dir}`,
      main,
    ];
    fromProject("@pulumi/pulumi/cmd/run");
  });
