/**
 * HEAD is GET without the body (RFC 9110 §9.3.2). itty-router matches HEAD only to HEAD routes, so a
 * HEAD request is answered by routing it as GET and keeping the status and headers (with the length
 * the body would have had), without the body.
 */
export async function answerHead(request: Request, handle: (get: Request) => Promise<Response>): Promise<Response> {
  const headers = new Headers(request.headers);
  headers.delete("upgrade"); // a HEAD can never open a WebSocket
  const response = await handle(new Request(request.url, { method: "GET", headers }));
  const body = await response.arrayBuffer();
  const answer = new Headers(response.headers);
  answer.set("content-length", String(body.byteLength));
  return new Response(null, { status: response.status, statusText: response.statusText, headers: answer });
}
