// Package partition is baton's partition test suite: two real baton nodes
// in the lab, an optional witness (etcd, Azurite's blob service or
// moto_server's DynamoDB) in its own network namespace, a prober that
// polls both nodes' load-balancer probes every 10 ms from the client
// namespace, a seeded random schedule of faults (node↔node and
// node↔witness cuts, isolation, frozen and killed processes) and a checker
// that reads the prober's record and both nodes' logs.
//
// With a witness the suite asserts that the prober never saw two nodes
// answer 200 at once and that the time with no active node stays within
// the lease time plus three heartbeat intervals; without one it asserts
// that every dual-active window closes within one heartbeat interval of
// the heal. Run prints the one-line summary the issue asks for:
//
//	partition trials=200 witness=etcd dual_active_samples=0 no_active_p50_ms=X no_active_p95_ms=X
//
// The pure parts (schedule, checker) build everywhere; the lab parts are
// Linux only and need root.
package partition
