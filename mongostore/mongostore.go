// Package mongostore is the production store.Store on MongoDB (or a
// wire-compatible server such as FerretDB), using the official driver
// go.mongodb.org/mongo-driver/v2.
//
// Collections (database from the URI path, default "ztream"):
//
//	tracks   {_id: track id, gen, chunk_count, ...every media.Manifest field}
//	chunks   {_id: "<track id>/<gen>/<seq as 8 hex digits>", track_id, gen, seq, data}
//	         unique index {track_id: 1, gen: 1, seq: 1}
//	staging  {_id: gen, track_id, started_at}: puts in progress
//
// Atomicity without multi-document transactions (FerretDB v1 has none, and
// a standalone MongoDB neither): every put writes its chunks under a fresh
// generation id gen, recorded first in staging. Readers only ever read the
// chunks of the gen named by the track document, so chunks being written are
// invisible. The commit point is one single-document write: the track
// document (with its new gen) replaces the previous one. Only then are the
// previous generation's chunks and the staging record deleted. A failed put
// deletes its own generation's chunks and staging record, leaving the
// previous version of the track untouched; a re-put of the same id is
// therefore safe, even concurrently with readers of the old version (a read
// that started on the old generation and outlives the commit can fail with a
// "missing chunk" error wrapping store.ErrNotFound, never return wrong
// bytes). Leftovers of a crashed put are removed by Cleanup, which Open runs
// for staging records older than the stale age (default 1 h).
//
// Range reads: a Find on {track_id, gen, seq range} with batch size 8
// through a cursor, so the client holds at most 8 chunks and a slow consumer
// slows the getMores. With MongoDB the Find is sorted by seq, which the unique
// index serves in order without a blocking sort. FerretDB v1 (detected at
// Open via buildInfo.ferretdbVersion) cannot push such a sort down: it would
// load and sort the whole range in memory before the first batch. Against
// FerretDB the Find is therefore unsorted: the chunks of one generation are
// inserted in seq order and come back in that natural order. The iterator
// checks every seq either way and fails rather than return a chunk out of
// order. WithReadMode overrides the choice.
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/store"
)

// DefaultDatabase is the database used when the URI names none.
const DefaultDatabase = "ztream"

// readBatch is the cursor batch size of range reads.
const readBatch = 8

// insertBatchBytes bounds the chunk bytes of one insertMany.
const insertBatchBytes = 4 << 20

// ReadMode selects how ReadChunks fetches a range.
type ReadMode int

const (
	// ReadAuto uses ReadNatural against FerretDB and ReadSorted otherwise.
	ReadAuto ReadMode = iota
	// ReadSorted runs a Find sorted by seq (served by the index in MongoDB).
	ReadSorted
	// ReadNatural runs the same Find without a sort, relying on the
	// insertion order (checked while iterating).
	ReadNatural
)

// String returns the name of the mode.
func (m ReadMode) String() string {
	switch m {
	case ReadSorted:
		return "sorted"
	case ReadNatural:
		return "natural"
	default:
		return "auto"
	}
}

// Option configures Open.
type Option func(*config)

type config struct {
	database    string
	pingTimeout time.Duration
	opTimeout   time.Duration
	staleAfter  time.Duration
	readMode    ReadMode
	logger      *slog.Logger
}

// WithDatabase overrides the database named in the URI.
func WithDatabase(name string) Option { return func(c *config) { c.database = name } }

// WithPingTimeout bounds the connectivity check of Open (default 5 s).
func WithPingTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.pingTimeout = d
		}
	}
}

// WithOpTimeout bounds every single database operation — a lookup, one
// batch of a range read, one insert batch of a put (default 10 s) — so that
// callers fail instead of hanging while the server is unreachable. The
// caller's context can only shorten it.
func WithOpTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.opTimeout = d
		}
	}
}

// WithStaleAfter sets the age after which Open considers a staging record
// the leftover of a crashed put and cleans it (default 1 h; negative
// disables the cleanup at Open).
func WithStaleAfter(d time.Duration) Option { return func(c *config) { c.staleAfter = d } }

// WithReadMode forces how ranges are read (default ReadAuto).
func WithReadMode(m ReadMode) Option { return func(c *config) { c.readMode = m } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// Store is a store.Store on a MongoDB database. It is safe for concurrent use.
type Store struct {
	client    *mongo.Client
	db        *mongo.Database
	tracks    *mongo.Collection
	chunks    *mongo.Collection
	staging   *mongo.Collection
	covers    *mongo.Collection
	readMode  ReadMode // ReadSorted or ReadNatural
	opTimeout time.Duration
	log       *slog.Logger
}

// op returns ctx bounded by the operation timeout.
func (s *Store) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opTimeout)
}

