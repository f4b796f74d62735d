// Verify sso-proxy's X-Provider-Assertion with the npm package `jose` (https://github.com/panva/jose).
//
// What is trusted: only ES256 signatures made by a key in the proxy's JWKS, for this issuer and this
// app's audience ("<public_url>/routes/<route name>"), not expired (30 s clock tolerance).
//
//   node verify.mjs <jwks_url> <issuer> <audience> <token>
//       prints the claims as JSON and exits 0; prints the reason and exits 1 otherwise.
//   node verify.mjs serve <port> <jwks_url> <issuer> <audience>
//       a tiny upstream app: answers 200 with the verified claims of each request's
//       X-Provider-Assertion (and the decoded X-Provider-Name-Th), else 401 (503 when the
//       proxy's keys cannot be had: see remoteKeys below).
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { createLocalJWKSet, errors, jwtVerify } from 'jose';

const CLOCK_TOLERANCE_SECONDS = 30;
// The JWKS rules shared with sso_proxy.verify (Python) and docs/php/verify.php:
const MAX_AGE_MS = 300_000; // refresh the keys after 5 minutes
const MIN_REFETCH_MS = 30_000; // at most one fetch attempt (failed or not) every 30 s
const MAX_STALE_MS = 24 * 3600_000; // keys that could not be refreshed for 24 h are no longer trusted
const FETCH_TIMEOUT_MS = 5_000;
const MAX_JWKS_BYTES = 256 * 1024;

/** No trusted keys: the JWKS cannot be fetched and none fetched in the last 24 h is cached. Answer 503. */
export class JwksUnavailable extends Error {
  code = 'ERR_JWKS_UNAVAILABLE';
}

async function fetchJwks(url) {
  const response = await fetch(url, {
    redirect: 'manual', // SECURITY: the keys come from the configured URL, not wherever it points
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    headers: { accept: 'application/json, application/jwk-set+json' },
  });
  if (response.status !== 200) {
    throw new Error(`JWKS answered HTTP ${response.status}`);
  }
  const body = await response.arrayBuffer();
  if (body.byteLength > MAX_JWKS_BYTES) {
    throw new Error('JWKS response too large');
  }
  return JSON.parse(Buffer.from(body).toString('utf8'));
}

/**
 * The proxy's keys for jwtVerify, like jose's createRemoteJWKSet but with the rules of the Python
 * and PHP verifiers (jose's own cooldown counts from the last *successful* fetch, so while the JWKS
 * endpoint fails every token with a made-up kid would fetch again):
 * - fetched on first use, refreshed after 5 minutes, and at once when a token names an unknown kid
 *   (a key rotated in at the proxy);
 * - at most one fetch attempt every 30 s, failed or not: otherwise an unknown kid is refused
 *   without fetching (neither made-up kids nor an outage at the proxy can make every request fetch);
 * - the JWKS endpoint failing: the keys fetched last keep working for 24 h after that fetch. After
 *   that they are no longer trusted (a key removed at the proxy, e.g. after a compromise, must not
 *   stay trusted because refreshes fail): JwksUnavailable until a fetch succeeds, as when no keys
 *   were ever fetched.
 */
export function remoteKeys(jwksUrl) {
  const url = new URL(jwksUrl).href;
  let local; // jose's key lookup over the last JWKS fetched
  let fetchedAt; // Date.now() of the last successful fetch
  let attemptedAt; // ... and of the last attempt, successful or not
  let lastError;
  let pending; // the fetch under way: concurrent requests wait for it instead of fetching again

  function refresh() {
    if (!pending) {
      const now = Date.now();
      if (attemptedAt !== undefined && now - attemptedAt < MIN_REFETCH_MS && now >= attemptedAt) {
        return Promise.resolve(); // fetched (or tried to) less than 30 s ago: use what is there
      }
      attemptedAt = now;
      pending = fetchJwks(url)
        .then((json) => {
          local = createLocalJWKSet(json);
          fetchedAt = Date.now();
          lastError = undefined;
        })
        .catch((err) => {
          lastError = err; // keep the previous keys (up to 24 h): a blip must not log everyone out
          console.warn(`jwks fetch from ${url} failed: ${err.message}`);
        })
        .finally(() => {
          pending = undefined;
        });
    }
    return pending;
  }

  function usable() {
    const reason = lastError ? `: ${lastError.message}` : '';
    if (local === undefined) {
      throw new JwksUnavailable(`the proxy's JWKS could not be fetched${reason}`);
    }
    // SECURITY: fail closed. Keys that could not be refreshed for 24 h may have been withdrawn.
    if (Date.now() - fetchedAt >= MAX_STALE_MS) {
      throw new JwksUnavailable(
        `the proxy's JWKS could not be refreshed for 24 h${reason}: the cached keys are no longer trusted`,
      );
    }
    return local;
  }

  return async function getKey(protectedHeader, token) {
    if (fetchedAt === undefined || Date.now() - fetchedAt >= MAX_AGE_MS) {
      await refresh();
    }
    try {
      return await usable()(protectedHeader, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) {
        throw err;
      }
      await refresh(); // a new key after rotation: look again, but only so often
      return usable()(protectedHeader, token);
    }
  };
}

export function makeVerifier(jwksUrl, issuer, audience) {
  const keys = remoteKeys(jwksUrl);
  return async function verify(token) {
    const { payload } = await jwtVerify(token, keys, {
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
      const status = err instanceof JwksUnavailable ? 503 : 401;
      const error = status === 401 ? 'unauthenticated' : 'unavailable';
      send(res, status, { error, detail: `${err.code ?? err.name}: ${err.message}` });
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
