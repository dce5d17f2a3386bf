package host

// UseShm lets tests send parts through gRPC instead of shared memory.
var UseShm = &useShm