var _ store.Store = (*Store)(nil)

// trackDoc is a document of the tracks collection.
type trackDoc struct {
	media.Manifest `bson:",inline"`
	Gen            string `bson:"gen"`
	ChunkCount     int    `bson:"chunk_count"`
}

// chunkDoc is a document of the chunks collection.
type chunkDoc struct {
	ID      string `bson:"_id"`
	TrackID string `bson:"track_id"`
	Gen     string `bson:"gen"`
	Seq     int    `bson:"seq"`
	Data    []byte `bson:"data"`
}

// stagingDoc is a document of the staging collection.
type stagingDoc struct {
	Gen       string    `bson:"_id"`
	TrackID   string    `bson:"track_id"`
	StartedAt time.Time `bson:"started_at"`
}

func chunkID(id, gen string, seq int) string { return fmt.Sprintf("%s/%s/%08x", id, gen, seq) }

// Open connects to the MongoDB server at uri, checks that it answers within
// the ping timeout, creates the indexes and cleans stale leftovers. The
// database is the URI's path, or DefaultDatabase.
func Open(ctx context.Context, uri string, opts ...Option) (*Store, error) {
	cfg := config{pingTimeout: 5 * time.Second, opTimeout: 10 * time.Second, staleAfter: time.Hour, logger: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	cs, err := connstring.Parse(uri)
	if err != nil {
		// The parser's message may quote the URI, which can hold a password.
		return nil, errors.New("mongostore: invalid MongoDB URI (not shown: it may contain credentials)")
	}
	hosts := strings.Join(cs.Hosts, ",")
	if cfg.database == "" {
		cfg.database = cs.Database
	}
	if cfg.database == "" {
		cfg.database = DefaultDatabase
	}
	// The driver's own timeouts stay at their defaults (a short connect
	// timeout breaks handshakes with a busy server); the ping context below
	// bounds how long Open waits for an unreachable server.
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return nil, fmt.Errorf("mongostore: connect to %s: %w", hosts, err)
	}
	s := &Store{client: client, db: client.Database(cfg.database), log: cfg.logger, readMode: cfg.readMode, opTimeout: cfg.opTimeout}
	s.tracks = s.db.Collection("tracks")
	s.chunks = s.db.Collection("chunks")
	s.staging = s.db.Collection("staging")
	s.covers = s.db.Collection("covers")
	if err := s.init(ctx, cfg, hosts); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

func (s *Store) init(ctx context.Context, cfg config, hosts string) error {
	pctx, cancel := context.WithTimeout(ctx, cfg.pingTimeout)
	defer cancel()
	if err := s.client.Ping(pctx, readpref.Primary()); err != nil {
		return fmt.Errorf("mongostore: cannot reach MongoDB at %s: %w", hosts, err)
	}
	if s.readMode == ReadAuto {
		s.readMode = ReadSorted
		var info bson.M
		err := s.db.RunCommand(pctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info)
		if err != nil {
			return fmt.Errorf("mongostore: buildInfo on %s: %w", hosts, err)
		}
		if _, ok := info["ferretdbVersion"]; ok {
			s.readMode = ReadNatural
		}
	}
	_, err := s.chunks.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "track_id", Value: 1}, {Key: "gen", Value: 1}, {Key: "seq", Value: 1}},
		Options: options.Index().SetUnique(true).SetName("track_gen_seq"),
	})
	if err != nil {
		return fmt.Errorf("mongostore: create chunks index: %w", err)
	}
	_, err = s.staging.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "track_id", Value: 1}},
		Options: options.Index().SetName("track_id"),
	})
	if err != nil {
		return fmt.Errorf("mongostore: create staging index: %w", err)
	}
	if cfg.staleAfter >= 0 {
		n, err := s.Cleanup(ctx, cfg.staleAfter)
		if err != nil {
			return err
		}
		if n > 0 {
			s.log.Warn("mongostore: removed the leftovers of interrupted puts", "puts", n)
		}
	}
	s.log.Debug("mongostore: opened", "hosts", hosts, "database", cfg.database, "read_mode", s.readMode.String())
	return nil
}

// ReadMode returns the range-read strategy in use (ReadSorted or ReadNatural).
func (s *Store) ReadMode() ReadMode { return s.readMode }

