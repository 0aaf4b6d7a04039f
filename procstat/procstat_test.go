package procstat

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       Stat
		bad        bool
	}{
		{"spaces and parentheses in the name", "4242 (Web (Content) x) S 4200 1 1 0 -1 0 0 0 0 0 150 50 0 0", Stat{PID: 4242, PPID: 4200, CPU: 2 * time.Second}, false},
		{"plain", "17 (ffmpeg) R 1 17 17 0 -1 0 0 0 0 0 4 3 0 0", Stat{PID: 17, PPID: 1, CPU: 70 * time.Millisecond}, false},
		{"short", "1 (init) S 0 1", Stat{}, true},
		{"garbage", "hello", Stat{}, true},
		{"bad numbers", "1 (x) S a 1 1 0 -1 0 0 0 0 0 x y 0 0", Stat{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.line), 10*time.Millisecond)
			if tc.bad {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestReadSelf(t *testing.T) {
	require.Equal(t, 10*time.Millisecond, ClockTick(), "Linux's USER_HZ")
	st, err := Read(os.Getpid())
	require.NoError(t, err)
	require.Equal(t, os.Getpid(), st.PID)
	require.Equal(t, os.Getppid(), st.PPID)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("4242 (Web (Content) x) S 4200 1 1 0 -1 0 0 0 0 0 150 50 0 0"))
	f.Add([]byte("1 (x) S a 1 1 0 -1 0 0 0 0 0 x y 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := Parse(b, 10*time.Millisecond)
		if err == nil {
			require.GreaterOrEqual(t, st.CPU, time.Duration(0))
		}
	})
}
