package sqlstore

// searchMigrations returns the schema steps of the search module (the search issue),
// oldest first. Only that area edits this file.
func searchMigrations(d Dialect) []Migration {
	_ = d
	return nil
}
