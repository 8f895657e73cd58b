package config

// UI is the status page. It is always served on the API's TCP listener
// (api.listen); Listen adds a listener of its own, with the same token.
type UI struct {
	Listen string `yaml:"listen"` // optional TCP host:port; requires api.token_file
}

func (u *UI) validate(v *validator) {
	if u.Listen == "" {
		return
	}
	v.listenAddr("listen", u.Listen)
	if v.root.API.TokenFile == "" {
		v.errorf("listen", "needs api.token_file: the status page asks for the API token")
	}
}
