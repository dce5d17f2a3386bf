// Package wire converts between the pipeline's Go values and the plugin
// protocol's messages (plugins/proto), in both directions, for the host and
// the SDK alike: files, outcomes, specs, config values, errors and streamed
// content.
package wire
