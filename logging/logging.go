// Package logging sets up log/slog for the master and workers: text lines to
// stderr, or to a file that can be reopened (USR1) after rotation.
//
// Sharp edges: a reopen swaps the file under a mutex; writers that race
// with it write to the old or the new file, never to a closed one. Each
// line is one write; one the disk could take only part of (ENOSPC) is
// taken back by truncating the file to where it began, so a full disk
// drops whole lines and never leaves half of one (unless another process
// appended after it meanwhile, which a full disk makes unlikely).
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"g6/conf"
)

// File is a log destination that can be reopened by path.
type File struct {
	mu   sync.Mutex
	path string
	f    *os.File
	w    io.Writer
}

// Open opens path for appending (mode 0640, never world-writable: docs/g6-differences.md B19);
// "" means stderr.
func Open(path string) (*File, error) {
	lf := &File{path: path, w: os.Stderr}
	if path == "" {
		return lf, nil
	}
	return lf, lf.Reopen()
}

// Reopen reopens the file by path; stderr is left alone.
func (l *File) Reopen() error {
	if l.path == "" {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("logging: %w", err)
	}
	l.mu.Lock()
	old := l.f
	l.f, l.w = f, f
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (l *File) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(b)
	if err != nil && n > 0 && n < len(b) && l.f != nil {
		l.unwrite(int64(n))
	}
	return n, err
}

// unwrite takes back the last n bytes of the file if they are still its
// end (the file is opened O_APPEND, so the offset is where the write
// ended).
func (l *File) unwrite(n int64) {
	end, err := l.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return
	}
	if st, err := l.f.Stat(); err == nil && st.Size() == end {
		l.f.Truncate(end - n)
	}
}

// Level parses a level name.
func Level(name string) (slog.Level, error) { return conf.ParseLevel(name) }

// New returns a text logger writing to w at level.
func New(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
