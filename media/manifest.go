package media

// MIMEType is the MIME type of every track Ztream stores: raw MPEG audio frames.
const MIMEType = "audio/mpeg"

// Manifest describes one ingested track: its catalog metadata, the integers
// needed to map chunks to time, the gapless trim values and one entry per chunk.
// The manifest is what a peer needs to play a track and to verify every chunk
// it receives from another peer.
type Manifest struct {
	// ID is stable and derived from the audio bytes (hex of a SHA-256 prefix),
	// so ingesting the same audio twice yields the same track. A transcoded
	// track's ID is derived from its source file instead (Source).
	ID     string `json:"id" bson:"_id"`
	Title  string `json:"title" bson:"title"`
	Artist string `json:"artist" bson:"artist"`
	Album  string `json:"album" bson:"album"`
	// AlbumArtist (TPE2), Year, TrackNo and DiscNo come from the tags; 0 or
	// "" when absent.
	AlbumArtist string `json:"album_artist,omitempty" bson:"album_artist,omitempty"`
	Year        int    `json:"year,omitempty" bson:"year,omitempty"`
	TrackNo     int    `json:"track_no,omitempty" bson:"track_no,omitempty"`
	DiscNo      int    `json:"disc_no,omitempty" bson:"disc_no,omitempty"`
	// Cover describes the track's cover art, if its file had one; the
	// picture itself is in the store under Cover.SHA256.
	Cover      *CoverRef `json:"cover,omitempty" bson:"cover,omitempty"`
	DurationMS int64     `json:"duration_ms" bson:"duration_ms"`
	// Bitrate is the average bitrate of the audio frames in kbit/s.
	Bitrate    int    `json:"bitrate" bson:"bitrate"`
	SampleRate int    `json:"sample_rate" bson:"sample_rate"`
	Channels   int    `json:"channels" bson:"channels"`
	MIME       string `json:"mime" bson:"mime"`
	// MPEGVersion is "1", "2" or "2.5"; Layer is always 3.
	MPEGVersion     string `json:"mpeg_version" bson:"mpeg_version"`
	SamplesPerFrame int    `json:"samples_per_frame" bson:"samples_per_frame"`
	FramesPerChunk  int    `json:"frames_per_chunk" bson:"frames_per_chunk"`
	// TotalFrames counts audio frames (the Xing/Info/LAME frame excluded).
	TotalFrames int `json:"total_frames" bson:"total_frames"`
	// EncoderDelay and EncoderPadding are samples to trim at the start and the
	// end for gapless playback (from the LAME header; 0 when absent).
	EncoderDelay   int `json:"encoder_delay" bson:"encoder_delay"`
	EncoderPadding int `json:"encoder_padding" bson:"encoder_padding"`
	// TotalSamples = TotalFrames*SamplesPerFrame - EncoderDelay - EncoderPadding.
	TotalSamples int64 `json:"total_samples" bson:"total_samples"`
	// Size is the number of audio bytes: the sum of all chunk sizes.
	Size   int64       `json:"size" bson:"size"`
	Chunks []ChunkInfo `json:"chunks" bson:"chunks"`
	// Origin tags a track that a followed music folder added (package
	// musicdir: an opaque id of the folder, not its path), so that after a
	// restart the folder knows its tracks from those ingested by hand;
	// empty otherwise.
	Origin string `json:"origin,omitempty" bson:"origin,omitempty"`
	// Source describes the file a transcoded track was made from (package
	// transcode); nil for an MP3 stored as it was.
	Source *SourceInfo `json:"source,omitempty" bson:"source,omitempty"`
}

// SourceInfo describes the file a transcoded track was made from.
type SourceInfo struct {
	// Format is the source's audio codec as ffprobe names it: flac, aac,
	// alac, vorbis, opus, pcm_s16le...
	Format string `json:"format" bson:"format"`
	// Bitrate is the source's average bitrate in kbit/s (0 when unknown).
	Bitrate    int `json:"bitrate" bson:"bitrate"`
	SampleRate int `json:"sample_rate" bson:"sample_rate"`
	Channels   int `json:"channels" bson:"channels"`
	// SHA256 (lowercase hex) and Size are the source file's. An ingested
	// file's track ID is derived from them (transcode.TrackID), not from the
	// MP3's bytes; an origin's from its URL and version (package origin),
	// which the manifest does not show: listeners need not learn where the
	// origin is.
	SHA256 string `json:"sha256" bson:"sha256"`
	Size   int64  `json:"size" bson:"size"`
}

// ChunkInfo describes one chunk: a verbatim run of whole MP3 frames.
type ChunkInfo struct {
	Seq        int     `json:"seq" bson:"seq"`
	StartMS    float64 `json:"start_ms" bson:"start_ms"`
	DurationMS float64 `json:"duration_ms" bson:"duration_ms"`
	Frames     int     `json:"frames" bson:"frames"`
	Size       int     `json:"size" bson:"size"`
	// SHA256 is the lowercase hex SHA-256 of the chunk bytes.
	SHA256 string `json:"sha256" bson:"sha256"`
	// Reservoir is true when the chunk's first frame has main_data_begin > 0:
	// a decoder starting here needs the previous frame prepended.
	Reservoir bool `json:"reservoir" bson:"reservoir"`
}

// CoverRef names a track's cover art in the store: the SHA-256 of the
// picture (lowercase hex; tracks of one album share it), its content type
// and size.
type CoverRef struct {
	SHA256 string `json:"sha256" bson:"sha256"`
	MIME   string `json:"mime" bson:"mime"`
	Size   int    `json:"size" bson:"size"`
}

// Summary is the catalog entry of a track, as listed by GET /api/tracks.
type Summary struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Artist      string `json:"artist"`
	Album       string `json:"album"`
	AlbumArtist string `json:"album_artist,omitempty"`
	Year        int    `json:"year,omitempty"`
	TrackNo     int    `json:"track_no,omitempty"`
	DiscNo      int    `json:"disc_no,omitempty"`
	// Cover is the SHA-256 of the cover art ("" without): the page asks
	// GET /api/tracks/{id}/cover only when it is set.
	Cover      string `json:"cover,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

// Summary returns the catalog entry of m.
func (m *Manifest) Summary() Summary {
	s := Summary{ID: m.ID, Title: m.Title, Artist: m.Artist, Album: m.Album, AlbumArtist: m.AlbumArtist,
		Year: m.Year, TrackNo: m.TrackNo, DiscNo: m.DiscNo, DurationMS: m.DurationMS}
	if m.Cover != nil {
		s.Cover = m.Cover.SHA256
	}
	return s
}
