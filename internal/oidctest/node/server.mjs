// A real OpenID Provider for wssec's tests: oidc-provider with the
// client-credentials grant, issuing RFC 9068 JWT access tokens.
//
// Usage: node server.mjs CONFIG.json
//
// The config (written by internal/oidctest) holds the port (0 = any free
// one), the private signing keys (JWKs, the first one signs), whether to
// publish an RSA encryption key, the audience, the scopes it grants and the clients with their
// token lifetime and extra claims. Once listening on 127.0.0.1 the script
// prints "READY <port>" on stdout. It stops on SIGTERM or SIGKILL.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(cfg.port, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const keys = [...cfg.signingKeys];
if (cfg.encryptionKey) {
  // Published beside the signing keys, as Keycloak does; wssec must skip it.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  keys.push({ ...privateKey.export({ format: 'jwk' }), kid: 'enc-1', use: 'enc', alg: 'RSA-OAEP' });
}

const clients = new Map(cfg.clients.map((c) => [c.client_id, c]));

const provider = new Provider(issuer, {
  clients: cfg.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  jwks: { keys },
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  cookies: { keys: ['wssec-oidctest-cookie-key'] },
  scopes: ['openid', ...cfg.scopes],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    encryption: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => cfg.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, _resource, client) => ({
        scope: cfg.scopes.join(' '),
        audience: cfg.audience,
        accessTokenTTL: clients.get(client.clientId)?.ttl ?? 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  extraTokenClaims: (_ctx, token) => clients.get(token.clientId)?.claims,
});

server.on('request', provider.callback());
process.stdout.write(`READY ${port}\n`);

process.on('SIGTERM', () => server.close(() => process.exit(0)));
