// Package heartbeat watches the peer appliance over several paths and
// reports when it is alive, when it is dead and what it says about itself.
//
// A Monitor sends an authenticated heartbeat every Interval on every
// configured UDP path and on the TCP peer channel, and receives the peer's.
// A UDP or channel path is up from a valid message until Misses*Interval
// passes without another; the deadline is a timer from the injected clock,
// so detection is exact to the timer. Peer checks (ICMP echo, TCP connect,
// HTTP(S) GET answering 2xx) are paths too: up after one success, down after
// Misses consecutive failures. The peer is alive while any path is up and it
// has not been found gone; PeerDead is emitted when the last path goes down.
//
// # Peer channel
//
// Each node listens on a TCP address and dials the peer's. A node sends its
// messages on the connection it dialed and reads the peer's on the one it
// accepted. When the peer's process dies, its kernel closes that
// connection with a FIN: EOF on the accepted connection that last carried a
// valid message means the peer process is gone, and the peer is declared
// dead at once (every heartbeat path down, PeerDead with Gone set) without
// waiting for Misses*Interval. A reset (ECONNRESET) can be forged by anyone
// on the path, so it only raises a suspicion: the peer is gone if no newer
// sequence number arrives within 1.5 intervals. Messages carrying the epoch of a gone process
// are then ignored (drop reason dead_epoch), so late UDP datagrams cannot
// revive it; a message with a newer epoch, or a valid message on an inbound
// connection accepted after the peer was found gone, revives it. A message
// with the Leaving flag (sent on every path when Run ends) has the same
// effect as a closed channel.
//
// # Wire format, version 1
//
// All integers are big-endian. A message is at most MaxMessageSize bytes.
//
//	offset  size  field
//	0       4     magic "BTHB"
//	4       1     version, 1
//	5       1     header flags, reserved, must be 0
//	6       1     N, length of the sender's node name, 1..63
//	7       N     sender node name, printable ASCII without space
//	7+N     1     P, length of the path name, 1..32
//	8+N     P     path name, printable ASCII without space ("channel" on the TCP channel)
//	o=8+N+P
//	o       8     epoch: names one process run; grows from run to run (a persisted restart counter)
//	o+8     8     seq: one counter per sender across all paths, starting at 1
//	o+16    8     sent: the sender's clock when sending, unix nanoseconds (signed)
//	o+24    8     echo: the last sent time the sender received from us on this path, 0 if none
//	o+32    8     echo delay: nanoseconds between receiving that message and sending this one (<= 2^63-1)
//	o+40    1     state (role.State, 0..4)
//	o+41    8     term
//	o+49    1     priority
//	o+50    1     flags: 1 healthy, 2 maintenance, 4 handover, 8 preempt, 16 leaving; other bits must be 0
//	o+51    32    HMAC-SHA256 over bytes [0, o+51) with the pre-shared key
//
// The length of a message is exactly 91+N+P bytes. The receiver measures the
// round trip on a path as now - echo - echo delay, all on its own clock.
//
// On the TCP channel each message is preceded by its length as a 2-byte
// big-endian integer.
//
// A received message is checked in this order, and dropped with the reason
// in brackets at the first failure: length, layout and field ranges
// [malformed]; the MAC under every configured key [bad_mac]; the sender is
// the configured peer [unknown_sender]; the path is configured and of the
// kind it arrived on [unknown_path]; the epoch is not that of a gone process
// [dead_epoch]; the epoch is not older than the newest seen [stale_epoch];
// the sequence number is new and within the replay window of the epoch
// [replay]; the epoch has been proven live [unechoed]. Dropped messages
// change nothing but the drop counters, and an unechoed one also the echo
// of the next message.
//
// # Proof of a live peer
//
// A node that restarts has a new, empty replay window, so captured
// heartbeats of a peer that has died since would pass it. A peer's run
// (its epoch) therefore counts only once one of its messages echoes one
// of this run's latest send times: such a message was sent after the peer
// heard this run. Until then its messages are dropped as unechoed and
// answered at once (at most once per run and interval) with a message
// that echoes them, and a node that has just proven the peer's run sends
// at once too, so two live nodes prove each other within a round trip.
// Replays of a dead peer's run never echo this run and never make the
// peer look alive.
package heartbeat
