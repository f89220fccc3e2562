package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Join tokens admit agents to any cluster of the control plane. Only their
// SHA-256 is stored, at join-tokens/<hash>, so every server on the etcd
// cluster accepts every token any of them was configured with, and
// reading the store does not reveal a token.

// HashToken is the hex SHA-256 of a token, how join and instance tokens
// are stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

type joinToken struct {
	AddedAt time.Time `json:"addedAt"`
}

// AddJoinToken stores a join token's hash; adding one already stored is a
// no-op.
func (s *Store) AddJoinToken(ctx context.Context, token string, at time.Time) error {
	if token == "" {
		return errors.New("empty join token")
	}
	err := s.create(ctx, joinTokensPrefix+HashToken(token), joinToken{AddedAt: at})
	if errors.Is(err, ErrExists) {
		return nil
	}
	return err
}

// JoinTokenValid reports whether token is a stored join token.
func (s *Store) JoinTokenValid(ctx context.Context, token string) (bool, error) {
	if token == "" {
		return false, nil
	}
	resp, err := s.cli.Get(ctx, joinTokensPrefix+HashToken(token), clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("etcd join token: %w", err)
	}
	return resp.Count > 0, nil
}
