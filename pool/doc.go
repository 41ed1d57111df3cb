// Package pool is every rule's servers as the master keeps them: the
// config's, changed at runtime (add, remove, weight, limit, disable, drain)
// without a reload, and published into the shared region, where workers
// read them.
//
// Model: a Table holds the config and an overlay of runtime changes (State,
// one Override per rule and server). Effective merges the two; Publish
// writes each effective server's slot (address, weight, limit, settings,
// order) and only then its Member, and bumps its rule's Members counter,
// so a worker rebuilds its list at its next connection and sees every
// change at once or not at all. Slots of servers no longer in any rule
// lose their Member; they keep their key and counters until their last
// session ends, and only then may another key take them.
//
// Name entries (conf.Name) are resolved by the master, which hands each
// answer to SetAnswer; the table keeps the last answer of every entry in
// the overlay and expands the config with it (expand) before merging: each
// address becomes a server in the entry's place with the entry's options
// (an SRV record's weight unless the entry set one, backup above the
// lowest priority), an address the rule already has is skipped, and a
// server an answer no longer yields leaves exactly as after del server.
// Answers are not the fleet's: every node resolves for itself.
//
// What a server's agent says (SetAgent: a state, a weight percentage, a
// connection limit) is a third layer, applied after the overlay where the
// config gave the value (an admin's or the fleet's weight wins) and as
// FlagAgentDown for down, drain and maint. It lives in the table only: not
// in the state file, not in the fleet store, gone with its server; a change
// republishes, an unchanged answer does not.
//
// The overlay survives reloads and upgrades (the master hands it to its
// successor) and, with state_file, restarts. On a reload the file wins
// for a server whose config entry changed since the runtime change was
// made (weight, max_connections, removal); otherwise the runtime change
// stays. A server added at runtime stays when the config does not list it;
// once the config lists it, the config's entry applies. Disable and drain
// are states, not settings: a reload keeps them.
//
// Sharp edges: the answers of entries a reload dropped are forgotten only
// when the master calls PruneAnswers (once the new config serves), so a
// failed reload's republish still has them. Runtime changes to a resolved
// server are made against its expanded entry, so a new SRV weight drops a
// weight set by hand. Changes take the Table's change lock, one at a time,
// and its data lock only around what they read and write: never across
// the fleet store's transaction, so readers (show, the console, the
// master's snapshot) never wait on the network. A runtime command is
// published first, then persisted (state file, fleet store); if the store
// refuses it the previous servers are published again, so it ends up in
// the region and the store, or in neither (a disable, enable or drain is
// persisted first and applied after). Publish scans every server slot
// (changes are rare, the scan is a few microseconds per thousand slots).
package pool
