export * from "./container";
export * from "./gate";
export * from "./http";
export * from "./postgres";
export * from "./run";
export * from "./schedule";
export * from "./tcp";
export * from "./types";
