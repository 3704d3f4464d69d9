package api

import (
	"context"
	"net/http"
)

// Daemon returns the daemon process's own figures: pid, goroutines, open descriptors,
// resident memory and uptime.
func (c *Client) Daemon(ctx context.Context) (DaemonResponse, error) {
	var r DaemonResponse
	return r, c.do(ctx, http.MethodGet, "/v1/daemon", nil, &r)
}
