package inspect_test

import (
	"fmt"

	"g6/inspect"
)

// An sni entry as an operator writes it, against the names clients send:
// a one-label wildcard, case-insensitive, never the bare domain or a
// deeper name.
func ExampleMatchSNI() {
	for _, name := range []string{"a.example.org", "API.Example.Org", "example.org", "a.b.example.org"} {
		fmt.Println(name, inspect.MatchSNI("*.example.org", name))
	}
	fmt.Println(inspect.MatchSNI("api.example.com", "API.example.COM"))
	// Output:
	// a.example.org true
	// API.Example.Org true
	// example.org false
	// a.b.example.org false
	// true
}
