import { before, test } from "node:test";
import assert from "node:assert/strict";
import type * as P from "@pulumi/pulumi";
import { setupMocks } from "./mocks";
import {
  callSerializedProvider,
  providerHostCount,
  ProviderHarnessError,
  secret,
  SerializedProviderError,
  UNKNOWN,
} from "./provider";

let text: string;

// One provider whose create does what each test asks, serialized exactly as a program would.
before(async () => {
  const rec = await setupMocks({});
  const pulumi = await import("@pulumi/pulumi");
  const provider: P.dynamic.ResourceProvider = {
    async configure(req: P.dynamic.ConfigureRequest) {
      process.env.HARNESS_TOKEN = req.config.get("token") ?? "none";
    },
    async check(_olds: any, news: any) {
      return { inputs: { ...news, checked: true }, failures: [] };
    },
    async diff(_id: string, olds: any, news: any) {
      return {
        changes: olds.word !== news.word,
        replaces: news.word === "04da6b54-80e4-46f7-96ec-b56ff0331ba9" ? ["word"] : [],
      };
    },
    async create(inputs: any) {
      switch (inputs.mode) {
        case "throw":
          throw new Error(`cannot make ${inputs.word}: disk full; free space and run again`);
        case "partial":
          throw Object.assign(new Error("made it, but it never became ready"), {
            id: "half-1",
            properties: { word: inputs.word, stage: "started" },
            reasons: ["port 8080 never opened"],
          });
        case "nested-undefined":
          return { id: "n", outs: { list: [1, { deep: undefined }] } };
        case "date":
          return { id: "d", outs: { at: new Date(0) } };
        default:
          return { id: `w-${inputs.word}`, outs: { ...inputs, token: process.env.HARNESS_TOKEN } };
      }
    },
    async update(_id: string, _olds: any, news: any) {
      return { outs: { ...news, updated: true } };
    },
    async read(id: string, props: any) {
      return { id, props: { ...props, read: true } };
    },
  };
  class Word extends pulumi.dynamic.Resource {
    constructor(name: string, props: Record<string, unknown>) {
      super(provider, name, props, {});
    }
  }
  new Word("w", { word: "x" });
  await new Promise((r) => setTimeout(r, 1500));
  text = rec.byName("w").inputs.__provider;
});

const config = { "safe-deploy:token": secret("tok-1") };

test("every method round-trips through the real host; one host process serves them all", async () => {
  const checked = await callSerializedProvider(text, "check", [{}, { word: "a" }], { config });
  assert.deepEqual(checked, { inputs: { word: "a", checked: true }, failures: [] });
  const created = await callSerializedProvider(text, "create", [{ word: "a" }], { config });
  // The host unwrapped the secret config for configure; outs come back without __provider.
  assert.deepEqual(created, { id: "w-a", outs: { word: "a", token: "tok-1" } });
  const d = await callSerializedProvider(text, "diff", ["w-a", created.outs, { word: "b" }], { config });
  assert.deepEqual(d, { changes: true, replaces: [], deleteBeforeReplace: false });
  const u = await callSerializedProvider(text, "update", ["w-a", created.outs, { word: "b" }], { config });
  assert.deepEqual(u.outs, { word: "b", updated: true });
  const r = await callSerializedProvider(text, "read", ["w-a", u.outs], { config });
  assert.deepEqual(r.props, { word: "b", updated: true, read: true });
  assert.equal(await callSerializedProvider(text, "delete", ["w-a", u.outs], { config }), undefined);
  assert.equal(providerHostCount(), 1);
});

test("secrets reach the provider as plain values (the host's Configure declines secrets)", async () => {
  const created = await callSerializedProvider(text, "create", [{ word: secret("s3cret") }], { config });
  assert.deepEqual(created.outs.word, "s3cret");
});

test("preview: unknowns reach check and diff as the engine's UUID; the engine never sends them to create", async () => {
  const checked = await callSerializedProvider(text, "check", [{}, { word: UNKNOWN }], { config });
  assert.equal(checked.inputs.word, UNKNOWN);
  const d = await callSerializedProvider(text, "diff", ["w-a", { word: "a" }, { word: UNKNOWN }], { config });
  assert.deepEqual(d.replaces, ["word"]);
  await assert.rejects(
    callSerializedProvider(text, "create", [{ word: UNKNOWN }], { config }),
    (e: Error) => e instanceof ProviderHarnessError && /only to check and diff/.test(e.message),
  );
});

test("a thrown error comes back with the provider's own message", async () => {
  await assert.rejects(
    callSerializedProvider(text, "create", [{ word: "a", mode: "throw" }], { config }),
    (e: SerializedProviderError) => {
      assert.ok(e instanceof SerializedProviderError);
      assert.equal(e.message, "cannot make a: disk full; free space and run again");
      assert.equal(e.id, undefined);
      return true;
    },
  );
  await assert.rejects(
    callSerializedProvider("module.exports = {}", "create", [{}], { config }),
    /handler is not a function/,
  );
});

test("a partial failure comes back with its id, properties and reasons", async () => {
  await assert.rejects(
    callSerializedProvider(text, "create", [{ word: "a", mode: "partial" }], { config }),
    (e: SerializedProviderError) => {
      assert.equal(e.message, "made it, but it never became ready");
      assert.equal(e.id, "half-1");
      assert.deepEqual(e.properties, { word: "a", stage: "started" });
      assert.deepEqual(e.reasons, ["port 8080 never opened"]);
      return true;
    },
  );
});

test("undefined or a non-plain value anywhere in the outs fails the call, naming its path", async () => {
  await assert.rejects(
    callSerializedProvider(text, "create", [{ mode: "nested-undefined" }], { config }),
    (e: Error) =>
      e instanceof ProviderHarnessError && /create: outs\.list\[1\]\.deep is undefined/.test(e.message),
  );
  await assert.rejects(callSerializedProvider(text, "create", [{ mode: "date" }], { config }), (e: Error) =>
    /outs\.at is a Date/.test(e.message),
  );
  // The test's own values are checked too: the engine never sends undefined.
  await assert.rejects(
    callSerializedProvider(text, "create", [{ word: "a", extra: undefined }], { config }),
    (e: Error) => e instanceof ProviderHarnessError && /properties\.extra is undefined/.test(e.message),
  );
});
