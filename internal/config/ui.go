package config

// UI is the status page. It is always served on the API's TCP listener
// (api.listen); Listen adds a listener of its own, with the API's token
// and TLS (api.tls, api.insecure).
type UI struct {
	Listen string `yaml:"listen"` // optional TCP host:port; requires api.token_file
}

func (u *UI) validate(v *validator) {
	if u.Listen == "" {
		return
	}
	v.ListenAddr("listen", u.Listen)
	api := v.root.API
	if api.TokenFile == "" {
		v.errorf("listen", "needs api.token_file: the status page asks for the API token")
	}
	if !api.Insecure && api.TLS.CertFile == "" && (v.root.Link.CertFile == "" || v.root.Link.KeyFile == "") {
		v.errorf("listen", "needs a certificate: api.tls.cert_file (default: link.cert_file from baton keygen); api.insecure: true serves plain HTTP")
	}
}
