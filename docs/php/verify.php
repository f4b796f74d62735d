<?php
/**
 * Verify sso-proxy's X-Provider-Assertion in PHP. One file, no Composer package: only PHP's
 * openssl and json extensions (both in Debian's php-cli / php-fpm). Written for PHP 7.4 or
 * later; CI runs it on Debian's PHP (8.2 on bookworm).
 *
 * What is trusted: only an ES256 signature by a key of the proxy's JWKS (found by the token's
 * `kid`), for this issuer and this app's audience ("<public_url>/routes/<route name>"), not
 * expired (30 s leeway for clocks), issued at most 300 s before it expires.
 *
 * In an app (see docs/php-verify.md):
 *
 *     require_once __DIR__ . '/verify.php';
 *     $claims = sso_claims_from_request(
 *         'https://sso.hospital.example/.well-known/jwks.json',
 *         'https://sso.hospital.example',                       // iss = public_url
 *         'https://sso.hospital.example/routes/payslip',        // aud = this app's route
 *         __DIR__ . '/../storage/sso-proxy-jwks.json'           // cache: writable by PHP only
 *     );                                                         // null: answer 401
 *
 * On the command line (what CI runs):
 *
 *     php verify.php <jwks_url_or_file> <issuer> <audience> <token>
 *         prints the claims as JSON and exits 0, or "invalid assertion: <reason>" on stderr and 1
 *         (2 when the JWKS cannot be read at all).
 */

declare(strict_types=1);

const SSO_ALGORITHM = 'ES256';
const SSO_LEEWAY = 30;                 // seconds of clock difference tolerated on exp / iat / nbf
const SSO_MAX_LIFETIME = 300;          // sso-proxy issues assertions for at most 300 s
const SSO_JWKS_MAX_AGE = 300;          // refetch the cached JWKS after this many seconds
const SSO_JWKS_MIN_REFETCH = 30;       // at most one fetch attempt (failed or not) this often
const SSO_JWKS_MAX_STALE = 86400;      // cached keys not refreshed for 24 h are no longer trusted
const SSO_MAX_JWKS_BYTES = 262144;
const SSO_REQUIRED_CLAIMS = ['iss', 'aud', 'sub', 'iat', 'exp'];
// DER SubjectPublicKeyInfo prefix for an uncompressed P-256 point (id-ecPublicKey, prime256v1)
const SSO_P256_SPKI_PREFIX = '3059301306072a8648ce3d020106082a8648ce3d030107034200';

/** The assertion is missing, malformed, forged, expired or not meant for this app: answer 401. */
class SsoAssertionInvalid extends RuntimeException
{
}

/** The token's kid is not in the JWKS (yet: a new key; or any more: a retired one). */
class SsoUnknownKey extends SsoAssertionInvalid
{
}

/**
 * No trusted keys: the JWKS cannot be fetched and no copy fetched in the last 24 h is cached.
 * Not the client's fault: answer 503.
 */
class SsoJwksUnavailable extends RuntimeException
{
}

/** Strict base64url without padding: one token has exactly one spelling. */
function sso_b64url_decode(string $text): string
{
    if (!preg_match('/^[A-Za-z0-9_-]*$/', $text) || strlen($text) % 4 === 1) {
        throw new SsoAssertionInvalid('malformed: not base64url');
    }
    $raw = base64_decode(strtr($text, '-_', '+/'), true);
    if ($raw === false || rtrim(strtr(base64_encode($raw), '+/', '-_'), '=') !== $text) {
        throw new SsoAssertionInvalid('malformed: not canonical base64url');
    }
    return $raw;
}

/** A JSON object (never a list or a scalar) as an array. */
function sso_json_object(string $json, string $what): array
{
    try {
        $value = json_decode($json, true, 64, JSON_THROW_ON_ERROR);
    } catch (JsonException $e) {
        throw new SsoAssertionInvalid("malformed: $what is not JSON");
    }
    if (!is_array($value) || ($value !== [] && array_keys($value) === range(0, count($value) - 1))) {
        throw new SsoAssertionInvalid("malformed: $what is not a JSON object");
    }
    return $value;
}

