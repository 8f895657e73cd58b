// Package pairbench is the shared harness of the benchmarks that compare
// baton with keepalived on the lab's appliance pair (bench/failover,
// bench/vip): one daemon's run in a fresh lab (Env), the two daemons as
// the benchmarks run them (Baton, Keepalived), failure variants and their
// undoing, settling, the measuring threads and address watch, and the
// statistics and number formats of the result lines.
package pairbench
