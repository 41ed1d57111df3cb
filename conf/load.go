package conf

import (
	"fmt"
	"os"
)

// Load reads a config file: g6.toml, or a legacy G6.conf (told apart by
// content, not by name).
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("conf: %w", err)
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
