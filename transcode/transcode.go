// Package transcode turns audio files that are not MP3 (FLAC, M4A with AAC
// or ALAC, Ogg Vorbis, Opus, WAV) into MP3 through an ffmpeg subprocess, the
// way Navidrome and Jellyfin use it: ffprobe reads what the file holds,
// ffmpeg encodes it with LAME at a constant bitrate and writes the LAME
// header (encoder delay and padding) that gapless playback needs, keeping
// the tags and the embedded cover.
//
// A Transcoder bounds what a hostile file can cost: at most Jobs ffmpeg
// processes at a time, a timeout per file, a bound on the output's size.
// Programs are started without a shell; paths reach them as "file:" URLs of
// absolute paths, so a name with spaces, quotes or a leading dash is never
// read as an option or as another protocol, and the input's demuxer is fixed
// by its extension (a playlist format cannot make ffmpeg open other files).
package transcode

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultBitrate   = 256              // kbit/s
	DefaultTimeout   = 10 * time.Minute // per file
	DefaultMaxOutput = 512 << 20        // bytes: 4.6 h at 256 kbit/s
	probeTimeout     = 30 * time.Second // ffprobe reads headers only
	maxProbeOutput   = 1 << 20          // bytes of ffprobe's JSON
	stderrTail       = 2048             // bytes of ffmpeg's messages kept for an error
	killGrace        = 5 * time.Second  // after a timeout, before Wait gives up on pipes
	maxSourceRate    = 48000            // Hz: MPEG-1 Layer III's highest
	minSourceRate    = 8000             // Hz: MPEG-2.5's lowest
	mp3Channels      = 2                // LAME encodes mono or stereo
	defaultJobsFloor = 1                // at least one process
	outputName       = "transcoded.mp3" // inside the job's temporary directory
	tempPattern      = "ztream-transcode-*"
)

// ErrNotFound is wrapped by New's error when ffmpeg or ffprobe cannot be
// found.
var ErrNotFound = errors.New("ffmpeg not found")

// Config configures a Transcoder. The zero value finds ffmpeg on PATH and
// uses the defaults.
type Config struct {
	// FFmpeg is the ffmpeg program: a path, or a name looked up on PATH
	// ("" = "ffmpeg"). ffprobe is taken from the same directory, else from
	// PATH.
	FFmpeg string
	// Bitrate is the MP3's constant bitrate in kbit/s (0 = DefaultBitrate).
	Bitrate int
	// Jobs bounds the ffmpeg and ffprobe processes running at once
	// (0 = the number of cores).
	Jobs int
	// Timeout bounds one file's transcode (0 = DefaultTimeout).
	Timeout time.Duration
	// MaxOutput bounds the MP3's size in bytes (0 = DefaultMaxOutput): a
	// file whose output reaches it is cut off and refused.
	MaxOutput int64
	// TempDir holds the MP3s while they are stored ("" = os.TempDir()).
	TempDir string
}

// Transcoder runs ffmpeg. It is safe for concurrent use.
type Transcoder struct {
	cfg     Config
	ffmpeg  string
	ffprobe string
	slots   chan struct{}
}

