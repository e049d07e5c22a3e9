package main

import (
	"flag"
	"fmt"

	"github.com/ztream/ztream/transcode"
)

// transcodeFlags configure the transcoder that ingest and the music folder
// use for FLAC, M4A, Ogg Vorbis, Opus and WAV.
type transcodeFlags struct {
	ffmpeg  string
	bitrate string
	cfg     transcode.Config
}

func (t *transcodeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.ffmpeg, "ffmpeg", envOr("ZTREAM_FFMPEG", ""),
		"ffmpeg program for FLAC, M4A, Ogg, Opus and WAV files (ffprobe beside it); default: ffmpeg on PATH, those formats skipped without it (env ZTREAM_FFMPEG)")
	fs.StringVar(&t.bitrate, "transcode-bitrate", envOr("ZTREAM_TRANSCODE_BITRATE", "256k"),
		"constant bitrate of the MP3s made from other formats (env ZTREAM_TRANSCODE_BITRATE)")
	fs.IntVar(&t.cfg.Jobs, "transcode-jobs", envInt("ZTREAM_TRANSCODE_JOBS", 0),
		"most ffmpeg processes at once; 0: the number of cores (env ZTREAM_TRANSCODE_JOBS)")
	fs.DurationVar(&t.cfg.Timeout, "transcode-timeout", envDuration("ZTREAM_TRANSCODE_TIMEOUT", transcode.DefaultTimeout),
		"longest one file's transcode may take before it is cut off (env ZTREAM_TRANSCODE_TIMEOUT)")
}

// open returns the transcoder. When ffmpeg was not asked for by --ffmpeg
// and is not on PATH, it returns nil and the reason (not an error: MP3s
// still ingest); a bad flag or a missing --ffmpeg program is an error.
func (t *transcodeFlags) open() (tc *transcode.Transcoder, missing, err error) {
	kbps, err := transcode.ParseBitrate(t.bitrate)
	if err != nil {
		return nil, nil, fmt.Errorf("--transcode-bitrate: %w", err)
	}
	cfg := t.cfg
	cfg.Bitrate, cfg.FFmpeg = kbps, t.ffmpeg
	tc, err = transcode.New(cfg)
	if err != nil {
		if t.ffmpeg != "" {
			return nil, nil, fmt.Errorf("--ffmpeg %s: %w", t.ffmpeg, err)
		}
		return nil, err, nil
	}
	return tc, nil, nil
}
