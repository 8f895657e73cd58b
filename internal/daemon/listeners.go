package daemon

import (
	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/httpserve"
)

// countListenerDrops exports what each capped listener closed at once
// (baton_listener_dropped_total): the API socket and TCP listener, the
// metrics listener and the peer link (ui.listen registers its own).
func (d *Daemon) countListenerDrops(apiSrv *api.Server, metricsLn *httpserve.Limited) {
	socket, tcp := apiSrv.Limits()
	if socket != nil {
		d.metrics.CountDrops("api_socket", socket.Dropped)
	}
	if tcp != nil {
		d.metrics.CountDrops("api", tcp.Dropped)
	}
	if metricsLn != nil {
		d.metrics.CountDrops("metrics", metricsLn.Dropped)
	}
	if d.link != nil {
		d.metrics.CountDrops("link", d.link.Dropped)
	}
}
