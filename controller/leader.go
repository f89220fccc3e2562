package controller

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// DefaultLeaderTTL is how long a leader that died without resigning keeps
// the leadership: the lease of its etcd session.
const DefaultLeaderTTL = 5 * time.Second

// LeaderConfig configures a Leader.
type LeaderConfig struct {
	Client *clientv3.Client
	// Prefix is the election's etcd key prefix; every server of a control
	// plane uses the same one.
	Prefix string
	// ID names this candidate (a server's listen address, say) in the
	// election's key values, for people looking at etcd.
	ID string
	// TTL of the session lease (default DefaultLeaderTTL; whole seconds,
	// at least 1).
	TTL time.Duration
	// Run is what the leader does; its ctx ends when the leadership is
	// lost or Leader.Run's ctx ends. It should return then.
	Run    func(ctx context.Context) error
	Logger *slog.Logger
}

// Leader campaigns for leadership of a control plane and runs
// LeaderConfig.Run while it holds it, so that of several `gantry server`
// processes on one etcd cluster, exactly one runs the controllers. It is
// etcd's concurrency.Election on a session lease: a leader that stops
// resigns, and one that dies loses the leadership when its lease expires.
type Leader struct {
	cfg     LeaderConfig
	log     *slog.Logger
	leading atomic.Bool
}

// NewLeader returns a candidate; Run campaigns.
func NewLeader(cfg LeaderConfig) *Leader {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultLeaderTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Leader{cfg: cfg, log: cfg.Logger}
}

// Leading reports whether this candidate is the leader now.
func (l *Leader) Leading() bool { return l.leading.Load() }

// Run campaigns until ctx ends, running LeaderConfig.Run whenever it is
// leader, and resigns on the way out. It returns nil when ctx ends.
func (l *Leader) Run(ctx context.Context) error {
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.term(ctx)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			l.log.Warn("leader election", "err", err)
			sleep(ctx, pause)
			pause = min(2*pause, 5*time.Second)
			continue
		}
		pause = 100 * time.Millisecond
	}
	return nil
}

// term is one session: campaign, lead until the session or ctx ends,
// resign.
func (l *Leader) term(ctx context.Context) error {
	ttl := max(int((l.cfg.TTL+time.Second-1)/time.Second), 1)
	// The session lives on the client's context, not ctx: closing it after
	// ctx ended must still be able to revoke its lease.
	sess, err := concurrency.NewSession(l.cfg.Client, concurrency.WithTTL(ttl))
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		l.cfg.Client.Revoke(cctx, sess.Lease()) // resigns too: the leader key is on the lease
		sess.Orphan()
	}()
	el := concurrency.NewElection(sess, l.cfg.Prefix)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			cancel() // the lease is gone: stop campaigning or leading
		case <-cctx.Done():
		}
	}()
	if err := el.Campaign(cctx, l.cfg.ID); err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			return errors.New("session lost while campaigning")
		}
		return err
	}
	l.leading.Store(true)
	l.log.Info("leader elected", "id", l.cfg.ID)
	defer func() {
		l.leading.Store(false)
		l.log.Info("leadership ended", "id", l.cfg.ID)
	}()
	err = l.cfg.Run(cctx)
	if ctx.Err() == nil && cctx.Err() != nil {
		return errors.New("leader session lost")
	}
	return err
}
