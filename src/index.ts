import { DurableObject } from "cloudflare:workers";
export class StreamCoordinator extends DurableObject {
  async hello() { const r = await fetch("http://emu.local/x"); return r.text(); }
}
export default { async fetch(req: Request, env: any) { return new Response(await env.STREAMS.getByName("a").hello()); } };
