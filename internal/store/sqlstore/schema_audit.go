package sqlstore

// auditMigrations returns the schema steps of the audit module (audit and Provenance),
// oldest first. Only that area edits this file.
func auditMigrations(d Dialect) []Migration {
	_ = d
	return nil
}
