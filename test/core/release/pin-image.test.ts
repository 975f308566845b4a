// pinReleaseImage's edges (issue 22): a rollback that re-applies a release must pin exactly a tag to the
// id the release ran, and leave every other config alone, byte for byte.
import assert from "node:assert/strict";
import { test } from "node:test";
import { pinReleaseImage } from "../../../src/core/release/pin-image";

const HEX = "0123456789abcdef".repeat(4);
const ID = `sha256:${HEX}`;
const withImage = (image: string) => `config:\n  safe-deploy:app:\n    image: ${image}\n    port: 3000\n`;

test("a tag is pinned to the id, everything else kept", () => {
  assert.equal(pinReleaseImage(withImage("web:staging"), ID), withImage(ID));
  assert.equal(pinReleaseImage(withImage("registry.example.com/team/web"), ID), withImage(ID));
});

test("only a full sha256 image id pins: anything longer, shorter, prefixed or upper-case is ignored", () => {
  const tagged = withImage("web:staging");
  for (const id of [
    "",
    `sha256:${HEX.slice(1)}`,
    `sha256:${HEX}0`,
    `xsha256:${HEX}`,
    `sha256:${HEX.toUpperCase()}`,
    `sha256:${HEX.slice(1)}g`,
    HEX,
  ]) {
    assert.equal(pinReleaseImage(tagged, id), tagged, id);
  }
});

test("an image that already names content stays: an id, or any name@digest", () => {
  for (const image of [ID, `web@${ID}`, `registry.example.com:5000/web:1.2@${ID}`]) {
    assert.equal(pinReleaseImage(withImage(image), `sha256:${"f".repeat(64)}`), withImage(image), image);
  }
});

test("an image that only looks like content is a tag, and is pinned", () => {
  // Not an id or a digest: a tag whose text happens to contain one, or a short/odd digest.
  for (const image of [
    `web:sha256-${HEX}`,
    `web@sha256:${HEX.slice(2)}`,
    `web@sha256:${HEX}x`,
    `"sha256:${HEX}x"`,
    `"x/sha256:${HEX}"`,
    `web@sha256:${HEX.slice(1)}g`,
  ]) {
    // The yaml library keeps a quoted scalar quoted.
    const expected = image.startsWith('"') ? withImage(`"${ID}"`) : withImage(ID);
    assert.equal(pinReleaseImage(withImage(image), ID), expected, image);
  }
});

test("a build, a missing image or a non-string image is left alone", () => {
  const built = "config:\n  safe-deploy:app:\n    image: web:x\n    build:\n      context: app\n";
  assert.equal(pinReleaseImage(built, ID), built);
  const noImage = "config:\n  safe-deploy:app:\n    port: 3000\n";
  assert.equal(pinReleaseImage(noImage, ID), noImage);
  const numeric = "config:\n  safe-deploy:app:\n    image: 42\n";
  assert.equal(pinReleaseImage(numeric, ID), numeric);
  const other = "config:\n  safe-deploy:db:\n    image: postgres:15\n";
  assert.equal(pinReleaseImage(other, ID), other);
});