/** PEM of a JWK's P-256 public key (x, y); refuses anything else, private keys included. */
function sso_jwk_to_pem(array $jwk): string
{
    if (($jwk['kty'] ?? null) !== 'EC' || ($jwk['crv'] ?? null) !== 'P-256' || isset($jwk['d'])) {
        throw new SsoAssertionInvalid('JWKS: not an EC P-256 public key');
    }
    $x = sso_b64url_decode(is_string($jwk['x'] ?? null) ? $jwk['x'] : '');
    $y = sso_b64url_decode(is_string($jwk['y'] ?? null) ? $jwk['y'] : '');
    if (strlen($x) !== 32 || strlen($y) !== 32) {
        throw new SsoAssertionInvalid('JWKS: P-256 coordinates must be 32 bytes');
    }
    $der = hex2bin(SSO_P256_SPKI_PREFIX) . "\x04" . $x . $y;
    $pem = "-----BEGIN PUBLIC KEY-----\n" . chunk_split(base64_encode($der), 64, "\n") . "-----END PUBLIC KEY-----\n";
    if (openssl_pkey_get_public($pem) === false) {  // OpenSSL refuses a point not on the curve
        throw new SsoAssertionInvalid('JWKS: not a point on P-256');
    }
    return $pem;
}

/** kid => PEM for every usable key of a JWKS: EC P-256 signing keys; others are skipped. */
function sso_jwks_keys(array $jwks): array
{
    $keys = [];
    foreach (is_array($jwks['keys'] ?? null) ? $jwks['keys'] : [] as $jwk) {
        if (!is_array($jwk) || !is_string($jwk['kid'] ?? null)) {
            continue;
        }
        if (($jwk['use'] ?? 'sig') !== 'sig' || ($jwk['alg'] ?? SSO_ALGORITHM) !== SSO_ALGORITHM) {
            continue;
        }
        try {
            $keys[$jwk['kid']] = sso_jwk_to_pem($jwk);
        } catch (SsoAssertionInvalid $e) {
            continue;
        }
    }
    return $keys;
}

/** A JWS ES256 signature (raw r || s, 32 bytes each) as the DER that openssl_verify wants. */
function sso_der_signature(string $raw): string
{
    if (strlen($raw) !== 64) {
        throw new SsoAssertionInvalid('signature: not a 64-byte ES256 signature');
    }
    $body = sso_der_integer(substr($raw, 0, 32)) . sso_der_integer(substr($raw, 32, 32));
    return "\x30" . chr(strlen($body)) . $body;
}

function sso_der_integer(string $bytes): string
{
    $bytes = ltrim($bytes, "\x00");
    if ($bytes === '' || ord($bytes[0]) > 0x7f) {
        $bytes = "\x00" . $bytes;  // DER integers are signed: a leading 0 keeps them positive
    }
    return "\x02" . chr(strlen($bytes)) . $bytes;
}

/**
 * The verified claims of $token, or SsoAssertionInvalid saying why not.
 * $jwks: the decoded JWKS document ({"keys": [...]}). $now: for tests; default time().
 */
function sso_verify_assertion(string $token, array $jwks, string $issuer, string $audience, ?int $now = null): array
{
    $parts = explode('.', $token);
    if (count($parts) !== 3) {
        throw new SsoAssertionInvalid('malformed: not a compact JWS');
    }
    [$header64, $payload64, $signature64] = $parts;
    $header = sso_json_object(sso_b64url_decode($header64), 'header');
    // SECURITY: the algorithm is pinned. Never "none", never HS256 keyed with the public key,
    // whatever the token's header says.
    if (($header['alg'] ?? null) !== SSO_ALGORITHM) {
        throw new SsoAssertionInvalid('alg: only ES256 is accepted');
    }
    if (array_key_exists('crit', $header)) {
        throw new SsoAssertionInvalid('crit: header extensions are not understood');
    }
    $kid = $header['kid'] ?? null;
    if (!is_string($kid) || $kid === '') {
        throw new SsoAssertionInvalid('kid: missing');
    }
    $keys = sso_jwks_keys($jwks);
    if (!array_key_exists($kid, $keys)) {
        throw new SsoUnknownKey('kid: not in the JWKS');
    }
    $signature = sso_der_signature(sso_b64url_decode($signature64));
    // SECURITY: openssl_verify returns 1 (valid), 0 (invalid) or -1 / false (error): only 1 passes.
    if (openssl_verify($header64 . '.' . $payload64, $signature, $keys[$kid], OPENSSL_ALGO_SHA256) !== 1) {
        throw new SsoAssertionInvalid('signature: invalid');
    }
    $claims = sso_json_object(sso_b64url_decode($payload64), 'claims');
    sso_check_claims($claims, $issuer, $audience, $now ?? time());
    return $claims;
}

