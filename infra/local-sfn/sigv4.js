'use strict';
// Local Step Functions service (see server.js): AWS Signature Version 4 for the calls to the local Lambda endpoint.

const http = require('node:http');
const crypto = require('node:crypto');

// ---------------------------------------------------------------------------
// AWS Signature Version 4 for the calls to the local Lambda endpoint
// rfc3986 is encodeURIComponent plus the characters it leaves alone that
// SigV4's URI encoding escapes.
function rfc3986(str) {
  return encodeURIComponent(str).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

const hmac = (key, data) => crypto.createHmac('sha256', key).update(data, 'utf8').digest();
const sha256hex = (data) => crypto.createHash('sha256').update(data).digest('hex');

// signingKey derives the day's HMAC key (four HMACs); it changes once a
// day, so the last one is kept rather than derived per Lambda call.
let lastKey = { id: '', key: null };
function signingKey(secret, date, region, service) {
  const id = `${secret}\0${date}\0${region}\0${service}`;
  if (lastKey.id !== id) lastKey = { id, key: hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request') };
  return lastKey.key;
}

// signV4 returns the headers that sign a request with AWS Signature Version 4
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html):
// the canonical request (method, the path with each segment URI-encoded once
// more, as for every service but S3, the sorted query, the signed headers
// host, content-type, content-length and x-amz-date, the body's SHA-256), the
// string to sign over the credential scope DATE/REGION/SERVICE/aws4_request,
// and the HMAC-SHA256 key derived from the secret.
function signV4(method, url, headers, body, { credentials, region, service }, now = new Date()) {
  const u = new URL(url);
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const date = amzDate.slice(0, 8);
  const all = { ...headers, host: u.host, 'x-amz-date': amzDate };
  const names = Object.keys(all).map((k) => k.toLowerCase()).sort();
  const lower = Object.fromEntries(Object.entries(all).map(([k, v]) => [k.toLowerCase(), String(v).trim().replace(/\s+/g, ' ')]));
  const canonicalHeaders = names.map((n) => `${n}:${lower[n]}\n`).join('');
  const signedHeaders = names.join(';');
  const canonicalURI = u.pathname.split('/').map(rfc3986).join('/') || '/';
  const query = [...u.searchParams.entries()].map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`).sort().join('&');
  const canonicalRequest = [method, canonicalURI, query, canonicalHeaders, signedHeaders, sha256hex(body)].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonicalRequest)].join('\n');
  const key = signingKey(credentials.secretAccessKey, date, region, service);
  const signature = crypto.createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  return {
    ...all,
    authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}

// postJSON POSTs a JSON body without a client-side timeout (a Lambda may run
// for up to 15 minutes; the Task's TimeoutSeconds is enforced by the engine),
// signed with SigV4 when signing.credentials are set.
function postJSON(url, value, signing) {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(JSON.stringify(value === undefined ? null : value));
    let headers = { 'content-type': 'application/json', 'content-length': body.length };
    if (signing && signing.credentials && signing.credentials.accessKeyId && signing.credentials.secretAccessKey) {
      headers = signV4('POST', url, headers, body, signing);
    }
    headers['user-agent'] = 'sluice-local-sfn'; // not signed, as in the AWS SDKs
    const req = http.request(url, {
      method: 'POST',
      headers,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

module.exports = { rfc3986, hmac, sha256hex, signingKey, signV4, postJSON };
