package webrtc

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// FuzzWHEPOffer's coverage is not deterministic (every offer starts
	// a PeerConnection, whose goroutines run on their own schedule): the
	// fuzzer takes most inputs for new ones and would spend its time
	// minimizing them, 60 s each by default. Bound minimization unless
	// the command line sets it.
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.fuzzminimizetime" })
	if !set {
		_ = flag.Set("test.fuzzminimizetime", "200x")
	}
	goleak.VerifyTestMain(m)
}
