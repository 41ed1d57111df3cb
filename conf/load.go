package conf

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// MaxFileSize bounds a config file. Configs are read by a running master on
// every reload, so a file that is too large (or endless, like /dev/zero) is
// an error, not an allocation.
const MaxFileSize = 16 << 20

// Load reads a config file: g6.toml, or a legacy G6.conf (told apart by
// content, not by name). Only regular files are read: a FIFO or a device
// could block or never end, and the master reads its config while serving.
func Load(path string) (*Config, error) {
	// O_NONBLOCK: opening a FIFO that has no writer would block otherwise.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("conf: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("conf: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("conf: %s: not a regular file (%s)", path, fileKind(st.Mode()))
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("conf: %s: %d bytes, more than the %d MiB a config may have", path, st.Size(), MaxFileSize>>20)
	}
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("conf: %s: %w", path, err)
	}
	if len(src) > MaxFileSize { // it grew while being read
		return nil, fmt.Errorf("conf: %s: more than the %d MiB a config may have", path, MaxFileSize>>20)
	}
	return Parse(path, src)
}

// Parse is Load on text already read.
func Parse(file string, src []byte) (*Config, error) {
	if IsLegacy(src) {
		return ParseLegacy(file, src)
	}
	return ParseTOML(file, src)
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.Type().String()
}
