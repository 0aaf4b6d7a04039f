package web

import (
	"cmp"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/addrlimit"
)

// bodyDeadline gives requests with a body d to send it: a client sending
// an offer one byte every two seconds loses its connection, while GET
// requests, which have no body and may be held (SSE, LL-HLS blocking
// reloads), are not bounded. net/http resets the deadline before the next
// request on the connection.
func bodyDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
		next.ServeHTTP(w, r)
	})
}

// limitListener bounds the public listener's connections per client
// address and in all (trusted proxies only in all).
func limitListener(ln net.Listener, cfg PublicConfig, log zerolog.Logger) net.Listener {
	perAddr := max(cmp.Or(cfg.MaxConnsPerAddr, DefaultMaxConnsPerAddr), 0)
	total := max(cmp.Or(cfg.MaxConns, DefaultMaxConns), 0)
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	refused := promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "seance_http_connections_refused_total",
		Help: "Public HTTP connections closed at accept, by reason (address: the client address holds public.max_connections_per_address; total: public.max_connections).",
	}, []string{"reason"})
	refused.WithLabelValues("address")
	refused.WithLabelValues("total")
	l := addrlimit.NewListener(ln, perAddr, total, func(r addrlimit.Result) {
		if r == addrlimit.AddrFull {
			refused.WithLabelValues("address").Inc()
		} else {
			refused.WithLabelValues("total").Inc()
		}
	})
	for _, p := range cfg.TrustedProxies {
		l.Exempt(p)
	}
	return l
}
