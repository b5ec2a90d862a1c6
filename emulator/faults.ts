// Fault injection: the next `count` calls matching method + path pattern get a fault.

import { ApiError, ErrorCode, codeForStatus, errorBody, json } from "./envelope.ts";

export interface FaultSpec {
  method?: string;
  /** `*` matches one path segment, `**` any rest (zero or more segments). */
  path: string;
  status?: number;
  body?: unknown;
  delayMs?: number;
  /** Wait this long after the operation, before answering: the effect happened, the answer is late. */
  answerDelayMs?: number;
  drop?: boolean;
  count?: number;
  retryAfter?: number;
  /** Perform the operation first, then answer with the fault (a lost response). */
  afterEffect?: boolean;
}

export interface Fault extends Required<Pick<FaultSpec, "path" | "count">> {
  id: string;
  method: string | null;
  status: number | null;
  body: unknown;
  delayMs: number;
  answerDelayMs: number;
  drop: boolean;
  retryAfter: number | null;
  afterEffect: boolean;
  /** How many calls this fault has hit so far. */
  hits: number;
}

/** Thrown by StreamEmulator.fetch when a fault says to drop the connection. */
export class DroppedConnectionError extends Error {
  constructor(message = "Connection dropped by emulator fault") {
    super(message);
    this.name = "DroppedConnectionError";
  }
}

export class FaultTable {
  private faults: Fault[] = [];
  private nextId = 1;

  add(raw: Record<string, unknown>): Fault {
    const path = raw.path;
    if (typeof path !== "string" || !path.startsWith("/")) bad("path must be a string starting with /");
    const method = optional(raw.method, "string", "method");
    const status = optional(raw.status, "number", "status");
    if (status !== undefined && (!Number.isInteger(status) || status < 100 || status > 599)) bad("status must be an HTTP status code");
    const delayMs = optional(raw.delayMs, "number", "delayMs");
    if (delayMs !== undefined && delayMs < 0) bad("delayMs must be >= 0");
    const answerDelayMs = optional(raw.answerDelayMs, "number", "answerDelayMs");
    if (answerDelayMs !== undefined && answerDelayMs < 0) bad("answerDelayMs must be >= 0");
    const count = optional(raw.count, "number", "count");
    if (count !== undefined && (!Number.isInteger(count) || count < 1)) bad("count must be a positive integer");
    const retryAfter = optional(raw.retryAfter, "number", "retryAfter");
    const drop = optional(raw.drop, "boolean", "drop");
    const afterEffect = optional(raw.afterEffect, "boolean", "afterEffect");
    if (status === undefined && !drop && delayMs === undefined && answerDelayMs === undefined) bad("a fault needs status, drop, delayMs or answerDelayMs");
    const fault: Fault = {
      id: `fault-${this.nextId++}`,
      method: method ? method.toUpperCase() : null,
      path,
      status: status ?? null,
      body: raw.body ?? null,
      delayMs: delayMs ?? 0,
      answerDelayMs: answerDelayMs ?? 0,
      drop: drop ?? false,
      count: count ?? 1,
      retryAfter: retryAfter ?? null,
      afterEffect: afterEffect ?? false,
      hits: 0,
    };
    this.faults.push(fault);
    return fault;
  }

  /** Consumes one use of the first fault matching this call, if any. */
  take(method: string, path: string): Fault | null {
    const index = this.faults.findIndex((f) => (f.method === null || f.method === method) && matchPath(f.path, path));
    if (index < 0) return null;
    const fault = this.faults[index]!;
    fault.hits++;
    fault.count--;
    if (fault.count <= 0) this.faults.splice(index, 1);
    return fault;
  }

  list(): Fault[] {
    return this.faults.map((f) => ({ ...f }));
  }

  clear(): void {
    this.faults = [];
  }
}

/**
 * One API call under the fault it drew (or none): wait `delayMs`, perform the operation unless a status or
 * a drop replaces it (`afterEffect`: perform it first, the answer is lost), wait `answerDelayMs`, then
 * answer. `record` logs the status answered (0: the connection dropped).
 */
export async function answerUnderFault(fault: Fault | null, perform: () => Promise<Response>, record: (status: number) => void): Promise<Response> {
  if (fault && fault.delayMs > 0) await sleep(fault.delayMs);
  const replaces = fault !== null && (fault.status !== null || fault.drop);
  let response: Response | null = null;
  // A faulted status/drop skips the operation, unless afterEffect asks to perform it first.
  if (!replaces || fault.afterEffect) response = await perform();
  if (fault && fault.answerDelayMs > 0) await sleep(fault.answerDelayMs);
  if (replaces) {
    if (fault.drop) {
      record(0);
      throw new DroppedConnectionError();
    }
    response = faultResponse(fault);
  }
  record(response!.status);
  return response!;
}

function faultResponse(fault: Fault): Response {
  const status = fault.status ?? 500;
  const headers: Record<string, string> = {};
  if (fault.retryAfter !== null) headers["retry-after"] = String(fault.retryAfter);
  const body = fault.body ?? errorBody([{ code: codeForStatus(status), message: `Injected fault ${fault.id} (HTTP ${status})` }]);
  return json(body, status, headers);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Segment-wise glob: `*` = one segment, `**` = the rest (zero or more segments). */
export function matchPath(pattern: string, path: string): boolean {
  const p = split(pattern);
  const s = split(path);
  for (let i = 0; i < p.length; i++) {
    const seg = p[i];
    if (seg === "**") return true;
    if (i >= s.length) return false;
    if (seg !== "*" && seg !== s[i]) return false;
  }
  return p.length === s.length;
}

function split(path: string): string[] {
  return path.split("/").filter((x) => x !== "");
}

function bad(message: string): never {
  throw new ApiError(400, ErrorCode.Validation, message);
}

function optional<T extends "string" | "number" | "boolean">(
  value: unknown,
  type: T,
  name: string,
): (T extends "string" ? string : T extends "number" ? number : boolean) | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== type) bad(`${name} must be a ${type}`);
  return value as never;
}
