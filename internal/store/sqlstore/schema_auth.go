package sqlstore

import "strings"

// authMigrations returns the schema steps of the auth module (the authorization server),
// oldest first. Only that area edits this file.
//
// Layout (version 1), all times in Unix milliseconds, 0 = unset:
//
//   - auth_keys: the server's signing keys (PKCS #8 DER).
//   - auth_clients: registered OAuth clients (registration JSON, hashed secret).
//   - auth_users: local accounts (argon2id hash, fhirUser, roles, lockout).
//   - auth_tokens: one-time and short-lived values by kind and SHA-256
//     hash (codes, refresh tokens, launch values, sessions, initial access
//     tokens), grouped by grant.
//   - auth_jti: client-assertion jti values seen, until they expire (replay).
//   - auth_revoked: revoked access tokens (jti) and grants, ordered by seq.
func authMigrations(d Dialect) []Migration {
	r := strings.NewReplacer("{serial}", d.SerialKey(), "{blob}", d.Blob())
	return []Migration{{
		Module:  "auth",
		Version: 1,
		Name:    "keys, clients, users, tokens, jti, revocations",
		Stmts: []string{
			r.Replace(`CREATE TABLE auth_keys (
	kid TEXT NOT NULL PRIMARY KEY,
	alg TEXT NOT NULL,
	private_key {blob} NOT NULL,
	created_at BIGINT NOT NULL,
	retired_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
)`),
			`CREATE TABLE auth_clients (
	client_id TEXT NOT NULL PRIMARY KEY,
	metadata TEXT NOT NULL,
	secret_hash TEXT NOT NULL,
	disabled SMALLINT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
)`,
			`CREATE TABLE auth_users (
	username TEXT NOT NULL PRIMARY KEY,
	password_hash TEXT NOT NULL,
	fhir_user TEXT NOT NULL,
	roles TEXT NOT NULL,
	disabled SMALLINT NOT NULL,
	failed_logins INTEGER NOT NULL,
	locked_until BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
)`,
			`CREATE TABLE auth_tokens (
	kind TEXT NOT NULL,
	hash TEXT NOT NULL,
	grant_id TEXT NOT NULL,
	data TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at BIGINT NOT NULL,
	PRIMARY KEY (kind, hash)
)`,
			`CREATE INDEX auth_tokens_grant ON auth_tokens (grant_id)`,
			`CREATE INDEX auth_tokens_expires ON auth_tokens (expires_at)`,
			`CREATE TABLE auth_jti (
	client_id TEXT NOT NULL,
	jti TEXT NOT NULL,
	expires_at BIGINT NOT NULL,
	PRIMARY KEY (client_id, jti)
)`,
			`CREATE INDEX auth_jti_expires ON auth_jti (expires_at)`,
			r.Replace(`CREATE TABLE auth_revoked (
	seq {serial},
	kind TEXT NOT NULL,
	value TEXT NOT NULL,
	expires_at BIGINT NOT NULL
)`),
			`CREATE INDEX auth_revoked_expires ON auth_revoked (expires_at)`,
		},
	}}
}