/** The registered claims: for us (iss, aud), in time (exp, iat, nbf), short-lived, with a sub. */
function sso_check_claims(array $claims, string $issuer, string $audience, int $now): void
{
    foreach (SSO_REQUIRED_CLAIMS as $name) {
        if (!array_key_exists($name, $claims)) {
            throw new SsoAssertionInvalid("$name: missing");
        }
    }
    if ($claims['iss'] !== $issuer) {
        throw new SsoAssertionInvalid('iss: another issuer');
    }
    // SECURITY: the audience binds the assertion to one route: one minted for another app
    // (another route of the same proxy) must not open this one.
    $audiences = is_array($claims['aud']) ? $claims['aud'] : [$claims['aud']];
    if (!in_array($audience, $audiences, true)) {
        throw new SsoAssertionInvalid('aud: meant for another app');
    }
    if (!is_string($claims['sub']) || $claims['sub'] === '') {
        throw new SsoAssertionInvalid('sub: missing');
    }
    foreach (['exp', 'iat', 'nbf'] as $name) {
        if (array_key_exists($name, $claims) && !is_int($claims[$name]) && !is_float($claims[$name])) {
            throw new SsoAssertionInvalid("$name: not a number");
        }
    }
    if ($now >= $claims['exp'] + SSO_LEEWAY) {
        throw new SsoAssertionInvalid('exp: expired');
    }
    if ($claims['iat'] > $now + SSO_LEEWAY || (isset($claims['nbf']) && $claims['nbf'] > $now + SSO_LEEWAY)) {
        throw new SsoAssertionInvalid('iat: issued in the future');
    }
    if ($claims['exp'] - $claims['iat'] > SSO_MAX_LIFETIME) {
        throw new SsoAssertionInvalid('exp: lifetime over 300 s');
    }
}

/** The JWKS document at $url (https://..., or a file path), fetched now. */
function sso_fetch_jwks(string $url, int $timeout = 5): array
{
    $context = stream_context_create(['http' => ['timeout' => $timeout, 'follow_location' => 0]]);
    $body = @file_get_contents($url, false, $context, 0, SSO_MAX_JWKS_BYTES);
    if ($body === false) {
        throw new SsoJwksUnavailable("JWKS: cannot fetch $url");
    }
    try {
        return sso_json_object($body, 'JWKS');
    } catch (SsoAssertionInvalid $e) {
        throw new SsoJwksUnavailable("JWKS: $url did not answer a JWKS");
    }
}

/**
 * The JWKS, from $cacheFile while it is younger than SSO_JWKS_MAX_AGE; refetched sooner for an
 * unknown kid (a key rotation). Every fetch attempt, failed or not, is recorded (the mtime of
 * "$cacheFile.attempt"), and there is at most one every SSO_JWKS_MIN_REFETCH seconds: neither
 * tokens with made-up kids nor an outage at the proxy can make every request fetch.
 * The proxy unreachable: the cached copy serves on, for SSO_JWKS_MAX_STALE seconds after it was
 * fetched; older keys may have been withdrawn at the proxy (a compromised key), so then
 * SsoJwksUnavailable (answer 503) until a fetch succeeds.
 */
function sso_jwks(string $url, string $cacheFile, bool $unknownKid = false): array
{
    clearstatcache(true, $cacheFile);
    $cached = is_file($cacheFile) ? sso_trusted_cache($cacheFile) : null;
    $age = $cached === null ? PHP_INT_MAX : time() - (int) filemtime($cacheFile);
    $wanted = $age >= SSO_JWKS_MAX_AGE || ($unknownKid && $age >= SSO_JWKS_MIN_REFETCH);
    if ($wanted && sso_may_attempt($cacheFile)) {
        sso_write_private($cacheFile . '.attempt', '');  // recorded before the fetch, as it starts
        try {
            $jwks = sso_fetch_jwks($url);
            if (!sso_write_private($cacheFile, (string) json_encode($jwks))) {
                @unlink($cacheFile . '.attempt');  // nothing cached to serve meanwhile: fetch again
            }
            return $jwks;
        } catch (SsoJwksUnavailable $e) {
            if ($cached === null) {
                throw $e;
            }
            error_log('sso-proxy ' . $e->getMessage() . " (the cached keys are $age s old)");
        }
    }
    if ($cached === null) {
        throw new SsoJwksUnavailable('JWKS: none cached, and a fetch was attempted under '
            . SSO_JWKS_MIN_REFETCH . ' s ago');
    }
    // SECURITY: fail closed. Keys that could not be refreshed for a day may have been removed at
    // the proxy (a compromised key): do not trust them indefinitely because fetches keep failing.
    if ($age >= SSO_JWKS_MAX_STALE) {
        throw new SsoJwksUnavailable("JWKS: not refreshed for $age s: the cached keys are no longer trusted");
    }
    return $cached;
}

