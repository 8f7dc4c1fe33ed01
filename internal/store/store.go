// Package store connects to MongoDB, or starts the embedded FerretDB when no
// MongoDB is configured, and prepares the master collections.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// Store is an open connection to the database the service uses.
type Store struct {
	Client *mongo.Client
	DB     *mongo.Database
	// URI is the connection string the driver used; for the embedded store
	// it names the loopback address it listens on.
	URI string
	// IDFiltersOnly: the database is FerretDB, which evaluates a lone _id
	// equality filter in its storage and reads the whole collection for
	// any other (see repository.NewMasterRepository).
	IDFiltersOnly bool
	embedded      *Embedded
}

// Options says which database to open.
type Options struct {
	// URI of a MongoDB deployment; empty starts the embedded store.
	URI string
	// Database is the master database name.
	Database string
	// DataDir holds the embedded store's files.
	DataDir string
	// EmbeddedAddr is the embedded store's listen address; empty picks a
	// free loopback port.
	EmbeddedAddr string
	Logger       *slog.Logger
	// ConnectTimeout bounds how long Open keeps trying to reach the
	// database (with backoff) before it gives up.
	ConnectTimeout time.Duration
	// OnCommandFailed, when set, is called for every database command that
	// fails, except one whose caller's context was cancelled (for metrics).
	OnCommandFailed func(command string)
	// OnCommandStarted, when set, is called for every database command
	// sent (for metrics: round trips per request).
	OnCommandStarted func(command string)
}

// ServerSelectionTimeout is how long a request waits for a reachable
// database before it fails with ErrUnavailable: short, so that requests
// fail fast while the database is down.
const ServerSelectionTimeout = 2 * time.Second

// Open connects to the configured database, starting the embedded store
// first when Options.URI is empty, and makes sure the master indexes exist.
func Open(ctx context.Context, o Options) (*Store, error) {
	s := &Store{URI: o.URI}
	if o.URI == "" {
		e, err := StartEmbedded(o.DataDir, o.EmbeddedAddr, o.Logger)
		if err != nil {
			return nil, err
		}
		s.embedded = e
		s.URI = e.URI()
	}
	opts := options.Client().ApplyURI(s.URI).
		SetServerSelectionTimeout(ServerSelectionTimeout).
		SetConnectTimeout(5 * time.Second).
		SetHeartbeatInterval(2 * time.Second)
	if s.embedded != nil {
		opts.SetMaxPoolSize(EmbeddedPoolSize())
	}
	if o.OnCommandFailed != nil || o.OnCommandStarted != nil {
		m := &event.CommandMonitor{}
		if o.OnCommandFailed != nil {
			m.Failed = func(ctx context.Context, e *event.CommandFailedEvent) {
				if !errors.Is(ctx.Err(), context.Canceled) { // the caller hung up: no failure of the database
					o.OnCommandFailed(e.CommandName)
				}
			}
		}
		if o.OnCommandStarted != nil {
			m.Started = func(_ context.Context, e *event.CommandStartedEvent) { o.OnCommandStarted(e.CommandName) }
		}
		opts.SetMonitor(m)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		s.Close(context.Background())
		return nil, fmt.Errorf("MONGO_URI: %w", err)
	}
	s.Client = client
	if err := waitReachable(ctx, client, o.ConnectTimeout, o.Logger); err != nil {
		s.Close(context.Background())
		return nil, err
	}
	s.DB = client.Database(o.Database)
	if s.IDFiltersOnly, err = repository.IDFiltersOnly(ctx, s.DB); err != nil {
		s.Close(context.Background())
		return nil, fmt.Errorf("buildInfo: %w", err)
	}
	if err := Prepare(ctx, s.DB, s.embedded); err != nil {
		s.Close(context.Background())
		return nil, err
	}
	return s, nil
}

// waitReachable pings the database until it answers, backing off from
// 250 ms up to 5 s between tries, for at most limit.
func waitReachable(ctx context.Context, client *mongo.Client, limit time.Duration, log *slog.Logger) error {
	if limit <= 0 {
		limit = 30 * time.Second
	}
	deadline := time.Now().Add(limit)
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		pingCtx, cancel := context.WithTimeout(ctx, ServerSelectionTimeout)
		err := client.Ping(pingCtx, readpref.Primary())
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("database unreachable after %s (%d attempts): %w", limit, attempt, err)
		}
		if log != nil {
			log.Warn("database not reachable yet; retrying", "attempt", attempt, "retry_in", wait.String(), "err", err)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// EmbeddedPoolSize bounds the driver's connections to the embedded store:
// two per core, at least four. Every command FerretDB runs concurrently
// takes a SQLite connection of its own, and after each schema change (a
// tenant collection made or dropped) every SQLite connection parses the
// whole schema again, which grows with the number of collections. Fewer
// connections do the same work with fewer parses (BENCHMARKS.md,
// "Measurements behind the code"). Four rather than two, so that one slow
// command (a listing that reads a large collection) does not hold up
// every other request.
func EmbeddedPoolSize() uint64 { return uint64(max(4, 2*runtime.NumCPU())) }

// Ping checks that the database answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	return s.Client.Ping(ctx, readpref.Primary())
}