// cleanupContext returns a context for undoing a failed put even when ctx
// was cancelled.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// PutTrack stores m and its chunks under a new generation and commits by
// replacing the track document (see the package comment).
func (s *Store) PutTrack(ctx context.Context, m *media.Manifest, chunks store.ChunkSource) error {
	if err := store.ValidateManifest(m); err != nil {
		return fmt.Errorf("mongostore: put: %w", err)
	}
	gen := bson.NewObjectID().Hex()
	octx, cancel := s.op(ctx)
	_, err := s.staging.InsertOne(octx, stagingDoc{Gen: gen, TrackID: m.ID, StartedAt: time.Now().UTC()})
	cancel()
	if err != nil {
		return fmt.Errorf("mongostore: put %s: record staging: %w", m.ID, err)
	}
	if err := s.writeChunks(ctx, m, gen, chunks); err != nil {
		s.discard(ctx, m.ID, gen)
		return err
	}
	old, err := s.commit(ctx, m, gen)
	if err != nil {
		return err
	}
	// Committed: the rest is garbage collection; failures leave a staging
	// record that Cleanup handles later.
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	if old != "" && old != gen {
		if _, err := s.chunks.DeleteMany(cctx, bson.D{{Key: "track_id", Value: m.ID}, {Key: "gen", Value: old}}); err != nil {
			s.log.Error("mongostore: deleting the previous version's chunks", "track", m.ID, "err", err)
			return nil
		}
	}
	if _, err := s.staging.DeleteOne(cctx, bson.D{{Key: "_id", Value: gen}}); err != nil {
		s.log.Error("mongostore: deleting a staging record", "track", m.ID, "err", err)
	}
	return nil
}

// writeChunks reads, verifies and inserts every chunk of m under gen, in
// batches of at most readBatch chunks and insertBatchBytes bytes.
func (s *Store) writeChunks(ctx context.Context, m *media.Manifest, gen string, chunks store.ChunkSource) error {
	batch := make([]any, 0, readBatch)
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		octx, cancel := s.op(ctx)
		defer cancel()
		if _, err := s.chunks.InsertMany(octx, batch); err != nil {
			return fmt.Errorf("mongostore: put %s: insert chunks: %w", m.ID, err)
		}
		batch, size = batch[:0], 0
		return nil
	}
	for seq := range m.Chunks {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("mongostore: put %s: %w", m.ID, err)
		}
		data, err := chunks(seq)
		if err != nil {
			return fmt.Errorf("mongostore: put %s: read chunk %d: %w", m.ID, seq, err)
		}
		if err := store.CheckChunk(m, seq, data); err != nil {
			return fmt.Errorf("mongostore: put: %w", err)
		}
		if len(batch) > 0 && (len(batch) == readBatch || size+len(data) > insertBatchBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		// Marshalling happens in InsertMany, before the source can reuse data.
		batch = append(batch, chunkDoc{ID: chunkID(m.ID, gen, seq), TrackID: m.ID, Gen: gen, Seq: seq, Data: data})
		size += len(data)
	}
	return flush()
}

