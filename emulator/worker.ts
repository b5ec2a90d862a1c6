let n = 0;
export default { fetch(req: Request) { n++; return new Response("emu " + n + " " + req.url); } };
