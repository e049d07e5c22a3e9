package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/ztream/ztream/ingest"
)

func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: ztream ingest [--data DIR | --mongo URI] FILE|DIR...\n\nAdds MP3 files (directories are searched recursively for *.mp3) to the library.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	files, err := ingest.FindFiles(fs.Args())
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no .mp3 files found in %v", fs.Args())
	}
	st, desc, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(stderr, "ingesting %d files into the %s\n", len(files), desc)
	sum, err := ingest.Run(ctx, st, ingest.FileSources(files), progressPrinter(stdout, stderr))
	ingest.WriteSummary(stdout, sum)
	if err != nil {
		return err
	}
	if sum.Failed > 0 {
		return fmt.Errorf("%d of %d files failed", sum.Failed, len(files))
	}
	return nil
}

// progressPrinter prints one line per finished file to stdout and, when
// stderr is a terminal, a progress bar there (files done, rate, time left),
// cleared before each line. Piped, the output stays lines only.
func progressPrinter(stdout, stderr io.Writer) ingest.Progress {
	live := isTerminal(stderr)
	var bar *progressbar.ProgressBar
	return func(done, total int, r *ingest.Result) {
		if live && bar == nil {
			bar = progressbar.NewOptions(total,
				progressbar.OptionSetWriter(stderr),
				progressbar.OptionSetDescription("ingesting"),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("files"),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
				progressbar.OptionSetWidth(30))
		}
		if r.Manifest == nil && r.Err == nil {
			return // starting this file
		}
		if bar != nil {
			_ = bar.Clear()
		}
		switch {
		case r.Err != nil:
			fmt.Fprintf(stdout, "[%d/%d] FAILED  %v\n", done, total, r.Err)
		default:
			m := r.Manifest
			state := "stored "
			if r.Existed {
				state = "present"
			}
			cover := ""
			if m.Cover != nil {
				cover = fmt.Sprintf(", cover %s %d KiB", strings.TrimPrefix(m.Cover.MIME, "image/"), (m.Cover.Size+1023)/1024)
			}
			fmt.Fprintf(stdout, "[%d/%d] %s %s  %s — %s (%s, %d kbit/s, %d chunks%s)\n", done, total, state, m.ID,
				m.Artist, m.Title, (time.Duration(m.DurationMS) * time.Millisecond).Round(time.Second), m.Bitrate, len(m.Chunks), cover)
		}
		for _, w := range r.Warnings {
			fmt.Fprintf(stdout, "[%d/%d] WARNING %s: %s\n", done, total, r.Path, w)
		}
		if bar != nil {
			_ = bar.Set(done)
		}
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