// commit makes generation gen of m visible by replacing the track document,
// and returns the generation it replaced ("" if none).
func (s *Store) commit(ctx context.Context, m *media.Manifest, gen string) (string, error) {
	if err := ctx.Err(); err != nil {
		s.discard(ctx, m.ID, gen)
		return "", fmt.Errorf("mongostore: put %s: %w", m.ID, err)
	}
	doc := trackDoc{Manifest: *m, Gen: gen, ChunkCount: len(m.Chunks)}
	var before struct {
		Gen string `bson:"gen"`
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	err := s.tracks.FindOneAndReplace(octx, bson.D{{Key: "_id", Value: m.ID}}, doc,
		// No projection: FerretDB v1 does not implement it for findAndModify.
		options.FindOneAndReplace().SetUpsert(true).SetReturnDocument(options.Before)).Decode(&before)
	if err == nil || errors.Is(err, mongo.ErrNoDocuments) {
		return before.Gen, nil
	}
	// The outcome is unknown (e.g. the connection broke after the write):
	// look before undoing, or a committed track would lose its chunks.
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	var cur struct {
		Gen string `bson:"gen"`
	}
	lerr := s.tracks.FindOne(cctx, bson.D{{Key: "_id", Value: m.ID}},
		options.FindOne().SetProjection(bson.D{{Key: "gen", Value: 1}})).Decode(&cur)
	switch {
	case lerr == nil && cur.Gen == gen:
		s.log.Warn("mongostore: commit reported an error but was applied", "track", m.ID, "err", err)
		return "", nil // the previous generation is left to Cleanup
	case lerr == nil || errors.Is(lerr, mongo.ErrNoDocuments):
		s.discard(ctx, m.ID, gen)
	default:
		s.log.Error("mongostore: commit outcome unknown; leaving it to Cleanup", "track", m.ID, "err", lerr)
	}
	return "", fmt.Errorf("mongostore: put %s: write track document: %w", m.ID, err)
}

// discard deletes the chunks and staging record of an uncommitted put.
func (s *Store) discard(ctx context.Context, id, gen string) {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	if _, err := s.chunks.DeleteMany(cctx, bson.D{{Key: "track_id", Value: id}, {Key: "gen", Value: gen}}); err != nil {
		s.log.Error("mongostore: cleaning up a failed put", "track", id, "err", err)
		return // keep the staging record so that Cleanup retries
	}
	if _, err := s.staging.DeleteOne(cctx, bson.D{{Key: "_id", Value: gen}}); err != nil {
		s.log.Error("mongostore: cleaning up a failed put", "track", id, "err", err)
	}
}

// Cleanup removes the leftovers of puts whose staging record is older than
// olderThan: the chunks of a generation that was never committed, or, for a
// committed one, the chunks of generations its track no longer uses. It
// returns the number of staging records processed. Open runs it; a caller
// may run it periodically. A put that takes longer than olderThan would be
// broken by it, so olderThan must be generous.
func (s *Store) Cleanup(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().UTC().Add(-olderThan)
	cur, err := s.staging.Find(ctx, bson.D{{Key: "started_at", Value: bson.D{{Key: "$lte", Value: cutoff}}}})
	if err != nil {
		return 0, fmt.Errorf("mongostore: cleanup: list staging: %w", err)
	}
	var stale []stagingDoc
	if err := cur.All(ctx, &stale); err != nil {
		return 0, fmt.Errorf("mongostore: cleanup: list staging: %w", err)
	}
	for _, st := range stale {
		var tr struct {
			Gen string `bson:"gen"`
		}
		err := s.tracks.FindOne(ctx, bson.D{{Key: "_id", Value: st.TrackID}},
			options.FindOne().SetProjection(bson.D{{Key: "gen", Value: 1}})).Decode(&tr)
		if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
			return 0, fmt.Errorf("mongostore: cleanup %s: %w", st.TrackID, err)
		}
		filter := bson.D{{Key: "track_id", Value: st.TrackID}, {Key: "gen", Value: st.Gen}}
		if tr.Gen == st.Gen {
			// Committed; delete the generations it replaced, sparing puts
			// of the same track still in progress.
			keep, err := s.activeGens(ctx, st.TrackID, st.Gen)
			if err != nil {
				return 0, err
			}
			filter = bson.D{{Key: "track_id", Value: st.TrackID}, {Key: "gen", Value: bson.D{{Key: "$nin", Value: append(keep, tr.Gen)}}}}
		}
		if _, err := s.chunks.DeleteMany(ctx, filter); err != nil {
			return 0, fmt.Errorf("mongostore: cleanup %s: delete chunks: %w", st.TrackID, err)
		}
		if _, err := s.staging.DeleteOne(ctx, bson.D{{Key: "_id", Value: st.Gen}}); err != nil {
			return 0, fmt.Errorf("mongostore: cleanup %s: delete staging: %w", st.TrackID, err)
		}
	}
	return len(stale), nil
}

// activeGens lists the generations of id being put, except skip.
func (s *Store) activeGens(ctx context.Context, id, skip string) ([]string, error) {
	cur, err := s.staging.Find(ctx, bson.D{{Key: "track_id", Value: id}})
	if err != nil {
		return nil, fmt.Errorf("mongostore: list staging of %s: %w", id, err)
	}
	var docs []stagingDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongostore: list staging of %s: %w", id, err)
	}
	gens := []string{}
	for _, d := range docs {
		if d.Gen != skip {
			gens = append(gens, d.Gen)
		}
	}
	return gens, nil
}

