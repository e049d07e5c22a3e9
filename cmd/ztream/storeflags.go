package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/ztream/ztream/boltstore"
	"github.com/ztream/ztream/mongostore"
	"github.com/ztream/ztream/store"
)

// storeFlags selects the track store: MongoDB when a URI is given, else the
// embedded store in a data directory.
type storeFlags struct {
	data  string
	mongo string
}

func (s *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.data, "data", envOr("ZTREAM_DATA", "./ztream-data"),
		"directory of the embedded store (env ZTREAM_DATA)")
	fs.StringVar(&s.mongo, "mongo", envOr("ZTREAM_MONGO_URI", ""),
		"MongoDB URI, e.g. mongodb://host:27017/ztream; overrides --data (env ZTREAM_MONGO_URI)")
}

// open opens the selected store and says which in desc.
func (s *storeFlags) open(ctx context.Context) (st store.Store, desc string, err error) {
	if s.mongo != "" {
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		ms, err := mongostore.Open(ctx, s.mongo)
		if err != nil {
			return nil, "", err
		}
		return ms, "MongoDB", nil
	}
	bs, err := boltstore.Open(s.data)
	if err != nil {
		return nil, "", err
	}
	return bs, fmt.Sprintf("embedded store in %s", s.data), nil
}
