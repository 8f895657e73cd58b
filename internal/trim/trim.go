// Package trim drops cold pages of the executable from the resident set.
//
// baton links several cloud SDKs, an etcd client and a BGP speaker; their
// package initialisers run once at start and touch tens of megabytes of
// code and read-only data that are never used again. Telling the kernel
// these read-only, file-backed pages are not needed unmaps them from the
// process (they stay in the page cache, so a page used again comes back
// with a minor fault), and the resident set shrinks to the working set.
package trim
