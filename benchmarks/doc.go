// Package benchmarks measures mftflow's throughput and memory against
// baselines taken in the same run (plain io.Copy, rclone when installed), so
// results are ratios that survive noisy machines.
//
// The runner is measured as users run it: the real binary, a flow file and
// the embedded NATS server; its peak RSS comes from the kernel's rusage.
// See README.md for how to run them and the latest results.
package benchmarks
