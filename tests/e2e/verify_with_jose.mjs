// Verifies tokens with Node's `jose` package and nothing but a JWK Set, as an outside
// service would. Reads {"jwks": {...}, "tokens": [...]} on stdin; prints one result per
// token: {"ok": true, "kid": ..., "sub": ...} or {"ok": false, "error": <jose's code>}.
import { createLocalJWKSet, jwtVerify } from "jose";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { jwks, tokens } = JSON.parse(input);
const keys = createLocalJWKSet(jwks);
const results = [];
for (const token of tokens) {
  try {
    const { payload, protectedHeader } = await jwtVerify(token, keys, {
      algorithms: ["RS256", "ES256", "EdDSA"],
    });
    results.push({ ok: true, kid: protectedHeader.kid, sub: payload.sub });
  } catch (error) {
    results.push({ ok: false, error: error.code ?? String(error) });
  }
}
console.log(JSON.stringify(results));
