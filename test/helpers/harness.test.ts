import { test } from "node:test";
import type * as P from "@pulumi/pulumi";
import assert from "node:assert/strict";
import { setupMocks, plaintextPart } from "./mocks";
import { callSerializedProvider } from "./provider";

test("mocks record wire inputs and dependencies; a serialized provider runs in Pulumi's own provider host", async () => {
  const rec = await setupMocks({ config: { app: { image: "x" } }, secretKeys: [] });
  const pulumi = await import("@pulumi/pulumi");
  const provider: P.dynamic.ResourceProvider = {
    async create(inputs: any) {
      const { createHash } = require("node:crypto");
      return { id: createHash("sha256").update(inputs.word).digest("hex").slice(0, 8), outs: inputs };
    },
  };
  class Word extends pulumi.dynamic.Resource {
    constructor(name: string, props: Record<string, unknown>, opts?: P.CustomResourceOptions) {
      super(provider, name, props, opts);
    }
  }
  const a = new Word("first", { word: pulumi.secret("hunter22") });
  new Word("second", { word: "plain" }, { dependsOn: [a] });
  await new Promise((r) => setTimeout(r, 1500));
  const first = rec.byName("first");
  const second = rec.byName("second");
  assert.deepEqual(second.dependencies, [first.urn]);
  assert.ok(!JSON.stringify(plaintextPart(first.wireInputs)).includes("hunter22"));
  assert.ok(JSON.stringify(first.wireInputs).includes("hunter22"), "the wire keeps the secret, wrapped");
  const out = await callSerializedProvider(first.inputs.__provider, "create", [{ word: "abc" }]);
  assert.equal(out.id, "ba7816bf");
  await assert.rejects(
    callSerializedProvider("module.exports = {}", "create", [{}]),
    /handler is not a function/,
  );
});
