export * from "./check";
export * from "./spec";
