package sqlstore

// authMigrations returns the schema steps of the auth module (the authorization server),
// oldest first. Only that area edits this file.
func authMigrations(d Dialect) []Migration {
	_ = d
	return nil
}