// Close disconnects the driver and stops the embedded store.
func (s *Store) Close(ctx context.Context) error {
	var errs []error
	if s.Client != nil {
		errs = append(errs, s.Client.Disconnect(ctx))
	}
	if s.embedded != nil {
		s.embedded.Stop()
	}
	return errors.Join(errs...)
}

// Embedded is an in-process FerretDB with SQLite storage.
type Embedded struct {
	db     *ferretdb.FerretDB
	cancel context.CancelFunc
	done   chan struct{}
	ids    *idIndexes
	lock   *dirLock
	// read serves ScanCollection: connections apart from the index
	// maker's single one, so that a long scan never holds up the indexing
	// of a new collection.
	read *sqlFiles
	// socketDir is a directory made for the socket alone, removed at Stop.
	socketDir string
}

// SocketFile is the Unix socket in DATA_DIR the embedded store listens on
// when no EMBEDDED_MONGO_ADDR is set.
const SocketFile = "mongo.sock"

// maxSocketPath is the longest socket path Linux and macOS take (104 and
// 108 bytes, less the terminating NUL).
const maxSocketPath = 103

// StartEmbedded takes DATA_DIR's lock (see lockDir) and starts FerretDB
// storing its files under dir. With addr empty it listens only on a Unix
// socket in dir, which is mode 0700, so no other user of the machine
// reaches it; otherwise it listens on the TCP address addr.
func StartEmbedded(dir, addr string, logger *slog.Logger) (*Embedded, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("DATA_DIR: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("DATA_DIR: %w", err)
	}
	if err := os.Chmod(abs, 0o700); err != nil {
		return nil, fmt.Errorf("DATA_DIR: %w", err)
	}
	lock, err := lockDir(abs)
	if err != nil {
		return nil, err
	}
	e := &Embedded{lock: lock, done: make(chan struct{}), ids: &idIndexes{files: sqlFiles{dir: abs, conns: 1}},
		read: &sqlFiles{dir: abs, opts: "&mode=rw&_pragma=query_only(1)", conns: 2, existing: true}}
	listener := ferretdb.ListenerConfig{TCP: addr}
	if addr == "" {
		sock := filepath.Join(abs, SocketFile)
		if len(sock) > maxSocketPath {
			// A deep DATA_DIR: a directory of the same mode of its own.
			if e.socketDir, err = os.MkdirTemp("", "orgsvc-db-"); err != nil {
				_ = lock.release()
				return nil, fmt.Errorf("embedded database socket: %w", err)
			}
			sock = filepath.Join(e.socketDir, SocketFile)
		}
		// Left behind by a process that died; the lock says none is alive.
		_ = os.Remove(sock)
		listener = ferretdb.ListenerConfig{Unix: sock}
	}
	if logger == nil {
		logger = slog.Default()
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  listener,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    quiet(logger.With("component", "ferretdb")),
	})
	if err != nil {
		e.release()
		return nil, fmt.Errorf("start embedded database: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.db, e.cancel = f, cancel
	go func() {
		defer close(e.done)
		_ = f.Run(ctx)
	}()
	return e, nil
}

// release gives up what StartEmbedded took beside FerretDB.
func (e *Embedded) release() {
	if e.socketDir != "" {
		_ = os.RemoveAll(e.socketDir)
	}
	_ = e.lock.release()
}

// URI is the connection string of the embedded store (a socket's path
// percent-encoded, as the driver expects).
func (e *Embedded) URI() string { return e.db.MongoDBURI() }

// Stop shuts the embedded store down, waits for it, and gives up DATA_DIR.
func (e *Embedded) Stop() {
	_ = e.ids.close()
	_ = e.read.close()
	e.cancel()
	<-e.done
	e.release()
}

// IndexCollection is Store.IndexCollection for another database of the
// embedded store.
func (e *Embedded) IndexCollection(ctx context.Context, dbName, name string) error {
	return e.ids.ensure(ctx, dbName, name)
}

// Prepare makes the master indexes of db and, on the embedded store e (nil
// for MongoDB), makes every master collection and indexes the lookups of
// every collection of db and of its tenant databases.
func Prepare(ctx context.Context, db *mongo.Database, e *Embedded) error {
	if err := EnsureIndexes(ctx, db); err != nil {
		return err
	}
	if e == nil {
		return nil
	}
	if err := ensureMasterCollections(ctx, db); err != nil {
		return err
	}
	if err := e.ids.ensure(ctx, db.Name()); err != nil {
		return err
	}
	dbs, err := db.Client().ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return err
	}
	for _, name := range dbs {
		if model.IsTenantDatabase(db.Name(), name) {
			if err := e.ids.ensure(ctx, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// quiet keeps FerretDB's own chatter to errors: it logs every refused command (a duplicate key, say) as a warning.
func quiet(l *slog.Logger) *slog.Logger {
	return slog.New(minLevel{Handler: l.Handler(), level: slog.LevelError})
}

type minLevel struct {
	slog.Handler
	level slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(a), level: h.level}
}

func (h minLevel) WithGroup(n string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(n), level: h.level}
}
