/** The outcome of one probe attempt. */
export interface ProbeResult {
  ok: boolean;
  /** HTTP status, when one arrived. */
  status?: number;
  /** Why it failed (connection refused, timeout, body assertion...), or a short note when ok. */
  detail?: string;
  /** No later attempt can pass (e.g. Swarm rolled the update back): the gate fails now. */
  final?: boolean;
}

/** One attempt as recorded by the gate, for the summary. */
export interface Attempt extends ProbeResult {
  /** ISO time the attempt started. */
  at: string;
  /** Duration of the attempt, in ms. */
  ms: number;
}

/** A probe runs one check with the given timeout and never throws. */
export type Probe = (timeoutMs: number) => Promise<ProbeResult>;