// New finds ffmpeg and ffprobe and returns a Transcoder, or an error
// wrapping ErrNotFound that says how to install them.
func New(cfg Config) (*Transcoder, error) {
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	if cfg.Bitrate == 0 {
		cfg.Bitrate = DefaultBitrate
	}
	if !validBitrate(cfg.Bitrate) {
		return nil, fmt.Errorf("transcode: bitrate %d kbit/s is not an MPEG-1 Layer III bitrate (%s)", cfg.Bitrate, bitratesText())
	}
	if cfg.Jobs <= 0 {
		cfg.Jobs = max(runtime.NumCPU(), defaultJobsFloor)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxOutput <= 0 {
		cfg.MaxOutput = DefaultMaxOutput
	}
	ffmpeg, err := exec.LookPath(cfg.FFmpeg)
	if err != nil {
		return nil, fmt.Errorf("transcode: %w (%s): install the Debian package ffmpeg or pass --ffmpeg PATH", ErrNotFound, err)
	}
	ffprobe, err := exec.LookPath(filepath.Join(filepath.Dir(ffmpeg), "ffprobe"))
	if err != nil {
		if ffprobe, err = exec.LookPath("ffprobe"); err != nil {
			return nil, fmt.Errorf("transcode: %w: ffprobe is not beside %s nor on PATH", ErrNotFound, ffmpeg)
		}
	}
	return &Transcoder{cfg: cfg, ffmpeg: ffmpeg, ffprobe: ffprobe, slots: make(chan struct{}, cfg.Jobs)}, nil
}

// mp3Bitrates are MPEG-1 Layer III's bitrates in kbit/s (free format
// excluded).
var mp3Bitrates = [...]int{32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}

func validBitrate(kbps int) bool {
	for _, b := range mp3Bitrates {
		if b == kbps {
			return true
		}
	}
	return false
}

func bitratesText() string {
	s := make([]string, len(mp3Bitrates))
	for i, b := range mp3Bitrates {
		s[i] = strconv.Itoa(b)
	}
	return strings.Join(s, ", ")
}

// ParseBitrate reads a bitrate such as "256k", "256" or "320000" as kbit/s
// and checks that MP3 has it.
func ParseBitrate(s string) (int, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	scale := 1
	switch {
	case strings.HasSuffix(t, "k"):
		t = strings.TrimSuffix(t, "k")
	default:
		if n, err := strconv.Atoi(t); err == nil && n >= 1000 {
			scale = 1000
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return 0, fmt.Errorf("bitrate %q: want kbit/s such as 256k", s)
	}
	n /= scale
	if !validBitrate(n) {
		return 0, fmt.Errorf("bitrate %q: MP3 has %s kbit/s", s, bitratesText())
	}
	return n, nil
}

// Bitrate returns the MP3 bitrate in kbit/s.
func (t *Transcoder) Bitrate() int { return t.cfg.Bitrate }

// FFmpeg returns the path of the ffmpeg program in use.
func (t *Transcoder) FFmpeg() string { return t.ffmpeg }

// inputs maps the extensions taken for transcoding to ffmpeg's demuxer and a
// name for messages.
var inputs = map[string]struct{ demuxer, name string }{
	".flac": {"flac", "FLAC"},
	".m4a":  {"mov", "M4A"},
	".ogg":  {"ogg", "Ogg"},
	".oga":  {"ogg", "Ogg"},
	".opus": {"ogg", "Opus"},
	".wav":  {"wav", "WAV"},
}

// Extensions lists the file extensions (lowercase, with the dot) taken for
// transcoding, sorted.
func Extensions() []string { return slices.Sorted(maps.Keys(inputs)) }

// FormatOf returns the name of name's format by its extension ("FLAC",
// "M4A", "Ogg", "Opus", "WAV"), or "" when name is not taken for
// transcoding.
func FormatOf(name string) string {
	return inputs[strings.ToLower(filepath.Ext(name))].name
}

// Source describes the file a transcoded track was made from, as probed.
type Source struct {
	// Format is the audio codec as ffprobe names it: flac, aac, alac,
	// vorbis, opus, pcm_s16le...
	Format string
	// Bitrate is the source's average bitrate in kbit/s (its audio stream's,
	// else the whole file's over its duration); 0 when unknown.
	Bitrate    int
	SampleRate int
	Channels   int
	// Duration is the audio stream's duration as the container states it.
	Duration time.Duration
}

// Output is an MP3 made by Transcode, in a temporary file that Close
// removes.
type Output struct {
	// Path is the MP3 file.
	Path string
	// Source is what the input held.
	Source Source
	// Warnings name what was dropped (an unsupported cover, extra channels).
	Warnings []string
	dir      string
}

// Close removes the MP3 and its directory.
func (o *Output) Close() error {
	if err := os.RemoveAll(o.dir); err != nil {
		return fmt.Errorf("transcode: removing %s: %w", o.dir, err)
	}
	return nil
}

// audioCodecs are the codecs taken from the inputs' containers.
func audioCodec(c string) bool {
	switch c {
	case "flac", "aac", "alac", "vorbis", "opus", "mp3":
		return true
	}
	return strings.HasPrefix(c, "pcm_")
}

// coverCodecs are the pictures an ID3v2 APIC frame keeps as they are.
func coverCodec(c string) bool { return c == "mjpeg" || c == "png" }

// Transcode encodes the audio file at path as an MP3. Its format is chosen
// by its extension (FormatOf must know it). It waits for a free job slot,
// probes the file, runs ffmpeg with the timeout and the output bound, and
// returns the MP3. Errors name the file and say why.
func (t *Transcoder) Transcode(ctx context.Context, path string) (*Output, error) {
	in, ok := inputs[strings.ToLower(filepath.Ext(path))]
	if !ok {
		return nil, fmt.Errorf("%s: not a format to transcode (%s)", path, strings.Join(Extensions(), ", "))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: waiting to transcode: %w", path, ctx.Err())
	}
	defer func() { <-t.slots }()
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()

	p, err := t.probe(ctx, in.demuxer, abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dir, err := os.MkdirTemp(t.cfg.TempDir, tempPattern)
	if err != nil {
		return nil, fmt.Errorf("%s: transcode: %w", path, err)
	}
	out := &Output{Path: filepath.Join(dir, outputName), Source: p.source, dir: dir}
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "error",
		"-protocol_whitelist", "file", "-f", in.demuxer, "-i", "file:" + abs,
		"-map", "0:" + strconv.Itoa(p.audio)}
	if p.cover >= 0 {
		args = append(args, "-map", "0:"+strconv.Itoa(p.cover), "-c:v", "copy", "-disposition:v:0", "attached_pic")
	} else if p.coverWarning != "" {
		out.Warnings = append(out.Warnings, p.coverWarning)
	}
	args = append(args, "-map_metadata", p.metadata, "-map_chapters", "-1",
		"-c:a", "libmp3lame", "-b:a", strconv.Itoa(t.cfg.Bitrate)+"k")
	if r := mp3Rate(p.source.SampleRate); r != p.source.SampleRate {
		args = append(args, "-ar", strconv.Itoa(r))
	}
	if p.source.Format == "aac" && p.source.Duration > 0 {
		// The AAC decoder keeps the encoder's padding at the end (up to a
		// frame, 23 ms); the container's duration says where the audio
		// ends: cut there, or an album would not play gaplessly.
		args = append(args, "-t", strconv.FormatFloat(p.source.Duration.Seconds(), 'f', 6, 64))
	}
	if p.source.Channels > mp3Channels {
		args = append(args, "-ac", strconv.Itoa(mp3Channels))
		out.Warnings = append(out.Warnings, fmt.Sprintf("%d channels mixed down to stereo", p.source.Channels))
	}
	args = append(args, "-id3v2_version", "3", "-write_xing", "1",
		"-fs", strconv.FormatInt(t.cfg.MaxOutput, 10), "-f", "mp3", "-y", "file:"+out.Path)
	if err := t.run(ctx, t.ffmpeg, args, nil); err != nil {
		out.Close()
		return nil, fmt.Errorf("%s: ffmpeg: %w", path, err)
	}
	info, err := os.Stat(out.Path)
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("%s: ffmpeg wrote no output: %w", path, err)
	}
	if info.Size() >= t.cfg.MaxOutput {
		out.Close()
		return nil, fmt.Errorf("%s: the MP3 reached the output bound of %d MB: cut off and refused", path, t.cfg.MaxOutput>>20)
	}
	return out, nil
}

// mp3Rate returns the sample rate to encode a source of rate Hz at: its own
// when MP3 has it, else 44.1 kHz for its multiples and 48 kHz otherwise.
func mp3Rate(rate int) int {
	switch rate {
	case 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000:
		return rate
	}
	if rate > maxSourceRate && rate%44100 == 0 {
		return 44100
	}
	if rate < minSourceRate {
		return minSourceRate
	}
	return maxSourceRate
}

// probed is what ffprobe says of a file.
type probed struct {
	source       Source
	audio        int // stream index of the audio
	cover        int // stream index of the cover picture, -1 without
	coverWarning string
	// metadata is -map_metadata's source: the file's tags, or the audio
	// stream's where the container keeps them there (Ogg, Opus).
	metadata string
}

// probeJSON is the part of `ffprobe -print_format json -show_streams
// -show_format` read here.
type probeJSON struct {
	Streams []struct {
		Index       int               `json:"index"`
		CodecName   string            `json:"codec_name"`
		CodecType   string            `json:"codec_type"`
		SampleRate  string            `json:"sample_rate"`
		Channels    int               `json:"channels"`
		BitRate     string            `json:"bit_rate"`
		Duration    string            `json:"duration"`
		Tags        map[string]string `json:"tags"`
		Disposition struct {
			AttachedPic int `json:"attached_pic"`
		} `json:"disposition"`
	} `json:"streams"`
	Format struct {
		Duration string            `json:"duration"`
		BitRate  string            `json:"bit_rate"`
		Tags     map[string]string `json:"tags"`
	} `json:"format"`
}

func (t *Transcoder) probe(ctx context.Context, demuxer, abs string) (*probed, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var stdout bytes.Buffer
	args := []string{"-v", "error", "-protocol_whitelist", "file", "-f", demuxer,
		"-print_format", "json", "-show_streams", "-show_format", "file:" + abs}
	if err := t.run(ctx, t.ffprobe, args, &limitedBuffer{buf: &stdout, max: maxProbeOutput}); err != nil {
		return nil, fmt.Errorf("ffprobe: %w", err)
	}
	var pj probeJSON
	if err := json.Unmarshal(stdout.Bytes(), &pj); err != nil {
		return nil, fmt.Errorf("ffprobe: reading its report: %w", err)
	}
	p := &probed{audio: -1, cover: -1}
	for _, s := range pj.Streams {
		switch {
		case s.CodecType == "audio" && p.audio < 0:
			if !audioCodec(s.CodecName) {
				return nil, fmt.Errorf("audio codec %q is not one Ztream transcodes (FLAC, AAC, ALAC, Vorbis, Opus, PCM)", s.CodecName)
			}
			p.audio = s.Index
			rate, _ := strconv.Atoi(s.SampleRate)
			p.source = Source{Format: s.CodecName, SampleRate: rate, Channels: s.Channels,
				Bitrate: kbps(s.BitRate), Duration: seconds(s.Duration)}
			p.metadata = "0"
			if len(pj.Format.Tags) == 0 && len(s.Tags) > 0 {
				p.metadata = "0:s:" + strconv.Itoa(s.Index)
			}
		case s.CodecType == "video" && s.Disposition.AttachedPic == 1 && p.cover < 0:
			if coverCodec(s.CodecName) {
				p.cover = s.Index
				p.coverWarning = ""
			} else {
				p.coverWarning = fmt.Sprintf("cover in %s left out (an MP3 keeps JPEG or PNG)", s.CodecName)
			}
		}
	}
	if p.audio < 0 {
		return nil, errors.New("no audio stream")
	}
	if p.source.SampleRate <= 0 || p.source.Channels <= 0 {
		return nil, fmt.Errorf("audio stream without a sample rate or channels (%d Hz, %d channels)", p.source.SampleRate, p.source.Channels)
	}
	if p.source.Bitrate == 0 {
		p.source.Bitrate = kbps(pj.Format.BitRate)
	}
	if p.source.Duration == 0 {
		p.source.Duration = seconds(pj.Format.Duration)
	}
	return p, nil
}

func kbps(bps string) int {
	n, err := strconv.ParseInt(bps, 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return int((n + 500) / 1000)
}

func seconds(s string) time.Duration {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f > 1e6 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// run runs program with args (no shell), stdout into w (discarded when nil),
// killed when ctx ends. Its error carries the tail of the program's messages
// and says when the timeout cut it off.
func (t *Transcoder) run(ctx context.Context, program string, args []string, w io.Writer) error {
	start := time.Now()
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Stdin = nil
	cmd.Stdout = w
	var stderr tailBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = killGrace
	err := cmd.Run()
	if err == nil {
		if lb, ok := w.(*limitedBuffer); ok && lb.over {
			return fmt.Errorf("its report exceeds %d bytes", lb.max)
		}
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return fmt.Errorf("did not finish in time: cut off after %s (the timeout per file is %s)",
				time.Since(start).Round(100*time.Millisecond), t.cfg.Timeout)
		}
		return ctxErr
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, msg)
}

// tailBuffer keeps the last stderrTail bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > stderrTail {
		t.b = append(t.b[:0], t.b[len(t.b)-stderrTail:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	lines := strings.Split(strings.TrimSpace(string(t.b)), "\n")
	return strings.Join(lines[max(0, len(lines)-3):], "; ")
}

// limitedBuffer keeps up to max bytes and notes that more came.
type limitedBuffer struct {
	buf  *bytes.Buffer
	max  int
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); len(p) > room {
		l.over = true
		l.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return l.buf.Write(p)
}

// TrackID returns the track id of the MP3 made from a source file whose
// SHA-256 is sourceSHA (lowercase hex) at bitrate kbit/s: 32 hex digits,
// like an MP3's id, but derived from the source, so that re-ingesting the
// same file finds its track without transcoding it again, and a changed file
// or bitrate makes a new track.
func TrackID(sourceSHA string, bitrate int) string {
	sum := sha256.Sum256([]byte("ztream transcode v1\x00" + sourceSHA + "\x00" + strconv.Itoa(bitrate)))
	return hex.EncodeToString(sum[:16])
}

// HashFile returns the lowercase hex SHA-256 of the file at path and its
// size.
func HashFile(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return "", 0, fmt.Errorf("%s: reading: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ctxReader stops a long read when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
