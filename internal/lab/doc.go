// Package lab builds small networks of hosts in Linux network namespaces
// from Go: hosts are namespaces, segments are bridges in a dedicated switch
// namespace, and links are veth pairs. Processes started through a lab run
// inside a host's namespace and are killed when the lab closes.
//
// Every namespace of a lab is named "<prefix>-<host>", so a crashed run can
// be cleaned up by prefix with Cleanup. NewPair builds the standard
// client / nva-a / nva-b / server topology used by end-to-end tests, the demo
// (Demo) and the failover benchmark.
package lab
