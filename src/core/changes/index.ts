// The change stream engine (issue 20): a logical replication slot per release, aligned with the
// pre-deploy dump, whose committed writes a rollback replays into the restored database.
export * from "./slot";
export * from "./decode";
export * from "./replay";
export * from "./ready";
