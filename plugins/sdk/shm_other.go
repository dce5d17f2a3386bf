//go:build !linux

package sdk

// openShm: only Linux runners share memory; parts arrive through gRPC.
func openShm() ([]byte, error) { return nil, nil }
