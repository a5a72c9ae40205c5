package app

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// The bulk endpoints move many bytes in one request: they are what slow
// bodies (an upload trickled a byte at a time) and slow reads (a download
// consumed a byte at a time, holding the response and its goroutine)
// attack. Their bounds are the request's: MaxUploadBytes here, and the
// http.Server's ReadTimeout and WriteTimeout (set by HardenServer) for the
// time a client may take.

// MaxUploadBytes is the largest body POST /upload reads.
const MaxUploadBytes = 8 << 20

// MaxDownloadBytes is the largest response GET /download writes.
const MaxDownloadBytes = 64 << 20

// upload reads the whole body and answers with its size.
func (a *App) upload(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, MaxUploadBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, err)
			return
		}
		// The client went away or was too slow: nobody reads an answer.
		return
	}
	_, _ = fmt.Fprintf(w, "%d\n", n)
}

// download writes ?size= bytes (default 1 MiB).
func (a *App) download(w http.ResponseWriter, r *http.Request) {
	size := int64(1 << 20)
	if s := r.URL.Query().Get("size"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > MaxDownloadBytes {
			httpError(w, http.StatusBadRequest, fmt.Errorf("size must be in [0, %d]", MaxDownloadBytes))
			return
		}
		size = n
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	_, _ = io.CopyN(w, zeros{}, size)
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
