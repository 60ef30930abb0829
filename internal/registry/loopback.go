package registry

import (
	"net"
	"strings"
)

// IsLoopback tells whether host — a registry host or listen address, with
// or without a port, IPv6 in brackets or not — is localhost or a loopback
// address. Loopback registries are spoken to over plain HTTP.
func IsLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
