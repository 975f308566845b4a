import { parseDocument } from "yaml";

/** An image reference that already names content: an id (`sha256:...`) or a digest (`name@sha256:...`). */
const BY_CONTENT = /^sha256:[0-9a-f]{64}$|@sha256:[0-9a-f]{64}$/;

/**
 * A release's `Pulumi.<stack>.yaml` with `app.image` replaced by the image id the release ran, for
 * re-applying it: a tag may point at a newer build now (issue 14: a rebuild under the same tag), and
 * the program deploys what a tag points at when it runs. Unchanged when the release used `app.build`
 * (its tag names its commit), already named content, or recorded no id. Comments and layout are kept.
 */
export function pinReleaseImage(configFile: string, imageId: string | undefined): string {
  if (!imageId || !/^sha256:[0-9a-f]{64}$/.test(imageId)) return configFile;
  const doc = parseDocument(configFile);
  const path = ["config", "safe-deploy:app", "image"];
  const image = doc.getIn(path);
  if (
    typeof image !== "string" ||
    BY_CONTENT.test(image) ||
    doc.hasIn(["config", "safe-deploy:app", "build"])
  )
    return configFile;
  doc.setIn(path, imageId);
  return doc.toString();
}
