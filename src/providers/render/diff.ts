/** The inputs that make Render deploy something. */
export const DEPLOY_KEYS = ["serviceId", "commit", "imageUrl"] as const;
const OTHER_KEYS = ["apiUrl", "apiKey", "timeoutSeconds", "pollSeconds"] as const;

type Values = Record<string, unknown>;
const same = (a: unknown, b: unknown) => (a ?? "") === (b ?? "");

/** Pure diff: a new service replaces; a new commit or image updates (a deploy); other keys update quietly. */
export function diffRenderDeploy(olds: Values, news: Values) {
  const changed = [...DEPLOY_KEYS, ...OTHER_KEYS].filter((k) => !same(olds[k], news[k]));
  return {
    changes: changed.length > 0,
    replaces: changed.includes("serviceId") ? ["serviceId"] : [],
    deleteBeforeReplace: false,
  };
}

/** Whether an update deploys anything (a new commit or image), or only records new settings. */
export function deploys(olds: Values, news: Values): boolean {
  return DEPLOY_KEYS.some((k) => !same(olds[k], news[k]));
}

/**
 * The deploy to roll back to: re-applying the release that was live before this one (its commit is the
 * recorded `previousCommit`) goes back to that deploy through Render's rollback, without a rebuild.
 */
export function rollbackTarget(olds: Values, news: Values): string | undefined {
  const prevId = olds.previousDeployId;
  if (typeof prevId !== "string" || !prevId) return undefined;
  if (news.imageUrl) return undefined;
  return news.commit && news.commit === olds.previousCommit ? prevId : undefined;
}
