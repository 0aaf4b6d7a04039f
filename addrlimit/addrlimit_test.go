package addrlimit

import (
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCounter(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff:1")
	for _, tc := range []struct {
		name          string
		perAddr, all  int
		acquire       []netip.Addr
		want          []Result
		shared        bool
		heldA, counts int
	}{
		{"per address", 2, 0, []netip.Addr{a, a, a, b}, []Result{OK, OK, AddrFull, OK}, false, 2, 3},
		{"total", 0, 2, []netip.Addr{a, b, b}, []Result{OK, OK, TotalFull}, false, 1, 2},
		{"IPv6 by /64", 1, 0, []netip.Addr{v6a, v6b}, []Result{OK, AddrFull}, false, 0, 1},
		{"IPv4-mapped is IPv4", 1, 0, []netip.Addr{a, netip.AddrFrom16(a.As16())}, []Result{OK, AddrFull}, false, 1, 1},
		{"shared: total only", 1, 3, []netip.Addr{a, a, a, a}, []Result{OK, OK, OK, TotalFull}, true, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCounter(tc.perAddr, tc.all)
			var rels []func()
			for i, addr := range tc.acquire {
				acquire := c.Acquire
				if tc.shared {
					acquire = c.AcquireShared
				}
				rel, r := acquire(addr)
				require.Equal(t, tc.want[i], r, "acquire %d", i)
				if r == OK {
					rels = append(rels, rel)
				} else {
					require.Nil(t, rel)
				}
			}
			require.Equal(t, tc.heldA, c.Held(a))
			require.Equal(t, tc.counts, c.Count())
			for _, rel := range rels {
				rel()
				rel() // idempotent
			}
			require.Zero(t, c.Count())
			require.Zero(t, c.Held(a))
		})
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:80": "192.0.2.1", "192.0.2.1": "192.0.2.1", "[2001:db8::1]:443": "2001:db8::1",
		"2001:db8::1": "2001:db8::1", "[::ffff:192.0.2.1]:1": "192.0.2.1", "pipe": "invalid IP", "": "invalid IP",
	} {
		require.Equal(t, want, Parse(in).String(), in)
	}
}

// TestFailures: free failures, then a doubling wait up to the maximum,
// logged once per window; a success forgets; the window resets.
func TestFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFailures(2, time.Minute, 8*time.Second)
		a := netip.MustParseAddr("192.0.2.9")
		other := netip.MustParseAddr("192.0.2.10")
		ok, _ := f.Allow(a)
		require.True(t, ok)
		require.False(t, f.Fail(a))
		require.False(t, f.Fail(a))
		ok, _ = f.Allow(a)
		require.True(t, ok, "two free failures")
		require.True(t, f.Fail(a), "the first backoff is logged")
		ok, wait := f.Allow(a)
		require.False(t, ok)
		require.Equal(t, time.Second, wait)
		ok, _ = f.Allow(other)
		require.True(t, ok, "another address is not affected")
		time.Sleep(time.Second) // synctest's fake clock
		ok, _ = f.Allow(a)
		require.True(t, ok)
		require.False(t, f.Fail(a), "logged once per window")
		_, wait = f.Allow(a)
		require.Equal(t, 2*time.Second, wait)
		for range 5 {
			f.Fail(a)
		}
		_, wait = f.Allow(a)
		require.Equal(t, 8*time.Second, wait, "bounded by the maximum")
		f.Succeed(a)
		ok, _ = f.Allow(a)
		require.True(t, ok, "a success forgets")
		require.False(t, f.Fail(a))
		time.Sleep(2 * time.Minute)
		require.False(t, f.Fail(a))
		require.False(t, f.Fail(a), "a new window: two free again")
	})
}

// TestFailuresBounded: the table of addresses is bounded.
func TestFailuresBounded(t *testing.T) {
	f := NewFailures(0, time.Minute, time.Minute)
	for i := range maxTracked + 100 {
		f.Fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	require.LessOrEqual(t, len(f.seen), maxTracked)
}

// TestListener: past an address's share, connections are closed at
// accept; closing one frees its slot.
func TestListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := make(chan Result, 10)
	l := NewListener(ln, 2, 0, func(r Result) { refused <- r })
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
	}
	s1, s2 := <-accepted, <-accepted
	require.Equal(t, AddrFull, <-refused)
	require.Equal(t, 2, l.Counter().Count())
	require.NoError(t, s1.Close())
	require.Equal(t, 1, l.Counter().Count())
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	s3 := <-accepted
	require.NoError(t, s2.Close())
	require.NoError(t, s3.Close())
	require.NoError(t, l.Close())
	for range accepted {
	}
}