/**
 * Whether a JWKS fetch may start now: none was attempted in the last SSO_JWKS_MIN_REFETCH
 * seconds. An attempt file that another user could have written is ignored (as the cache is):
 * it cannot stop the fetches.
 */
function sso_may_attempt(string $cacheFile): bool
{
    $attemptFile = $cacheFile . '.attempt';
    clearstatcache(true, $attemptFile);
    if (!is_file($attemptFile) || !sso_private_file($attemptFile)) {
        return true;
    }
    $since = time() - (int) filemtime($attemptFile);
    return $since < 0 || $since >= SSO_JWKS_MIN_REFETCH;  // in the future: a clock step, not a record
}

/** $content into $file, readable and writable by this user only, replaced atomically. */
function sso_write_private(string $file, string $content): bool
{
    $temporary = $file . '.' . bin2hex(random_bytes(6));
    if (file_put_contents($temporary, $content) === false) {
        return false;
    }
    if (!chmod($temporary, 0600) || !rename($temporary, $file)) {
        @unlink($temporary);
        return false;
    }
    return true;
}

/** Owned by this user and writable by no one else. */
function sso_private_file(string $file): bool
{
    $mine = !function_exists('posix_geteuid') || fileowner($file) === posix_geteuid();
    return $mine && (fileperms($file) & 0022) === 0;
}

/**
 * SECURITY: the cached keys decide which signatures are believed. A cache file that another
 * user could have written (or planted: never put it in /tmp) is ignored and fetched anew.
 */
function sso_trusted_cache(string $cacheFile): ?array
{
    if (!sso_private_file($cacheFile)) {
        return null;
    }
    try {
        return sso_json_object((string) file_get_contents($cacheFile), 'JWKS cache');
    } catch (SsoAssertionInvalid $e) {
        return null;
    }
}

/**
 * The verified claims of this request's X-Provider-Assertion, or null (answer 401) when it is
 * missing or invalid. Throws SsoJwksUnavailable (answer 503) when no trusted keys can be had: none
 * fetched, or none fetched in the last 24 h.
 */
function sso_claims_from_request(string $jwksUrl, string $issuer, string $audience, string $cacheFile): ?array
{
    $token = $_SERVER['HTTP_X_PROVIDER_ASSERTION'] ?? '';
    if (!is_string($token) || $token === '') {
        return null;
    }
    try {
        try {
            return sso_verify_assertion($token, sso_jwks($jwksUrl, $cacheFile), $issuer, $audience);
        } catch (SsoUnknownKey $e) {
            return sso_verify_assertion($token, sso_jwks($jwksUrl, $cacheFile, true), $issuer, $audience);
        }
    } catch (SsoAssertionInvalid $e) {
        error_log('sso-proxy assertion refused: ' . $e->getMessage());  // never the token itself
        return null;
    }
}

/** php verify.php <jwks_url_or_file> <issuer> <audience> <token> */
function sso_cli(array $args): int
{
    if (count($args) !== 4) {
        fwrite(STDERR, "usage: php verify.php <jwks_url_or_file> <issuer> <audience> <token>\n");
        return 2;
    }
    [$jwksUrl, $issuer, $audience, $token] = $args;
    try {
        $claims = sso_verify_assertion(trim($token), sso_fetch_jwks($jwksUrl), $issuer, $audience);
    } catch (SsoAssertionInvalid $e) {
        fwrite(STDERR, 'invalid assertion: ' . $e->getMessage() . "\n");
        return 1;
    } catch (SsoJwksUnavailable $e) {
        fwrite(STDERR, $e->getMessage() . "\n");
        return 2;
    }
    echo json_encode($claims, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), "\n";
    return 0;
}

if (PHP_SAPI === 'cli' && isset($argv[0]) && realpath($argv[0]) === __FILE__) {
    exit(sso_cli(array_slice($argv, 1)));
}
