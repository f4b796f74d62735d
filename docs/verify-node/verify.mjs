// Verify sso-proxy's X-Provider-Assertion with the npm package `jose` (https://github.com/panva/jose).
//
// What is trusted: only ES256 signatures made by a key in the proxy's JWKS, for this issuer and this
// app's audience ("<public_url>/routes/<route name>"), not expired (30 s clock tolerance).
//
//   node verify.mjs <jwks_url> <issuer> <audience> <token>
//       prints the claims as JSON and exits 0; prints the reason and exits 1 otherwise.
//   node verify.mjs serve <port> <jwks_url> <issuer> <audience>
//       a tiny upstream app: answers 200 with the verified claims of each request's
//       X-Provider-Assertion (and the decoded X-Provider-Name-Th), else 401.
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const CLOCK_TOLERANCE_SECONDS = 30;

export function makeVerifier(jwksUrl, issuer, audience) {
  // Fetched on first use, cached, and refetched (at most every 30 s) when a token names an unknown kid.
  const jwks = createRemoteJWKSet(new URL(jwksUrl));
  return async function verify(token) {
    const { payload } = await jwtVerify(token, jwks, {
      algorithms: ['ES256'], // SECURITY: never 'none', never HS256 keyed with the public key
      issuer,
      audience,
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['iss', 'aud', 'sub', 'iat', 'exp'],
    });
    return payload;
  };
}

function send(res, status, body) {
  const data = Buffer.from(JSON.stringify(body), 'utf8');
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': data.length,
    'Cache-Control': 'no-store',
  });
  res.end(data);
}

function serve(port, verify) {
  const server = createServer(async (req, res) => {
    const token = req.headers['x-provider-assertion'];
    if (typeof token !== 'string' || token === '') {
      send(res, 401, { error: 'unauthenticated', detail: 'missing assertion' });
      return;
    }
    try {
      const claims = await verify(token.trim());
      const nameHeader = req.headers['x-provider-name-th'];
      send(res, 200, {
        claims,
        headers: {
          'x-forwarded-user': req.headers['x-forwarded-user'] ?? null,
          'x-provider-hcode': req.headers['x-provider-hcode'] ?? null,
          'x-provider-name-th': typeof nameHeader === 'string' ? decodeURIComponent(nameHeader) : null,
        },
        path: req.url,
      });
    } catch (err) {
      send(res, 401, { error: 'unauthenticated', detail: `${err.code ?? err.name}: ${err.message}` });
    }
  });
  server.listen(port, '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function main(argv) {
  if (argv[0] === 'serve' && argv.length === 5) {
    serve(Number(argv[1]), makeVerifier(argv[2], argv[3], argv[4]));
    return;
  }
  if (argv.length !== 4) {
    console.error('usage: node verify.mjs <jwks_url> <issuer> <audience> <token>');
    console.error('       node verify.mjs serve <port> <jwks_url> <issuer> <audience>');
    process.exit(2);
  }
  const [jwksUrl, issuer, audience, token] = argv;
  try {
    const claims = await makeVerifier(jwksUrl, issuer, audience)(token);
    process.stdout.write(`${JSON.stringify(claims)}\n`, () => process.exit(0));
  } catch (err) {
    console.error(`invalid assertion: ${err.code ?? err.name}: ${err.message}`);
    process.exit(1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2));
}
