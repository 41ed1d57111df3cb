package conf

import "fmt"

// ParseLegacy reads G6.conf text.
func ParseLegacy(file string, src []byte) (*Config, error) {
	return nil, ErrorList{{File: file, Line: 1, Msg: fmt.Sprintf("legacy G6.conf support is not built yet (%d bytes)", len(src))}}
}