// ListTracks returns the catalog sorted by artist, album, title, id.
func (s *Store) ListTracks(ctx context.Context) ([]media.Summary, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	cur, err := s.tracks.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{
		{Key: "title", Value: 1}, {Key: "artist", Value: 1}, {Key: "album", Value: 1}, {Key: "duration_ms", Value: 1},
		{Key: "album_artist", Value: 1}, {Key: "year", Value: 1}, {Key: "track_no", Value: 1}, {Key: "disc_no", Value: 1},
		{Key: "cover.sha256", Value: 1},
	}))
	if err != nil {
		return nil, fmt.Errorf("mongostore: list: %w", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	list := []media.Summary{}
	for cur.Next(ctx) {
		var d struct {
			ID          string `bson:"_id"`
			Title       string `bson:"title"`
			Artist      string `bson:"artist"`
			Album       string `bson:"album"`
			AlbumArtist string `bson:"album_artist"`
			Year        int    `bson:"year"`
			TrackNo     int    `bson:"track_no"`
			DiscNo      int    `bson:"disc_no"`
			Cover       *struct {
				SHA256 string `bson:"sha256"`
			} `bson:"cover"`
			DurationMS int64 `bson:"duration_ms"`
		}
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("mongostore: list: decode: %w", err)
		}
		e := media.Summary{ID: d.ID, Title: d.Title, Artist: d.Artist, Album: d.Album, AlbumArtist: d.AlbumArtist,
			Year: d.Year, TrackNo: d.TrackNo, DiscNo: d.DiscNo, DurationMS: d.DurationMS}
		if d.Cover != nil {
			e.Cover = d.Cover.SHA256
		}
		list = append(list, e)
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("mongostore: list: %w", err)
	}
	store.SortSummaries(list)
	return list, nil
}

// coverDoc is a document of the covers collection.
type coverDoc struct {
	SHA256 string `bson:"_id"`
	MIME   string `bson:"mime"`
	Data   []byte `bson:"data"`
}

