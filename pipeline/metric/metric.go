// Package metric holds what the packages that export Prometheus metrics
// (the engine, notifications, arrival SLAs) share.
package metric

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg, or returns the equal collector registered
// before, so that engines, notifiers and watchers of several flows in one
// process share their collectors. what names them in errors ("engine
// metrics").
func Register[C prometheus.Collector](reg prometheus.Registerer, c C, what string) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
		return c, fmt.Errorf("%s: %w (the registered collector is a %T, not a %T)", what, err, are.ExistingCollector, c)
	}
	return c, fmt.Errorf("%s: %w", what, err)
}
