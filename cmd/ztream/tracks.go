package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

func runTracks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tracks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	asJSON := fs.Bool("json", false, "print the list as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	st, _, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	tracks, err := st.ListTracks(ctx)
	if err != nil {
		return fmt.Errorf("listing tracks: %w", err)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(tracks)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tARTIST\tALBUM\tTITLE\tDURATION")
	var total time.Duration
	for _, t := range tracks {
		d := time.Duration(t.DurationMS) * time.Millisecond
		total += d
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Artist, t.Album, t.Title, d.Round(time.Second))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d tracks, %s\n", len(tracks), total.Round(time.Second))
	return nil
}
