// Package adversarial is baton's adversarial suite (make
// test-adversarial, also run by make test): the real baton pair in the
// lab, attacked from a namespace of its own (mallory, on the front
// segment) acting as a hostile host and as a peer whose certificate and
// heartbeat key were stolen. Config sync pushes and reads outside the
// sets, session sync floods and foreign entries, heartbeat garbage and
// replays, idle and half-open connection floods on every listener while a
// failover runs, and a stale fenced writer racing a newer one (on moto).
//
// Every case asserts that the attack was refused, that nothing changed
// (files, routes, roles) and that the counter or log of the drop moved.
// It prints one line per case and the summary
//
//	adversarial cases=N refused=N failover_during_flood_ms=X failover_normal_ms=Y
//
// The suite is Linux only and needs root.
package adversarial
