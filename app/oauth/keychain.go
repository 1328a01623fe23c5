package oauth

import (
	"errors"

	"keyport/app/secrets"
)

// KeychainStore is the OS keychain (a secrets.Store) as a TokenStore: its
// not-found errors become ErrNotFound. Give it a Store without a cache
// (CacheTTL 0): refresh tokens rotate, and a value cached in one process
// may be one another process already spent.
func KeychainStore(s *secrets.Store) TokenStore { return keychainStore{s} }

type keychainStore struct{ s *secrets.Store }

func (k keychainStore) Get(server, kind string) (string, error) {
	v, err := k.s.Get(server, kind)
	if errors.Is(err, secrets.ErrNotFound) {
		return "", ErrNotFound
	}
	return v, err
}

func (k keychainStore) Set(server, kind, value string) error { return k.s.Set(server, kind, value) }

func (k keychainStore) Delete(server, kind string) error {
	err := k.s.Delete(server, kind)
	if errors.Is(err, secrets.ErrNotFound) {
		return ErrNotFound
	}
	return err
}
