// Package e2e holds g6's end-to-end tests: each starts the real g6 binary
// (built once per test run with -race, internal/testenv) as a master with
// its workers, real backends (tools/backend) and real clients, all on
// loopback or in a network namespace the test makes, and checks what an
// operator would see: bytes delivered, admin replies, metrics, logs, counts
// in the shared region, processes and sockets.
//
// Sharp edges: the tests share two cores and a 20,000-descriptor limit with
// everything else go test runs in parallel, so each bounds its connection
// count and waits on events (a log line, a listening socket) rather than on
// fixed sleeps wherever it can.
package e2e
