package origin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Errors an origin's answers are reported with (wrapped, with the URL and
// the detail). Reason maps them onto the label values of the origin error
// metric.
var (
	// ErrGone: the origin answered 404 or 410 for a file its index names.
	ErrGone = errors.New("not at the origin")
	// ErrChanged: the file is not the one catalogued (its ETag, size or
	// modification time changed); it is catalogued again under a new id.
	ErrChanged = errors.New("changed at the origin")
	// ErrTruncated: the body ended before its Content-Length.
	ErrTruncated = errors.New("truncated body")
	// ErrTooLarge: the body (or the index) exceeds its bound.
	ErrTooLarge = errors.New("too large")
	// ErrContentType: the origin said the file is not audio (text/html: an
	// error page served with 200).
	ErrContentType = errors.New("not audio")
	// ErrRedirect: a redirect to another host (or too many) was refused.
	ErrRedirect = errors.New("redirect refused")
	// ErrStatus: any other answer than 200 or 206.
	ErrStatus = errors.New("unexpected status")
	// ErrTimeout: the fetch did not end within its time.
	ErrTimeout = errors.New("timed out")
	// ErrTranscode: ffmpeg could not make an MP3 of the file (the log has
	// its words).
	ErrTranscode = errors.New("ffmpeg could not transcode it")
	// ErrBusy: too many tracks are being fetched; try again soon.
	ErrBusy = errors.New("the hub is busy fetching other tracks")
)

// reasonLabels map the errors above onto the label values of
// ztream_origin_errors_total, in the order Reason tries them.
var reasonLabels = [...]struct {
	err   error
	label string
}{{ErrGone, "gone"}, {ErrChanged, "changed"}, {ErrTruncated, "truncated"}, {ErrTooLarge, "too_large"},
	{ErrContentType, "content_type"}, {ErrRedirect, "redirect"}, {ErrStatus, "status"}, {ErrTimeout, "timeout"},
	{ErrBusy, "busy"}, {ErrRateLimited, "rate_limited"}, {ErrTranscode, "transcode"}}

// otherReason labels the errors none of reasonLabels' match.
const otherReason = "other"

// Reason returns the label value of err for ztream_origin_errors_total: one
// of Reasons (a context deadline is a timeout).
func Reason(err error) string {
	for _, r := range reasonLabels {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return otherReason
}

// Reasons lists Reason's values: gone, changed, truncated, too_large,
// content_type, redirect, status, timeout, busy, rate_limited, transcode
// and other.
func Reasons() []string {
	out := make([]string, 0, len(reasonLabels)+1)
	for _, r := range reasonLabels {
		out = append(out, r.label)
	}
	return append(out, otherReason)
}

// maxRedirects bounds the redirects followed for one request.
const maxRedirects = 5

// newClient returns the HTTP client for an origin: redirects are followed
// only within its host (http to https allowed), at most maxRedirects, and
// an answer's headers must come within headerTimeout.
func newClient(base *url.URL, headerTimeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = headerTimeout
	tr.MaxIdleConnsPerHost = 16
	tr.Proxy = nil // an origin is reached directly: the operator named it
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrRedirect, maxRedirects)
			}
			u := req.URL
			sameHost := u.Hostname() == base.Hostname() && (u.Port() == base.Port() || u.Scheme == "https" && base.Scheme == "http" && u.Port() == "")
			if !sameHost || u.Scheme != base.Scheme && u.Scheme != "https" {
				return fmt.Errorf("%w: to %s, not on the origin's host %s", ErrRedirect, u.Redacted(), base.Host)
			}
			return nil
		},
	}
}

// newRequest is a GET of u asking for the bytes as they are: no gzip,
// whose answer would lose its length and its strong ETag.
func newRequest(ctx context.Context, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	return req, nil
}

// audioType reports whether a Content-Type may be an audio file's: audio/*,
// the generic binary types, and the containers' (application/ogg,
// video/mp4...). An absent type is taken.
func audioType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "audio/"):
		return true
	case mt == "application/octet-stream", mt == "binary/octet-stream", mt == "application/ogg",
		mt == "video/mp4", mt == "video/ogg", mt == "application/x-flac", mt == "application/mp4":
		return true
	}
	return false
}

// readBounded reads r to its end, or fails with ErrTooLarge past limit
// bytes.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return b, nil
}

// statusError turns a non-2xx answer into an error.
func statusError(resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusGone:
		return fmt.Errorf("%w (%s)", ErrGone, resp.Status)
	case http.StatusPreconditionFailed:
		return fmt.Errorf("%w (%s to If-Match)", ErrChanged, resp.Status)
	}
	return fmt.Errorf("%w: %s", ErrStatus, resp.Status)
}

// requestErr strips the URL from an http.Client error (its message would
// show listeners where the origin is); the method and cause stay.
func requestErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// timeoutErr marks a context deadline as ErrTimeout, keeping the cause.
func timeoutErr(err error, d time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) || isNetTimeout(err) {
		return fmt.Errorf("%w after %s: %w", ErrTimeout, d, err)
	}
	return err
}

func isNetTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
