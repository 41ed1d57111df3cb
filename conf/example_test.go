package conf

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestExampleConfig keeps g6.example.toml in step with the schema: it loads,
// and every key the decoder knows appears in it.
func TestExampleConfig(t *testing.T) {
	src, err := os.ReadFile("../g6.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("g6.example.toml", src)
	if err != nil {
		t.Fatalf("example does not load: %v", err)
	}
	if len(cfg.Rules) != 1 || len(cfg.Rules[0].Servers) != 3 || cfg.Admin == nil {
		t.Fatalf("example resolved to %+v", cfg)
	}
	for _, key := range schemaKeys(reflect.TypeOf(fileConfig{})) {
		if !strings.Contains(string(src), key+" =") {
			t.Errorf("key %q is missing from g6.example.toml", key)
		}
	}
	for _, key := range []string{"pattern", "address", "max_connections", "max_ip",
		"max_connections_per_ip", "timeout", "heartbeat", "weight"} {
		if !strings.Contains(string(src), key+" =") {
			t.Errorf("entry key %q is missing from g6.example.toml", key)
		}
	}
}

func schemaKeys(t reflect.Type) []string {
	var out []string
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("toml")
		if f.Anonymous {
			out = append(out, schemaKeys(f.Type)...)
			continue
		}
		if tag == "" {
			continue
		}
		if tag != "global" && tag != "admin" && tag != "rule" {
			out = append(out, tag)
		}
		out = append(out, schemaKeys(f.Type)...)
	}
	return out
}
