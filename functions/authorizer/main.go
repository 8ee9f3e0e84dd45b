// Command authorizer is the API Gateway REST API's REQUEST authorizer Lambda
// (SPEC §6): it verifies "Authorization: Bearer <token>" (an API key looked
// up by hash in the table, or a JWT) and hands the principal to the api
// Lambda in the authorizer context. Wiring only; the handler is
// auth.APIGatewayAuthorizer, built by awswire.Authorizer.
//
// Environment:
//
//	SLUICE_TABLE             DynamoDB table holding the API keys (required unless auth is disabled)
//	SLUICE_AUTH_DISABLED     "true" switches authentication off (local development only); default on
//	SLUICE_JWT_ISSUER        required "iss" of JWTs (with SLUICE_JWKS_URL or SLUICE_JWT_HS256_SECRET)
//	SLUICE_JWT_AUDIENCE      required "aud" of JWTs
//	SLUICE_JWKS_URL          the issuer's JSON Web Key Set (RS256, ES256); https
//	SLUICE_JWT_HS256_SECRET  enables HS256 with this shared secret (≥ 32 bytes). In AWS
//	                         this belongs in Secrets Manager; for now it is read from the
//	                         environment.
//	SLUICE_JWT_ROLE_CLAIM    claim holding the role (default "sluice_role"; absent → read)
//	SLUICE_JWT_LEEWAY        clock skew allowed on exp/nbf/iat (default 30s)
//
// Answers: Allow (policy for every method and path of the stage, so the
// gateway may cache it per Authorization header) with context
// principal_kind/principal_subject/principal_role; the error "Unauthorized"
// (API Gateway: 401) for a bad credential; any other error (API Gateway: 500,
// gateway response AUTHORIZER_FAILURE) when the table or the JWKS cannot be
// reached.
package main

import "github.com/sluicehq/sluice/internal/awswire"

func main() { awswire.Start("authorizer", awswire.AuthorizerLambda) }
