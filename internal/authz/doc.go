// Package authz owns fhirguard's authorization server (SMART App Launch
// 2.2, SMART Backend Services, OpenID Connect): discovery, the authorize
// endpoint with its login, consent and patient-picker pages, the token
// endpoint and its grants (authorization_code with PKCE, refresh_token,
// client_credentials with RFC 7523 client assertions), introspection
// (RFC 7662), revocation (RFC 7009), dynamic registration (RFC 7591),
// userinfo, EHR launch values, and the admin operations behind the CLI
// (client add, user add, client token, launch).
//
// Protocol handlers are small and composed (one file per grant or
// endpoint). Errors are *Error values rendered as RFC 6749 JSON by
// httpx.OAuthJSON. Tokens are signed by internal/keys and validated by
// internal/authn; persistence is through the small interfaces of
// stores.go, satisfied by the SQL store.
package authz
