package server

import (
	"errors"

	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

// authStorer is implemented by stores that hold the authorization
// server's records (the SQL stores).
type authStorer interface {
	Auth() *sqlstore.Auth
}

// AuthStore returns the authorization server's record store of st (the
// same database: admin commands and the server share it).
func AuthStore(st store.Store) (*sqlstore.Auth, error) {
	a, ok := st.(authStorer)
	if !ok {
		return nil, errors.New("this store cannot hold clients, users and keys")
	}
	return a.Auth(), nil
}
