import type { z } from "zod";
import { ApiError } from "./errors";

export const MAX_BODY_BYTES = 16 * 1024;

/** Reads at most 16 KiB (or `maxBytes`): a larger declared or actual body is refused with 413 before parsing. */
export async function readBody(request: Request, maxBytes = MAX_BODY_BYTES): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(all);
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError(413, "PAYLOAD_TOO_LARGE", `Request body exceeds ${maxBytes} bytes`);
}

/** Parses a JSON body and validates it; an empty body is treated as `{}` so optional-only schemas work. */
export async function parseJson<S extends z.ZodType>(
  request: Request,
  schema: S,
  invalidCode = "INVALID_REQUEST",
  malformedCode = "INVALID_JSON",
  maxBytes = MAX_BODY_BYTES,
): Promise<z.infer<S>> {
  const text = await readBody(request, maxBytes);
  let value: unknown = {};
  if (text.trim() !== "") {
    try {
      value = JSON.parse(text);
    } catch {
      throw new ApiError(400, malformedCode, "Request body is not valid JSON");
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ApiError(400, invalidCode, describeIssues(parsed.error));
  return parsed.data;
}

export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join(".") : "body"}: ${issue.message}`)
    .join("; ");
}
