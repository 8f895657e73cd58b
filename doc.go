// Package baton is the root of the baton module. It holds no code: its
// tests check rules that span the repository (package documentation,
// layering, a tidy go.mod, metric names). The daemon is cmd/baton.
package baton
