import assert from "node:assert/strict";

/** A promise's rejection as its error's class name and message, for one deepEqual; fails if it resolves. */
export const failure = (p: Promise<unknown>): Promise<[string, string]> =>
  p.then(
    () => assert.fail("must fail"),
    (e: Error) => [e.name, e.message],
  );
