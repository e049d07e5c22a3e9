package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/ztream/ztream/ingest"
	"github.com/ztream/ztream/transcode"
)

func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	var tf transcodeFlags
	tf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: ztream ingest [--data DIR | --mongo URI] [--ffmpeg PATH] FILE|DIR...\n\n"+
			"Adds audio files to the library (directories are searched recursively). MP3s are stored as they are;\n"+
			"FLAC, M4A (AAC, ALAC), Ogg Vorbis, Opus and WAV are transcoded to MP3 with ffmpeg first.")
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
		return fmt.Errorf("no audio files (.mp3, %s) found in %v", strings.Join(transcode.Extensions(), ", "), fs.Args())
	}
	tc, missing, err := tf.open()
	if err != nil {
		return err
	}
	st, desc, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(stderr, "ingesting %d files into the %s\n", len(files), desc)
	if tc != nil {
		fmt.Fprintf(stderr, "transcoding other formats with %s at %d kbit/s\n", tc.FFmpeg(), tc.Bitrate())
	}
	run := ingest.Config{Store: st, Transcoder: tc, NoTranscoder: missing, Progress: progressPrinter(stdout, stderr)}
	sum, err := run.Run(ctx, ingest.FileSources(files))
	ingest.WriteSummary(stdout, sum)
	if err != nil {
		return err
	}
	if failed := sum.Failed - sum.NoTranscoder; failed > 0 {
		return fmt.Errorf("%d of %d files failed", failed, len(files))
	}
	if sum.NoTranscoder > 0 {
		return fmt.Errorf("%d of %d files skipped: they need ffmpeg", sum.NoTranscoder, len(files))
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
		case errors.Is(r.Err, ingest.ErrNoTranscoder):
			fmt.Fprintf(stdout, "[%d/%d] SKIPPED %s: %s needs ffmpeg\n", done, total, r.Path, r.Format)
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
			from := ""
			if src := m.Source; src != nil {
				verb := "from"
				if r.Transcoded {
					verb = "transcoded from"
				}
				from = fmt.Sprintf(", %s %s %d kbit/s", verb, src.Format, src.Bitrate)
			}
			fmt.Fprintf(stdout, "[%d/%d] %s %s  %s — %s (%s, %d kbit/s, %d chunks%s%s)\n", done, total, state, m.ID,
				m.Artist, m.Title, (time.Duration(m.DurationMS) * time.Millisecond).Round(time.Second), m.Bitrate, len(m.Chunks), cover, from)
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