// PutCover stores a cover picture under its SHA-256; one that is there
// already is left as it is.
func (s *Store) PutCover(ctx context.Context, c media.CoverRef, data []byte) error {
	if err := store.ValidateCover(c, data); err != nil {
		return fmt.Errorf("mongostore: %w", err)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.covers.UpdateOne(ctx, bson.D{{Key: "_id", Value: c.SHA256}},
		bson.D{{Key: "$setOnInsert", Value: coverDoc{SHA256: c.SHA256, MIME: c.MIME, Data: data}}},
		options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		return nil // another put of the same picture won the race
	}
	if err != nil {
		return fmt.Errorf("mongostore: put cover %s: %w", c.SHA256, err)
	}
	return nil
}

// Cover returns the picture stored under sha and its content type, or an
// error wrapping store.ErrNotFound.
func (s *Store) Cover(ctx context.Context, sha string) (string, []byte, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var d coverDoc
	err := s.covers.FindOne(ctx, bson.D{{Key: "_id", Value: sha}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", nil, fmt.Errorf("mongostore: cover %q: %w", sha, store.ErrNotFound)
	}
	if err != nil {
		return "", nil, fmt.Errorf("mongostore: cover %q: %w", sha, err)
	}
	return d.MIME, d.Data, nil
}

// Manifest returns the manifest of track id, or an error wrapping store.ErrNotFound.
func (s *Store) Manifest(ctx context.Context, id string) (*media.Manifest, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var d trackDoc
	err := s.tracks.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("mongostore: manifest %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("mongostore: manifest %q: %w", id, err)
	}
	return &d.Manifest, nil
}

// ReadChunks streams chunks [from, to) of track id.
func (s *Store) ReadChunks(ctx context.Context, id string, from, to int) (store.ChunkIterator, error) {
	var tr struct {
		Gen        string `bson:"gen"`
		ChunkCount int    `bson:"chunk_count"`
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	err := s.tracks.FindOne(octx, bson.D{{Key: "_id", Value: id}},
		options.FindOne().SetProjection(bson.D{{Key: "gen", Value: 1}, {Key: "chunk_count", Value: 1}})).Decode(&tr)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("mongostore: read %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("mongostore: read %q: %w", id, err)
	}
	if err := store.CheckRange(id, tr.ChunkCount, from, to); err != nil {
		return nil, fmt.Errorf("mongostore: read: %w", err)
	}
	filter := bson.D{
		{Key: "track_id", Value: id}, {Key: "gen", Value: tr.Gen},
		{Key: "seq", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lt", Value: to}}},
	}
	fo := options.Find().SetBatchSize(readBatch).
		SetProjection(bson.D{{Key: "_id", Value: 0}, {Key: "seq", Value: 1}, {Key: "data", Value: 1}})
	if s.readMode != ReadNatural {
		fo.SetSort(bson.D{{Key: "seq", Value: 1}})
	}
	cur, err := s.chunks.Find(octx, filter, fo)
	if err != nil {
		return nil, fmt.Errorf("mongostore: read %s: find chunks: %w", id, err)
	}
	return &iterator{ctx: ctx, opTimeout: s.opTimeout, id: id, next: from, to: to, cur: cur}, nil
}

// iterator yields the chunks of a Find cursor, checking their order.
type iterator struct {
	ctx       context.Context
	opTimeout time.Duration // bounds each Next
	id        string
	next      int
	to        int
	cur       *mongo.Cursor // nil once released
	chunk     store.Chunk
	err       error
	closed    bool
}

func (it *iterator) Next() bool {
	if it.err != nil || it.closed || it.next >= it.to {
		it.release()
		return false
	}
	if err := it.ctx.Err(); err != nil {
		it.fail(fmt.Errorf("mongostore: read %s: %w", it.id, err))
		return false
	}
	nctx, cancel := context.WithTimeout(it.ctx, it.opTimeout)
	defer cancel()
	if !it.cur.Next(nctx) {
		if err := it.cur.Err(); err != nil {
			it.fail(fmt.Errorf("mongostore: read %s: %w", it.id, err))
		} else {
			it.fail(it.missing())
		}
		return false
	}
	var d struct {
		Seq  int    `bson:"seq"`
		Data []byte `bson:"data"`
	}
	// Decoding copies the bytes out of the batch: Data stays valid after Next.
	if err := it.cur.Decode(&d); err != nil {
		it.fail(fmt.Errorf("mongostore: read %s: decode chunk: %w", it.id, err))
		return false
	}
	if d.Seq != it.next {
		it.fail(fmt.Errorf("mongostore: read %s: got chunk %d where %d was expected: %w",
			it.id, d.Seq, it.next, it.missing()))
		return false
	}
	it.chunk = store.Chunk{Seq: d.Seq, Data: d.Data}
	it.next++
	return true
}

func (it *iterator) missing() error {
	return fmt.Errorf("mongostore: read %s: chunk %d missing (track deleted or replaced during the read?): %w",
		it.id, it.next, store.ErrNotFound)
}

func (it *iterator) fail(err error) {
	it.err = err
	it.release()
}

func (it *iterator) release() {
	if it.cur != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(it.ctx), 5*time.Second)
		defer cancel()
		_ = it.cur.Close(ctx)
		it.cur = nil
	}
}

func (it *iterator) Chunk() store.Chunk { return it.chunk }

func (it *iterator) Err() error { return it.err }

func (it *iterator) Close() error {
	it.closed = true
	it.release()
	return nil
}

// DeleteTrack removes track id and its chunks, sparing puts of the same id
// in progress.
func (s *Store) DeleteTrack(ctx context.Context, id string) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var d struct {
		Gen string `bson:"gen"`
	}
	// No projection: FerretDB v1 does not implement it for findAndModify.
	err := s.tracks.FindOneAndDelete(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("mongostore: delete %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("mongostore: delete %q: %w", id, err)
	}
	keep, err := s.activeGens(ctx, id, "")
	if err != nil {
		return fmt.Errorf("mongostore: delete %q: %w", id, err)
	}
	filter := bson.D{{Key: "track_id", Value: id}, {Key: "gen", Value: bson.D{{Key: "$nin", Value: keep}}}}
	if _, err := s.chunks.DeleteMany(ctx, filter); err != nil {
		return fmt.Errorf("mongostore: delete %q: chunks: %w", id, err)
	}
	return nil
}

// ChunkRecords returns the number of chunk documents stored under id,
// including leftovers not referenced by a track (for diagnostics and tests).
func (s *Store) ChunkRecords(ctx context.Context, id string) (int, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	n, err := s.chunks.CountDocuments(ctx, bson.D{{Key: "track_id", Value: id}})
	if err != nil {
		return 0, fmt.Errorf("mongostore: count chunks of %s: %w", id, err)
	}
	return int(n), nil
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("mongostore: ping: %w", err)
	}
	return nil
}

// Close disconnects from the server.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("mongostore: close: %w", err)
	}
	return nil
}

// Drop deletes the store's whole database. It is meant for tests and tools.
func (s *Store) Drop(ctx context.Context) error {
	if err := s.db.Drop(ctx); err != nil {
		return fmt.Errorf("mongostore: drop database: %w", err)
	}
	return nil
}
